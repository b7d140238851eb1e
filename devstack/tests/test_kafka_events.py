"""A typed platform event goes through the broker and comes back parsed."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

pytestmark = pytest.mark.timeout(60)


async def test_class_created_event_round_trip(kafka_bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from common_core.events import ClassCreatedV1, make_envelope, parse_event_message, topic_for

    from common_core import CourseCode

    event = ClassCreatedV1(
        class_id=uuid4(),
        class_designation="9A",
        course_codes=[CourseCode.ENG5, CourseCode.SV1],
        user_id="teacher-1",
        version=1,
    )
    correlation_id = uuid4()
    envelope = make_envelope(event, source_service="devstack-tests", correlation_id=correlation_id)
    topic = topic_for(ClassCreatedV1)

    async with asyncio.timeout(30):
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap,
            enable_idempotence=False,
            request_timeout_ms=10_000,
        )
        await producer.start()
        try:
            sent = await producer.send_and_wait(
                topic, envelope.model_dump_json().encode(), key=str(event.class_id).encode()
            )
        finally:
            await producer.stop()

        # No consumer group (no ~5 s join): read the exact partition and offset written.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            request_timeout_ms=10_000,
        )
        await consumer.start()
        try:
            partition = TopicPartition(topic, sent.partition)
            consumer.assign([partition])
            consumer.seek(partition, sent.offset)
            record = await consumer.getone()
        finally:
            await consumer.stop()

    assert record.key == str(event.class_id).encode()
    received = parse_event_message(record.value)
    assert isinstance(received.data, ClassCreatedV1)
    assert received.data == event
    assert received.event_type == topic
    assert received.event_id == envelope.event_id
    assert received.correlation_id == correlation_id
    assert received.source_service == "devstack-tests"
    assert received == envelope

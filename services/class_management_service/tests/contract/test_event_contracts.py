"""The wire contract of every event the service publishes, read raw from the real broker.

Consumers know only ``common_core``: they parse a message's value with
``parse_event_message`` and key their state by the Kafka key. These tests drive the API so
that every event type is published, read the messages as bytes (no parsing on the way in),
and check each against the contract: the exact envelope fields on the wire, a payload that
parses into the event class its topic carries, a lossless round trip, and key and headers
that agree with the envelope.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from common_core.events import (
    ALL_TOPICS,
    CHANGE_TOPICS,
    ESSAY_LINKED_TOPIC,
    ESSAY_UNLINKED_TOPIC,
    EVENT_BY_TOPIC,
    EventEnvelope,
    EventParseError,
    parse_event_message,
)

from services.class_management_service.tests.support.api import (
    json_of,
    with_correlation,
)
from services.class_management_service.topic_setup import create_topics

ENVELOPE_FIELDS = set(EventEnvelope.model_fields)
# The class and student change topics: what _publish_every_event_type causes. The service
# does not publish essay links or the state topics yet (issue 14's service half).
CLASS_AND_STUDENT_TOPICS = tuple(
    topic for topic in CHANGE_TOPICS if topic not in (ESSAY_LINKED_TOPIC, ESSAY_UNLINKED_TOPIC)
)
SOURCE_SERVICE = "class_management_service"


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


class RawTopicReader:
    """Every message published to the platform's topics after it started, as raw bytes."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self.messages: list[RawMessage] = []

    async def __aenter__(self) -> RawTopicReader:
        await create_topics(self._bootstrap)  # idempotent: the topics the service publishes to
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await consumer.start()
        self._consumer = consumer
        await consumer.topics()  # loads the cluster metadata
        partitions = [
            TopicPartition(topic, partition)
            for topic in ALL_TOPICS
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        assert {tp.topic for tp in partitions} == set(ALL_TOPICS)
        consumer.assign(partitions)
        # Start at the current end: only what this test causes is read.
        for partition, offset in (await consumer.end_offsets(partitions)).items():
            consumer.seek(partition, offset)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def wait_for_keys(
        self, expected: dict[bytes, int], timeout: float = 20.0
    ) -> list[RawMessage]:
        """At least ``expected[key]`` messages of each key (other messages are ignored)."""
        assert self._consumer is not None
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages if m.key in expected]
            counts = {key: sum(1 for m in found if m.key == key) for key in expected}
            if all(counts[key] >= wanted for key, wanted in expected.items()):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {expected} messages by key, got {counts}")
            batches = await self._consumer.getmany(timeout_ms=500)
            for partition, records in batches.items():
                self.messages.extend(
                    RawMessage(
                        topic=partition.topic,
                        partition=partition.partition,
                        offset=record.offset,
                        key=record.key,
                        value=record.value,
                        headers=dict(record.headers),
                    )
                    for record in records
                )


@pytest.fixture
async def raw_reader(kafka_bootstrap: str):
    async with RawTopicReader(kafka_bootstrap) as reader:
        yield reader


async def _publish_every_event_type(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    """Drive the API through all six changes; returns ids and each request's correlation id."""
    correlation: dict[str, str] = {}

    async def call(label: str, method: str, path: str, status: int, body: Any = None) -> Any:
        request_headers = with_correlation(headers)
        correlation[label] = request_headers["X-Correlation-ID"]
        extra = {"json": body} if body is not None else {}
        response = await client.open(path, method=method, headers=request_headers, **extra)
        if status == 204:
            assert response.status_code == 204, await response.get_data(as_text=True)
            return None
        return await json_of(response, status)

    klass = await call(
        "class_created", "POST", "/v1/classes", 201, {"name": "Contract", "course_codes": ["SV1"]}
    )
    student = await call(
        "student_created",
        "POST",
        "/v1/classes/students",
        201,
        {
            "person_name": {"first_name": "Con", "last_name": "Tract"},
            "email": "contract@example.com",
            "class_ids": [klass["id"]],
        },
    )
    await call(
        "class_updated",
        "PUT",
        f"/v1/classes/{klass['id']}",
        200,
        {"name": "Contract 2", "course_codes": ["SV2"]},
    )
    await call(
        "student_updated",
        "PUT",
        f"/v1/classes/students/{student['id']}",
        200,
        {
            "person_name": {"first_name": "Con", "last_name": "Tracted"},
            "remove_class_ids": [klass["id"]],
        },
    )
    await call("student_deleted", "DELETE", f"/v1/classes/students/{student['id']}", 204)
    await call("class_deleted", "DELETE", f"/v1/classes/{klass['id']}", 204)
    return {"class_id": klass["id"], "student_id": student["id"], "correlation": correlation}


async def test_every_published_message_honours_the_event_contract(
    client, headers, user_id, raw_reader: RawTopicReader
) -> None:
    published = await _publish_every_event_type(client, headers)
    class_key = published["class_id"].encode()
    student_key = published["student_id"].encode()

    messages = await raw_reader.wait_for_keys({class_key: 3, student_key: 3})

    assert len(messages) == 6
    assert {m.topic for m in messages} == set(CLASS_AND_STUDENT_TOPICS)
    correlation_ids = set(published["correlation"].values())
    for message in messages:
        raw = json.loads(message.value)
        event_cls = EVENT_BY_TOPIC[message.topic]
        # The wire format: exactly the envelope's fields, and exactly the event's fields.
        assert set(raw) == ENVELOPE_FIELDS, message.topic
        assert set(raw["data"]) == set(event_cls.model_fields), message.topic
        assert raw["event_type"] == message.topic
        assert raw["schema_version"] == 1
        assert raw["source_service"] == SOURCE_SERVICE
        assert raw["metadata"] is None or isinstance(raw["metadata"], dict)
        assert uuid.UUID(raw["event_id"])
        assert raw["correlation_id"] in correlation_ids
        assert datetime.fromisoformat(raw["event_timestamp"].replace("Z", "+00:00")).tzinfo
        assert isinstance(raw["data"]["version"], int) and raw["data"]["version"] >= 1
        # What consumers do: parse with common_core into the topic's event class.
        envelope = parse_event_message(message.value)
        assert type(envelope.data) is event_cls
        assert envelope.event_type == message.topic
        assert envelope.model_dump(mode="json") == raw  # nothing lost or added
        assert parse_event_message(message.value.decode()) == envelope
        # Key and headers agree with the envelope.
        assert message.key == envelope.data.aggregate_id.encode()
        assert message.headers["event_type"] == message.topic.encode()
        assert message.headers["event_id"] == str(envelope.event_id).encode()
        assert message.headers["correlation_id"] == str(envelope.correlation_id).encode()

    assert len({json.loads(m.value)["event_id"] for m in messages}) == 6


async def test_published_payloads_carry_the_request_facts(
    client, headers, user_id, raw_reader: RawTopicReader
) -> None:
    published = await _publish_every_event_type(client, headers)
    class_id, student_id = published["class_id"], published["student_id"]

    messages = await raw_reader.wait_for_keys({class_id.encode(): 3, student_id.encode(): 3})

    by_type = {m.topic: json.loads(m.value) for m in messages}
    correlation = published["correlation"]
    expected = {
        "huleedu.class.created.v1": (
            correlation["class_created"],
            {
                "class_id": class_id,
                "class_designation": "Contract",
                "course_codes": ["SV1"],
                "user_id": user_id,
                "version": 1,
                "student_count": 0,
                "status": "active",
            },
        ),
        "huleedu.class.student.created.v1": (
            correlation["student_created"],
            {
                "student_id": student_id,
                "first_name": "Con",
                "last_name": "Tract",
                "student_email": "contract@example.com",
                "class_ids": [class_id],
                "created_by_user_id": user_id,
                "version": 1,
                "legal_full_name": None,  # not sent yet: the service half of issue 14
            },
        ),
        "huleedu.class.updated.v1": (
            correlation["class_updated"],
            {
                "class_id": class_id,
                "class_designation": "Contract 2",
                "course_codes": ["SV2"],
                "user_id": user_id,
                "version": 2,
                "student_count": None,  # not sent yet: the service half of issue 14
                "status": "active",
                "previous": None,  # not sent yet: the service half of issue 14
            },
        ),
        "huleedu.class.student.updated.v1": (
            correlation["student_updated"],
            {
                "student_id": student_id,
                "first_name": "Con",
                "last_name": "Tracted",
                "student_email": None,
                "add_class_ids": None,
                "remove_class_ids": [class_id],
                "updated_by_user_id": user_id,
                "version": 2,
                # not sent yet: the service half of issue 14
                "legal_full_name": None,
                "class_ids": None,
                "previous": None,
            },
        ),
        "huleedu.class.student.deleted.v1": (
            correlation["student_deleted"],
            {"student_id": student_id, "user_id": user_id, "version": 3},
        ),
        "huleedu.class.deleted.v1": (
            correlation["class_deleted"],
            {"class_id": class_id, "user_id": user_id, "version": 3},
        ),
    }
    assert set(expected) == set(CLASS_AND_STUDENT_TOPICS)
    for topic, (correlation_id, data) in expected.items():
        assert by_type[topic]["correlation_id"] == correlation_id, topic
        assert by_type[topic]["data"] == data, topic


async def test_the_event_type_decides_the_schema(
    client, headers, raw_reader: RawTopicReader
) -> None:
    """A consumer cannot be fooled into reading one event as another: relabelled, it fails."""
    published = await _publish_every_event_type(client, headers)

    messages = await raw_reader.wait_for_keys({published["class_id"].encode(): 3})

    created = next(m for m in messages if m.topic == "huleedu.class.created.v1")
    raw = json.loads(created.value)
    for other_topic in ("huleedu.class.student.created.v1", "huleedu.class.student.deleted.v1"):
        relabelled = json.dumps({**raw, "event_type": other_topic}).encode()
        with pytest.raises(EventParseError) as error:
            parse_event_message(relabelled)
        assert error.value.event_type == other_topic
    with pytest.raises(EventParseError):
        parse_event_message(json.dumps({**raw, "schema_version": 2}).encode())
    with pytest.raises(EventParseError):
        parse_event_message(json.dumps({**raw, "event_type": "huleedu.unknown.v1"}).encode())

"""The broker takes some of a batch and not the rest: an aggregate's order must still hold.

An aggregate's events live on different topics (``created`` and ``updated`` of a class),
so one topic can be unavailable (no partition leader, a full disk, a dropped connection
to one broker) while another accepts writes. A relay that sends the whole batch at once
then gets ``updated`` acknowledged while ``created`` failed, and sends ``created`` later:
consumers see the update of a class that does not exist yet.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from aiokafka.errors import NotLeaderForPartitionError
from common_core.events import CHANGE_TOPICS
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.config import Settings
from services.class_management_service.domain import OutboxMessage
from services.class_management_service.implementations.class_management_service_impl import (
    ClassManagementServiceImpl,
)
from services.class_management_service.implementations.kafka_event_publisher_impl import (
    KafkaEventPublisherImpl,
)
from services.class_management_service.implementations.outbox_relay import (
    BrokerUnavailableError,
    OutboxRelay,
)
from services.class_management_service.implementations.postgres.repository import (
    PostgreSQLClassRepositoryImpl,
)
from services.class_management_service.tests.support.database import (
    outbox_rows,
)
from services.class_management_service.tests.support.kafka_events import (
    collect_events,
    order_problems,
)
from services.class_management_service.tests.unit.fakes import RecordingWaker

pytestmark = pytest.mark.timeout(60)

CREATED_TOPIC = "huleedu.class.created.v1"


class TopicWithoutLeader(KafkaEventPublisherImpl):
    """The real publisher, except that one topic has no leader while ``down`` is set."""

    def __init__(self, settings: Settings, topic: str) -> None:
        super().__init__(settings)
        self.topic = topic
        self.down = True

    async def publish(self, messages: Sequence[OutboxMessage]) -> list[BaseException | None]:
        if not self.down:
            return await super().publish(messages)
        passing = [m for m in messages if m.topic != self.topic]
        results = iter(await super().publish(passing))
        return [
            NotLeaderForPartitionError() if m.topic == self.topic else next(results)
            for m in messages
        ]


async def test_an_unavailable_topic_does_not_let_later_events_overtake(
    engine: AsyncEngine, settings: Settings
) -> None:
    owner = f"partial-{uuid.uuid4().hex[:8]}"
    service = ClassManagementServiceImpl(PostgreSQLClassRepositoryImpl(engine), RecordingWaker())
    correlation = uuid.uuid4()
    classes = []
    for index in range(3):
        record = await service.create_class(
            user_id=owner, correlation_id=correlation, name=f"c{index}", course_codes=["ENG5"]
        )
        for version in (2, 3):
            await service.update_class(
                user_id=owner,
                correlation_id=correlation,
                class_id=record.id,
                name=f"c{index} v{version}",
                course_codes=None,
                expected_version=None,
            )
        classes.append(record)

    publisher = TopicWithoutLeader(settings, CREATED_TOPIC)
    await publisher.start()
    try:
        relay = OutboxRelay(engine, publisher, settings)
        with pytest.raises(BrokerUnavailableError):
            await relay.relay_once()
        # Nothing of these classes may be out before their `created`: every row is pending.
        # Each change's event and state record (the state topic is up, and still waits).
        pending = await outbox_rows(engine)
        assert len(pending) == 18, [(row.topic, row.payload) for row in pending]
        written = {row.event_id for row in pending if row.topic in CHANGE_TOPICS}
        assert len(written) == 9

        publisher.down = False
        assert await relay.relay_once() == 18
    finally:
        await publisher.stop()

    assert await outbox_rows(engine) == []
    events = await collect_events(
        settings.KAFKA_BOOTSTRAP_SERVERS, lambda e: e.envelope.correlation_id == correlation, 9, 20
    )
    assert {e.envelope.event_id for e in events} == written
    assert order_problems(events) == []

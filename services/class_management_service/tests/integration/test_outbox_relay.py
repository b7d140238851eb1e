"""The outbox relay against a real database and a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest
from common_core.events import ClassCreatedV1, make_envelope
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.config import Settings
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
from services.class_management_service.models_db import EventOutbox
from services.class_management_service.tests.support.kafka_events import (
    EventCollector,
    assert_published_in_version_order,
)
from services.class_management_service.tests.unit.fakes import RecordingWaker


class CrashAfterAck(OutboxRelay):
    """Dies after the broker acknowledged a batch and before the rows are deleted."""

    crashes_left = 1

    async def _after_publish(self, messages: Any) -> None:
        if self.crashes_left:
            self.crashes_left -= 1
            raise RuntimeError("relay crashed after the broker acknowledged")


@pytest.fixture
def relay_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"RELAY_MAX_MESSAGE_BYTES": 4096, "RELAY_MAX_ATTEMPTS": 2, "RELAY_BATCH_SIZE": 50}
    )


@pytest.fixture
async def publisher(relay_settings: Settings):
    publisher = KafkaEventPublisherImpl(relay_settings)
    await publisher.start()
    yield publisher
    await publisher.stop()


@pytest.fixture
def service(engine: AsyncEngine) -> ClassManagementServiceImpl:
    return ClassManagementServiceImpl(PostgreSQLClassRepositoryImpl(engine), RecordingWaker())


async def _rows_left(engine: AsyncEngine) -> int:
    """Outbox rows not yet published (pending or parked): a published row is deleted."""
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT count(*) FROM event_outbox")))


async def _make_changes(service: ClassManagementServiceImpl, user: str, correlation: uuid.UUID):
    classes = []
    for i in range(5):
        record = await service.create_class(
            user_id=user, correlation_id=correlation, name=f"c{i}", course_codes=["ENG5"]
        )
        for j in range(3):
            await service.update_class(
                user_id=user,
                correlation_id=correlation,
                class_id=record.id,
                name=f"c{i}-v{j + 2}",
                course_codes=None,
                expected_version=None,
            )
        classes.append(record)
    return classes


async def test_relay_publishes_in_order_with_keys_and_marks_rows(
    engine, service, publisher, relay_settings, events: EventCollector
) -> None:
    correlation = uuid.uuid4()
    classes = await _make_changes(service, "relay-user", correlation)
    relay = OutboxRelay(engine, publisher, relay_settings)

    assert await relay.relay_once() == 40  # each change: its event and its state record
    assert await _rows_left(engine) == 0

    found = await events.wait_for(lambda e: e.envelope.correlation_id == correlation, count=20)
    for record in classes:
        mine = [e for e in found if e.key == str(record.id).encode()]
        assert sorted(e.envelope.data.version for e in mine) == [1, 2, 3, 4]
        assert_published_in_version_order(mine)
        created = next(e for e in mine if e.envelope.data.version == 1)
        assert created.headers["event_type"] == b"huleedu.class.created.v1"


class TimingOutPublisher(KafkaEventPublisherImpl):
    """The real publisher, whose connection times out with a plain TimeoutError (not a
    KafkaError) while ``down`` is set, as a client's socket can under load."""

    down = True

    async def publish(self, messages: Any) -> list[BaseException | None]:
        if self.down:
            raise TimeoutError("timed out talking to the broker")
        return await super().publish(messages)


async def test_whatever_the_producer_raises_is_a_broker_outage(
    engine, service, relay_settings, events: EventCollector
) -> None:
    correlation = uuid.uuid4()
    await _make_changes(service, "timeout-user", correlation)
    publisher = TimingOutPublisher(relay_settings)
    await publisher.start()
    try:
        relay = OutboxRelay(engine, publisher, relay_settings)
        with pytest.raises(BrokerUnavailableError, match="TimeoutError"):
            await relay.relay_once()
        rows = await _rows_left(engine)  # each change's event and state record
        assert rows == 40  # rolled back: nothing was deleted
        async with engine.connect() as connection:
            attempts = (await connection.execute(select(EventOutbox.attempts))).scalars().all()
        assert set(attempts) == {0}  # and nothing counted against a row
        publisher.down = False
        assert await relay.relay_once() == rows
    finally:
        await publisher.stop()
    await events.wait_for(lambda e: e.envelope.correlation_id == correlation, count=20)


async def test_crash_after_ack_republishes_with_the_same_event_id(
    engine, service, publisher, relay_settings, events: EventCollector
) -> None:
    correlation = uuid.uuid4()
    await _make_changes(service, "crash-user", correlation)
    crashing = CrashAfterAck(engine, publisher, relay_settings)

    with pytest.raises(RuntimeError):
        await crashing.relay_once()
    assert await _rows_left(engine) == 40  # nothing was deleted: the transaction rolled back
    assert await crashing.relay_once() == 40
    assert await _rows_left(engine) == 0

    found = await events.wait_for(lambda e: e.envelope.correlation_id == correlation, count=40)
    per_event = Counter(e.envelope.event_id for e in found)
    assert len(per_event) == 20
    assert set(per_event.values()) == {2}  # every event twice, always with its own id
    # A consumer that dedupes by event_id sees each change once, in order.
    seen: set[uuid.UUID] = set()
    deduped = []
    for event in sorted(found, key=lambda e: (e.timestamp_ms, e.topic, e.offset)):
        if event.envelope.event_id not in seen:
            seen.add(event.envelope.event_id)
            deduped.append(event)
    assert len(deduped) == 20


async def test_poison_row_is_retried_then_parked_without_blocking_others(
    engine, service, publisher, relay_settings, events: EventCollector
) -> None:
    poison_id = uuid.uuid4()
    envelope = make_envelope(
        ClassCreatedV1(
            class_id=uuid.uuid4(),
            class_designation="x" * 200,
            course_codes=["ENG5"],
            user_id="poison",
            version=1,
        ),
        source_service="class_management_service",
        event_id=poison_id,
        metadata={"padding": "p" * 8000},  # larger than RELAY_MAX_MESSAGE_BYTES
    )
    async with engine.begin() as connection:
        await connection.execute(
            insert(EventOutbox).values(
                event_id=poison_id,
                event_type=envelope.event_type,
                topic="huleedu.class.created.v1",
                aggregate_id=str(envelope.data.class_id),
                payload=envelope.model_dump(mode="json"),
            )
        )
    correlation = uuid.uuid4()
    await _make_changes(service, "after-poison", correlation)
    relay = OutboxRelay(engine, publisher, relay_settings)

    # The 20 changes' events and state records, and the poison row.
    assert await relay.relay_once() == 41
    # At once, before waiting for the consumer: the row's first retry is due a second after
    # its failure, and on a busy machine the consumer alone can take longer than that.
    assert await relay.relay_once() == 0  # backing off: not retried at once
    async with engine.connect() as connection:
        row = (
            await connection.execute(select(EventOutbox).where(EventOutbox.event_id == poison_id))
        ).one()
    assert (row.attempts, row.parked_at) == (1, None)
    assert "MessageSizeTooLarge" in row.last_error
    await events.wait_for(lambda e: e.envelope.correlation_id == correlation, count=20)

    await asyncio.sleep(1.2)
    assert await relay.relay_once() == 1
    async with engine.connect() as connection:
        row = (
            await connection.execute(select(EventOutbox).where(EventOutbox.event_id == poison_id))
        ).one()
    assert row.attempts == 2 and row.parked_at is not None
    assert await _rows_left(engine) == 1  # parked, kept: the 40 others were deleted
    assert await relay.relay_once() == 0


async def test_two_relays_share_the_work_without_double_publishing(
    engine, service, publisher, relay_settings, events: EventCollector
) -> None:
    correlation = uuid.uuid4()
    classes = await _make_changes(service, "two-relays", correlation)
    small_batches = relay_settings.model_copy(update={"RELAY_BATCH_SIZE": 3})
    second_publisher = KafkaEventPublisherImpl(small_batches)
    await second_publisher.start()
    try:
        first = OutboxRelay(engine, publisher, small_batches)
        second = OutboxRelay(engine, second_publisher, small_batches)
        for _ in range(30):
            claimed = await asyncio.gather(first.relay_once(), second.relay_once())
            if sum(claimed) == 0 and await _rows_left(engine) == 0:
                break
    finally:
        await second_publisher.stop()

    assert await _rows_left(engine) == 0
    found = await events.wait_for(lambda e: e.envelope.correlation_id == correlation, count=20)
    await asyncio.sleep(0.5)
    await events.poll()
    found = events.matching(lambda e: e.envelope.correlation_id == correlation)
    assert len(found) == 20  # none twice
    for record in classes:
        mine = [e for e in found if e.key == str(record.id).encode()]
        assert sorted(e.envelope.data.version for e in mine) == [1, 2, 3, 4]
        assert_published_in_version_order(mine)

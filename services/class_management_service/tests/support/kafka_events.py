"""Reads what the service really published, from the real broker: one collector, and the
checks the tests make of what it collected (who caused an event, their order)."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from common_core.events import (
    CHANGE_TOPICS,
    STATE_TOPICS,
    EventEnvelope,
    parse_event_message,
    parse_state_record,
)


@dataclass(frozen=True)
class ConsumedEvent:
    """One record from the broker, its envelope parsed as consumers parse it: a change
    topic's with ``parse_event_message``, a state topic's with ``parse_state_record``
    (``envelope`` None: a tombstone)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int  # the producer's CreateTime
    key: bytes | None
    headers: dict[str, bytes]
    envelope: EventEnvelope[Any]  # None only for a state topic's tombstone

    @classmethod
    def of(cls, record: ConsumerRecord[Any, Any]) -> ConsumedEvent:
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            headers={name: value for name, value in record.headers},
            envelope=(
                parse_state_record(record.topic, record.key, record.value).envelope  # type: ignore[arg-type]
                if record.topic in STATE_TOPICS
                else parse_event_message(record.value)
            ),
        )


class EventCollector:
    """A consumer without a group (no join delay) reading ``topics`` (the change topics
    unless told) from the beginning."""

    def __init__(self, bootstrap: str, topics: Iterable[str] = CHANGE_TOPICS) -> None:
        self._bootstrap = bootstrap
        self._topics = tuple(topics)
        self._consumer: AIOKafkaConsumer | None = None
        self.events: list[ConsumedEvent] = []

    async def __aenter__(self) -> EventCollector:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        # A metadata request naming a topic creates it on brokers with auto-creation on;
        # the producer's partitions_for makes exactly that request.
        probe = AIOKafkaProducer(bootstrap_servers=self._bootstrap, enable_idempotence=False)
        await probe.start()
        try:
            partitions = [
                TopicPartition(topic, partition)
                for topic in self._topics
                for partition in sorted(await probe.partitions_for(topic))
            ]
        finally:
            await probe.stop()
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._consumer = consumer
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self, timeout: float = 0.5) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=int(timeout * 1000))
        for records in batches.values():
            self.events.extend(ConsumedEvent.of(record) for record in records)

    async def wait_for(
        self, predicate: Callable[[ConsumedEvent], bool], count: int = 1, timeout: float = 20.0
    ) -> list[ConsumedEvent]:
        """At least ``count`` events matching ``predicate``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [event for event in self.events if predicate(event)]
            if len(matching) >= count:
                return matching
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} matching events within {timeout}s, got {len(matching)}"
                )
            await self.poll()

    def matching(self, predicate: Callable[[ConsumedEvent], bool]) -> list[ConsumedEvent]:
        return [event for event in self.events if predicate(event)]


def assert_published_in_version_order(events: list[ConsumedEvent]) -> None:
    """One aggregate's events were sent in version order.

    Within a topic, one key's events share a partition and offsets give their order. Across
    topics (created vs updated) offsets say nothing; the producer's timestamps, taken at
    send time, must not go backwards when the events are sorted by version.
    """
    by_version = sorted(events, key=lambda e: e.envelope.data.version)
    versions = [e.envelope.data.version for e in by_version]
    assert versions == sorted(set(versions)), f"duplicate or missing versions: {versions}"
    stamps = [e.timestamp_ms for e in by_version]
    assert stamps == sorted(stamps), f"sent out of version order: {versions} at {stamps}"
    for topic in {e.topic for e in events}:
        in_topic = sorted((e for e in events if e.topic == topic), key=lambda e: e.offset)
        assert len({e.partition for e in in_topic}) == 1, "one key must stay in one partition"
        topic_versions = [e.envelope.data.version for e in in_topic]
        assert topic_versions == sorted(topic_versions), f"{topic}: {topic_versions}"


async def collect_events(
    bootstrap: str,
    predicate: Callable[[ConsumedEvent], bool],
    count: int,
    timeout: float,
    settle: float = 1.0,
) -> list[ConsumedEvent]:
    """At least ``count`` matching events from the broker (failing after ``timeout``), then
    whatever else arrives within ``settle`` seconds, so that duplicates are seen too."""
    async with EventCollector(bootstrap) as collector:
        await collector.wait_for(predicate, count=count, timeout=timeout)
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            await collector.poll(timeout=0.2)
        return [e for e in collector.events if predicate(e)]


async def read_to_end(
    bootstrap: str, topics: Iterable[str], timeout: float = 60.0
) -> list[ConsumedEvent]:
    """Every record of ``topics`` from the beginning to the end they had when asked."""
    async with EventCollector(bootstrap, topics) as collector:
        consumer = collector._consumer
        assert consumer is not None
        ends = await consumer.end_offsets(list(consumer.assignment()))
        deadline = time.monotonic() + timeout
        while True:
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind:
                return collector.events
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {sorted(set(topics))} to the end")
            await collector.poll()


def by_user(user_id: str) -> Callable[[ConsumedEvent], bool]:
    """Events caused by ``user_id`` (class events name it user_id, student events
    created_by_user_id or updated_by_user_id)."""

    def caused_by(event: ConsumedEvent) -> bool:
        data = event.envelope.data
        return user_id in (
            getattr(data, "user_id", None),
            getattr(data, "created_by_user_id", None),
            getattr(data, "updated_by_user_id", None),
        )

    return caused_by


def order_problems(events: Iterable[ConsumedEvent]) -> list[str]:
    """Ordering faults among one aggregate's events.

    * Within a partition of one topic, an aggregate's versions must increase.
    * An aggregate's events live on several topics (created, updated, deleted), which the
      broker does not order among each other. What a consumer can rely on is that an event
      with a higher version was produced no earlier than a lower one: the producer stamps
      every record when it is sent (CreateTime), so a `created` resent after its `updated`
      shows up as a later timestamp on the lower version.
    """
    problems: list[str] = []
    by_partition: dict[tuple[str, int, bytes | None], list[ConsumedEvent]] = defaultdict(list)
    first_seen: dict[tuple[bytes | None, uuid.UUID], ConsumedEvent] = {}
    for event in events:
        by_partition[(event.topic, event.partition, event.key)].append(event)
        seen = first_seen.get((event.key, event.envelope.event_id))
        if seen is None or event.timestamp_ms < seen.timestamp_ms:
            first_seen[(event.key, event.envelope.event_id)] = event  # the earliest copy
    for (topic, partition, key), mine in by_partition.items():
        versions = [e.envelope.data.version for e in sorted(mine, key=lambda e: e.offset)]
        distinct = list(dict.fromkeys(versions))  # a redelivered duplicate is not disorder
        if distinct != sorted(distinct):
            problems.append(f"{key!r} on {topic}[{partition}]: versions in order {versions}")
    by_key: dict[bytes | None, list[ConsumedEvent]] = defaultdict(list)
    for (key, _), event in first_seen.items():
        by_key[key].append(event)
    for key, mine in by_key.items():
        ordered = sorted(mine, key=lambda e: e.envelope.data.version)
        stamps = [e.timestamp_ms for e in ordered]
        if stamps != sorted(stamps):
            problems.append(
                f"{key!r}: produced out of order: "
                + ", ".join(f"v{e.envelope.data.version}@{e.timestamp_ms}" for e in ordered)
            )
    return problems

"""Reads what the service really published, from the real broker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from common_core.events import ALL_TOPICS, EventEnvelope, parse_event_message


@dataclass(frozen=True)
class ConsumedEvent:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    headers: dict[str, bytes]
    envelope: EventEnvelope[Any]


class EventCollector:
    """A consumer without a group (no join delay) reading every topic from the beginning."""

    def __init__(self, bootstrap: str, topics: Iterable[str] = ALL_TOPICS) -> None:
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
        for partition, records in batches.items():
            for record in records:
                self.events.append(
                    ConsumedEvent(
                        topic=partition.topic,
                        partition=partition.partition,
                        offset=record.offset,
                        timestamp_ms=record.timestamp,
                        key=record.key,
                        headers={name: value for name, value in record.headers},
                        envelope=parse_event_message(record.value),
                    )
                )

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

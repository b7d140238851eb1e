"""The outbox after a broker outage: how fast a backlog of changes drains, in order.

Run by run_bench.py (``--backlog N``, on by default with ``--scale``) against the served API
and relay:

1. the broker's process is stopped (``LocalStack.stop_component("kafka")``);
2. the bench's write scenarios run in turn until the outbox holds at least N change events
   (the relay keeps them: a broker error is no attempt against a row);
3. the broker is started again (it comes back empty) and the topics are created with the
   service's own command, the relay paused meanwhile (SIGSTOP: a send of the relay's would
   auto-create a topic, and the local broker, tansu, keeps failing every later produce to
   a topic created twice); a consumer assigned every partition of the change topics reads
   from the beginning;
4. the outbox is polled until it is empty, and the consumer reads until it has every change
   event. Each (topic, key)'s versions must come in increasing order.

Reported: the changes, the seconds from the broker's return (the relay resumed) until its first
publication, until the outbox is empty and until the last event was consumed, and change
events drained per second (from the first publication to the last change consumed).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from common_core.events.topics import CHANGE_TOPICS

PENDING_CHANGES = "SELECT count(*) FROM event_outbox WHERE topic = ANY($1::text[])"
PENDING_ROWS = "SELECT count(*) FROM event_outbox WHERE parked_at IS NULL"
PARKED_ROWS = "SELECT count(*) FROM event_outbox WHERE parked_at IS NOT NULL"


@dataclass
class Backlog:
    changes: int = 0  # change events in the outbox when the broker came back
    rows: int = 0  # outbox rows then (state records included)
    write_s: float = 0.0  # seconds spent writing them
    first_published_s: float = float("nan")  # broker back -> first row gone
    empty_s: float = float("nan")  # broker back -> outbox empty
    last_consumed_s: float = float("nan")  # broker back -> last change event consumed
    consumed: int = 0
    out_of_order: int = 0  # (topic, key)s whose version did not increase
    parked: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)

    @property
    def drained_per_s(self) -> float:
        return self.changes / max(self.last_consumed_s - self.first_published_s, 1e-9)


class ChangeConsumer:
    """Reads every change topic from the beginning in a thread of its own, checking that
    each (topic, key)'s versions increase."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.consumed = 0
        self.last_at = float("nan")
        self.out_of_order = 0
        self.per_topic: dict[str, int] = {}
        self._versions: dict[tuple[str, bytes], int] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(60):
            raise SystemExit("the backlog's consumer did not start in 60 s")
        if self._error is not None:
            raise SystemExit(f"the backlog's consumer failed: {self._error!r}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._consume())
        except BaseException as error:  # reported by start() or the caller
            self._error = error
            self._ready.set()

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=5000,
        )
        await consumer.start()
        try:
            await consumer.topics()
            partitions = [
                TopicPartition(topic, number)
                for topic in CHANGE_TOPICS
                for number in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            self._ready.set()
            while not self._stop.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                now = time.monotonic()
                for records in batches.values():
                    for record in records:
                        self._take(record.topic, record.key, record.value)
                    if records:
                        self.last_at = now
        finally:
            await consumer.stop()

    def _take(self, topic: str, key: bytes, value: bytes) -> None:
        self.consumed += 1
        self.per_topic[topic] = self.per_topic.get(topic, 0) + 1
        version = int(json.loads(value)["data"]["version"])
        previous = self._versions.get((topic, key))
        if previous is not None and version <= previous:
            self.out_of_order += 1
        self._versions[(topic, key)] = version


def measure_backlog(
    target: int,
    stack: Any,
    relay_pid: int,
    database_url: str,
    query: Callable[..., list[Any]],
    write_for: Callable[[float], None],
    create_topics: Callable[[], None],
    log: Callable[[str], None],
    timeout_s: float = 900.0,
) -> Backlog:
    """Write ``target`` change events or more while the broker is down (``write_for(s)``
    runs the writes for about s seconds), bring it back, and time the drain."""

    def count(sql: str, *args: Any) -> int:
        return int(query(database_url, sql, *args)[0][0])

    backlog = Backlog()
    log("backlog: stopping the broker")
    stack.stop_component("kafka")
    started = time.monotonic()
    try:
        while (written := count(PENDING_CHANGES, list(CHANGE_TOPICS))) < target:
            log(f"backlog: {written:,} of {target:,} change events written")
            write_for(5.0)
    finally:
        backlog.write_s = time.monotonic() - started
        backlog.changes = count(PENDING_CHANGES, list(CHANGE_TOPICS))
        backlog.rows = count(PENDING_ROWS)
        log(f"backlog: {backlog.changes:,} change events ({backlog.rows:,} rows); broker back")
        os.kill(relay_pid, signal.SIGSTOP)
        try:
            stack.start_component("kafka")
            create_topics()
        finally:
            os.kill(relay_pid, signal.SIGCONT)
    back = time.monotonic()
    consumer = ChangeConsumer(stack.kafka_bootstrap)
    consumer.start()
    try:
        deadline = back + timeout_s
        while time.monotonic() < deadline:
            pending = count(PENDING_ROWS)
            now = time.monotonic() - back
            if pending < backlog.rows and math.isnan(backlog.first_published_s):
                backlog.first_published_s = now
            if pending == 0 and math.isnan(backlog.empty_s):
                backlog.empty_s = now
                log(f"backlog: the outbox is empty after {now:.1f} s")
            if consumer.consumed >= backlog.changes and pending == 0:
                break
            time.sleep(0.2)
        # The last change may arrive a moment after the outbox emptied: give it a poll.
        time.sleep(0.5)
    finally:
        consumer.stop()
    backlog.consumed = consumer.consumed
    backlog.last_consumed_s = consumer.last_at - back
    backlog.out_of_order = consumer.out_of_order
    backlog.per_topic = dict(sorted(consumer.per_topic.items()))
    backlog.parked = count(PARKED_ROWS)
    return backlog

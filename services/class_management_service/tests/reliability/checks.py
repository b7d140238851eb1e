"""What the reliability tests check, written once: database state, events, responses."""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka.structs import ConsumerRecord
from common_core.events import EventEnvelope, parse_event_message
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.tests.support.kafka_events import EventCollector

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "correlation_id"}
LEAK_MARKERS = ("Traceback", 'File "', "sqlalchemy", "asyncpg", '.py", line')

# Every table's content, in a stable order. The outbox is seen through its id sequence,
# which every event ever written advanced: the relay deletes rows once they are published
# (and retries change them), but a request must not add events.
_TABLE_DIGESTS = {
    "classes": "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM classes t",
    "students": "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM students t",
    "class_student_association": (
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.class_id, t.student_id), ''))"
        " FROM class_student_association t"
    ),
    "essay_student_associations": (
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), ''))"
        " FROM essay_student_associations t"
    ),
    "event_outbox": "SELECT last_value || ':' || is_called FROM event_outbox_id_seq",
}


async def database_digest(engine: AsyncEngine) -> dict[str, str]:
    """A digest per table: equal digests mean equal content."""
    async with engine.connect() as connection:
        return {
            table: str(await connection.scalar(text(sql))) for table, sql in _TABLE_DIGESTS.items()
        }


async def outbox_rows(engine: AsyncEngine, where: str = "true", **params: Any) -> list[Any]:
    async with engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT id, event_id, event_type, aggregate_id, payload, attempts, last_error,"
                " created_at, next_attempt_at, parked_at"
                f" FROM event_outbox WHERE {where} ORDER BY id"
            ),
            params,
        )
        return list(result)


async def pending_outbox(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            await connection.scalar(
                text("SELECT count(*) FROM event_outbox WHERE parked_at IS NULL")
            )
        )


@dataclass(frozen=True)
class TimedEvent:
    """A consumed event with its record's producer timestamp (ms)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    headers: dict[str, bytes]
    envelope: EventEnvelope[Any]


class TimedEventCollector(EventCollector):
    """EventCollector (no consumer group, every topic from the beginning) of TimedEvents."""

    events: list[TimedEvent]  # type: ignore[assignment]

    async def poll(self, timeout: float = 0.5) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=int(timeout * 1000))
        for partition, records in batches.items():
            for record in records:
                self.events.append(_timed(partition.topic, partition.partition, record))


def _timed(topic: str, partition: int, record: ConsumerRecord[Any, Any]) -> TimedEvent:
    return TimedEvent(
        topic=topic,
        partition=partition,
        offset=record.offset,
        key=record.key,
        headers={name: value for name, value in record.headers},
        envelope=parse_event_message(record.value),
        timestamp=record.timestamp,
    )


async def collect_events(
    bootstrap: str,
    predicate: Callable[[TimedEvent], bool],
    count: int,
    timeout: float,
    settle: float = 1.0,
) -> list[TimedEvent]:
    """At least ``count`` matching events from the broker (failing after ``timeout``), then
    whatever else arrives within ``settle`` seconds, so that duplicates are seen too."""
    async with TimedEventCollector(bootstrap) as collector:
        await collector.wait_for(predicate, count=count, timeout=timeout)
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            await collector.poll(timeout=0.2)
        return [e for e in collector.events if predicate(e)]


def by_user(user_id: str) -> Callable[[TimedEvent], bool]:
    """Events caused by ``user_id`` (class events name it user_id, student events
    created_by_user_id or updated_by_user_id)."""

    def caused_by(event: TimedEvent) -> bool:
        data = event.envelope.data
        return user_id in (
            getattr(data, "user_id", None),
            getattr(data, "created_by_user_id", None),
            getattr(data, "updated_by_user_id", None),
        )

    return caused_by


def order_problems(events: Iterable[TimedEvent]) -> list[str]:
    """Ordering faults among one aggregate's events.

    * Within a partition of one topic, an aggregate's versions must increase.
    * An aggregate's events live on several topics (created, updated, deleted), which the
      broker does not order among each other. What a consumer can rely on is that an event
      with a higher version was produced no earlier than a lower one: the producer stamps
      every record when it is sent (CreateTime), so a `created` resent after its `updated`
      shows up as a later timestamp on the lower version.
    """
    problems: list[str] = []
    by_partition: dict[tuple[str, int, bytes | None], list[TimedEvent]] = defaultdict(list)
    first_seen: dict[tuple[bytes | None, uuid.UUID], TimedEvent] = {}
    for event in events:
        by_partition[(event.topic, event.partition, event.key)].append(event)
        seen = first_seen.get((event.key, event.envelope.event_id))
        if seen is None or event.timestamp < seen.timestamp:
            first_seen[(event.key, event.envelope.event_id)] = event  # the earliest copy
    for (topic, partition, key), mine in by_partition.items():
        versions = [e.envelope.data.version for e in sorted(mine, key=lambda e: e.offset)]
        distinct = list(dict.fromkeys(versions))  # a redelivered duplicate is not disorder
        if distinct != sorted(distinct):
            problems.append(f"{key!r} on {topic}[{partition}]: versions in order {versions}")
    by_key: dict[bytes | None, list[TimedEvent]] = defaultdict(list)
    for (key, _), event in first_seen.items():
        by_key[key].append(event)
    for key, mine in by_key.items():
        ordered = sorted(mine, key=lambda e: e.envelope.data.version)
        stamps = [e.timestamp for e in ordered]
        if stamps != sorted(stamps):
            problems.append(
                f"{key!r}: produced out of order: "
                + ", ".join(f"v{e.envelope.data.version}@{e.timestamp}" for e in ordered)
            )
    return problems


def duplicates(events: Iterable[TimedEvent]) -> dict[uuid.UUID, int]:
    counts = Counter(event.envelope.event_id for event in events)
    return {event_id: n for event_id, n in counts.items() if n > 1}


def check_problem(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """An RFC 9457 problem response without leaked internals; returns its body."""
    raw = response.text
    where = f"{response.request.method} {response.request.url}"
    assert response.headers.get("content-type", "").startswith(PROBLEM_CONTENT_TYPE), (
        f"{where}: {response.status_code} {response.headers.get('content-type')}: {raw[:500]}"
    )
    if status is not None:
        assert response.status_code == status, f"{where}: {response.status_code}: {raw[:500]}"
    for marker in LEAK_MARKERS:
        assert marker not in raw, f"{where}: the response leaks {marker!r}: {raw[:500]}"
    body = response.json()
    assert PROBLEM_FIELDS <= set(body), body
    assert body["status"] == response.status_code, body
    return body


def user(user_id: str, **extra: str) -> dict[str, str]:
    return {"X-User-ID": user_id, "X-Correlation-ID": str(uuid.uuid4()), **extra}


async def create_class(
    client: httpx.AsyncClient, user_id: str, name: str = "9A", course: str = "ENG5"
) -> dict[str, Any]:
    response = await client.post(
        "/v1/classes", json={"name": name, "course_codes": [course]}, headers=user(user_id)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_student(
    client: httpx.AsyncClient,
    user_id: str,
    first: str = "Ada",
    last: str = "Lovelace",
    email: str | None = None,
    class_ids: Iterable[str] = (),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "person_name": {"first_name": first, "last_name": last},
        "class_ids": list(class_ids),
    }
    if email is not None:
        body["email"] = email
    response = await client.post("/v1/classes/students", json=body, headers=user(user_id))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def metric_value(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """One sample of the Prometheus text at /metrics (0 when it is absent)."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    wanted = name + (
        "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
    )
    for line in response.text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        if sample == wanted:
            return float(value)
    return 0.0

"""Fault 1: the broker is down. Writes still succeed; nothing is lost; order holds.

An API replica stays in service (200 ``degraded``, Kafka named); the relay process, which
exists to publish, reports 503. The outage is logged once when it starts and once when it
ends, not per retry."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

import httpx
import pytest
from common_core.events import CHANGE_TOPICS
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.tests.reliability.conftest import FaultEnv
from services.class_management_service.tests.support.api import (
    user_headers,
)
from services.class_management_service.tests.support.database import (
    outbox_rows,
)
from services.class_management_service.tests.support.kafka_events import (
    by_user,
    collect_events,
    order_problems,
)
from services.class_management_service.tests.support.polling import wait_until
from services.class_management_service.tests.support.service_process import ServiceProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CLASSES = 300
UPDATED = 100
DELIVERY_DEADLINE_SECONDS = 30.0


async def health(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/healthz")
    return response.status_code, response.json()


async def wait_for_health(
    client: httpx.AsyncClient, predicate: Any, timeout: float
) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    async def holds() -> bool:
        status, body = await health(client)
        seen.append({"http": status, **body})
        return bool(predicate(status, body))

    try:
        await wait_until(holds, timeout, interval=0.25)
    except AssertionError:
        raise AssertionError(f"health never matched within {timeout}s; last: {seen[-1:]}") from None
    return seen[-1]


async def test_kafka_outage_loses_nothing_and_keeps_each_class_in_order(
    fault_env: FaultEnv, fault_engine: AsyncEngine
) -> None:
    # A request timeout shorter than the outage: the relay's first pass must fail (and so
    # see the outage) before the broker is back, rather than wait for it (10 s by default,
    # longer than the writes below take).
    service = fault_env.start_service(LOG_LEVEL="INFO", KAFKA_REQUEST_TIMEOUT_MS="2000")
    owner = f"kafka-outage-{uuid.uuid4().hex[:8]}"
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=service.base_url, timeout=15) as client:
        await wait_for_health(client, all_ok, timeout=30)

        await fault_env.stop_component("kafka")
        down = await wait_for_health(client, kafka_down_but_serving, timeout=30)
        assert down["dependencies"]["postgres"]["status"] == "ok", down

        async def create(index: int) -> dict[str, Any]:
            async with limit:
                response = await client.post(
                    "/v1/classes",
                    json={"name": f"class {index}", "course_codes": ["ENG5"]},
                    headers=user_headers(owner),
                )
            assert response.status_code == 201, response.text
            return dict(response.json())

        async def rename(record: dict[str, Any]) -> dict[str, Any]:
            async with limit:
                response = await client.put(
                    f"/v1/classes/{record['id']}",
                    json={"name": record["name"] + " (renamed)"},
                    headers=user_headers(owner, **{"If-Match": '"1"'}),
                )
            assert response.status_code == 200, response.text
            return dict(response.json())

        started = time.monotonic()
        classes = await asyncio.gather(*(create(i) for i in range(CLASSES)))
        renamed = await asyncio.gather(*(rename(record) for record in classes[:UPDATED]))
        writing_took = time.monotonic() - started
        assert {r["version"] for r in renamed} == {2}

        # Nothing was published meanwhile: the relay deletes a row once the broker took it.
        # Each change wrote its event and its state record.
        rows = await outbox_rows(fault_engine)
        events_written = [row for row in rows if row.topic in CHANGE_TOPICS]
        assert len(events_written) == CLASSES + UPDATED, "published while the broker is down"
        assert len(rows) == 2 * (CLASSES + UPDATED), "state records published meanwhile"
        written = {row.event_id for row in events_written}
        status, body = await health(client)
        assert kafka_down_but_serving(status, body), body
        # The relay has met the outage before the broker comes back (on a busy machine its
        # first send can still be waiting for metadata when a short outage is over, and an
        # outage no send failed in is logged by nobody).
        await wait_until(lambda: _logged(service, "is unavailable; events wait"), timeout=60)

        await fault_env.start_component("kafka")
        restarted = time.monotonic()
        events = await collect_events(
            fault_env.kafka_bootstrap,
            by_user(owner),
            count=CLASSES + UPDATED,
            timeout=DELIVERY_DEADLINE_SECONDS,
        )
        delivered_within = time.monotonic() - restarted

        await wait_for_health(client, all_ok, timeout=30)

    # Every outbox row arrived, each event_id exactly once (no crash: no redelivery), and
    # left the outbox once acknowledged.
    await wait_until(lambda: _outbox_empty(fault_engine), timeout=60)
    per_event = Counter(e.envelope.event_id for e in events)
    assert set(per_event) == written
    assert set(per_event.values()) == {1}, {k: v for k, v in per_event.items() if v > 1}

    # For every class: created (v1), and for the renamed ones updated (v2) after it.
    by_class: dict[str, list[Any]] = defaultdict(list)
    for event in events:
        by_class[str(event.envelope.data.class_id)].append(event)
    assert set(by_class) == {record["id"] for record in classes}
    for record in classes:
        types = sorted((e.envelope.data.version, e.topic) for e in by_class[record["id"]])
        expected = [(1, "huleedu.class.created.v1")]
        if record in classes[:UPDATED]:
            expected.append((2, "huleedu.class.updated.v1"))
        assert types == expected, (record["id"], types)
    assert order_problems(events) == []
    await wait_until(lambda: _logged(service, "Kafka is available again"), timeout=30)
    log = service.log_text()
    # One WARNING when the outage began, one INFO when it ended: none per retry.
    assert log.count("is unavailable; events wait in the outbox") == 1, log
    (ended,) = [line for line in log.splitlines() if "Kafka is available again after" in line]
    assert " INFO " in ended and "events that waited were published" in ended, ended
    assert int(ended.split("; ")[1].split()[0]) >= 1, ended
    assert " ERROR " not in log, log
    print(
        f"wrote {CLASSES + UPDATED} changes in {writing_took:.1f}s with Kafka down; "
        f"all delivered {delivered_within:.1f}s after the broker came back"
    )


async def test_service_starts_without_kafka_and_publishes_once_the_broker_appears(
    fault_env: FaultEnv, fault_engine: AsyncEngine
) -> None:
    await fault_env.stop_component("kafka")
    service = fault_env.start_service()
    relay = fault_env.start_service("relay", command="relay")
    owner = f"kafka-late-{uuid.uuid4().hex[:8]}"
    async with (
        httpx.AsyncClient(base_url=service.base_url, timeout=15) as client,
        httpx.AsyncClient(base_url=relay.base_url, timeout=15) as relay_client,
    ):
        status, body = await health(client)
        assert kafka_down_but_serving(status, body), body
        # The relay process exists to publish: without a broker it is not healthy.
        status, body = await health(relay_client)
        assert status == 503 and body["dependencies"]["kafka"]["status"] == "down", body
        for index in range(20):
            response = await client.post(
                "/v1/classes",
                json={"name": f"early {index}", "course_codes": ["SV2"]},
                headers=user_headers(owner),
            )
            assert response.status_code == 201, response.text

        rows = await outbox_rows(fault_engine)
        written = {row.event_id for row in rows if row.topic in CHANGE_TOPICS}
        assert len(written) == 20 and len(rows) == 40  # each creation's event and state record
        await fault_env.start_component("kafka")
        events = await collect_events(
            fault_env.kafka_bootstrap,
            by_user(owner),
            count=20,
            timeout=DELIVERY_DEADLINE_SECONDS,
        )
        await wait_for_health(client, all_ok, timeout=30)
        await wait_for_health(relay_client, all_ok, timeout=30)
    assert Counter(e.envelope.event_id for e in events) == dict.fromkeys(written, 1)
    await wait_until(lambda: _outbox_empty(fault_engine), timeout=60)


def kafka_down_but_serving(status: int, body: dict[str, Any]) -> bool:
    """An API replica stays in service while the broker is down: 200, degraded, Kafka named."""
    return (
        status == 200
        and body["status"] == "degraded"
        and body["dependencies"]["kafka"]["status"] == "down"
        and body["dependencies"]["postgres"]["status"] == "ok"
    )


def all_ok(status: int, body: dict[str, Any]) -> bool:
    return status == 200 and body["status"] == "ok"


async def _logged(service: ServiceProcess, text: str) -> bool:
    return text in service.log_text()


async def _outbox_empty(engine: AsyncEngine) -> bool:
    return not await outbox_rows(engine)

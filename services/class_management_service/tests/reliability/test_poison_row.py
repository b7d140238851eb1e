"""Fault 6: an outbox row the broker can never take, through the running service.

The relay-level behaviour is proven in tests/integration/test_outbox_relay.py
(test_poison_row_is_retried_then_parked_without_blocking_others); here the real service
meets a real oversized event: it is retried with back-off, parked with its error recorded
and counted in /metrics, and newer events keep flowing meanwhile.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from common_core.events import CLASS_STATE_TOPIC
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.tests.reliability.conftest import FaultEnv
from services.class_management_service.tests.support.api import (
    create_class,
    metric_value,
)
from services.class_management_service.tests.support.database import (
    outbox_rows,
)
from services.class_management_service.tests.support.kafka_events import (
    by_user,
    collect_events,
)
from services.class_management_service.tests.support.polling import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

MAX_ATTEMPTS = 3
# 255 characters of four UTF-8 bytes each: a valid name whose event exceeds 1 KiB (and so
# does the class's state record).
HUGE_NAME = "\U0001d11e" * 255
CREATED_TOPIC = "huleedu.class.created.v1"
POISON_TOPICS = {CREATED_TOPIC, CLASS_STATE_TOPIC}


async def test_oversized_event_is_retried_parked_and_counted_without_blocking_others(
    fault_env: FaultEnv, fault_engine: AsyncEngine
) -> None:
    service = fault_env.start_service(
        RELAY_MAX_MESSAGE_BYTES=1024, RELAY_MAX_ATTEMPTS=MAX_ATTEMPTS, RELAY_MAX_BACKOFF_SECONDS=2
    )
    owner = f"poison-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=service.base_url, timeout=15) as client:
        failures_before = await metric_value(
            client, "cms_outbox_publish_failures_total", kind="message"
        )
        parked_before = await metric_value(client, "cms_outbox_parked_total")

        poison = await create_class(client, owner, name=HUGE_NAME)
        assert poison["name"] == HUGE_NAME  # the request itself is fine
        healthy = [await create_class(client, owner, name=f"ok {i}") for i in range(5)]

        # Newer rows are published while the poison row is still being retried.
        events = await collect_events(
            fault_env.kafka_bootstrap,
            by_user(owner),
            count=len(healthy),
            timeout=15,
            settle=0.2,
        )
        assert {str(e.envelope.data.class_id) for e in events} == {c["id"] for c in healthy}

        # The poison class's rows: its created event and its state record, both oversized.
        async def poison_rows() -> dict[str, Any]:
            rows = await outbox_rows(fault_engine, "aggregate_id = :id", id=poison["id"])
            return {row.topic: row for row in rows}

        async def parked() -> bool:
            rows = await poison_rows()
            return set(rows) == POISON_TOPICS and all(r.parked_at for r in rows.values())

        row = (await poison_rows())[CREATED_TOPIC]
        assert row.parked_at is None and row.attempts < MAX_ATTEMPTS, row
        await wait_until(parked, 60)

        rows = await poison_rows()
        for stuck in rows.values():
            assert stuck.attempts == MAX_ATTEMPTS, stuck
            assert "MessageSizeTooLarge" in stuck.last_error, stuck.last_error
        # Everything else was published (and so left the outbox) while it was being retried.
        assert await outbox_rows(fault_engine, "aggregate_id <> :id", id=poison["id"]) == []
        # Back-off: tried again 1 s after the first failure and 2 s after the second.
        row = rows[CREATED_TOPIC]
        assert (row.parked_at - row.created_at).total_seconds() >= 1 + 2 - 0.5

        failures = await metric_value(client, "cms_outbox_publish_failures_total", kind="message")
        parked_total = await metric_value(client, "cms_outbox_parked_total")
        assert failures - failures_before == MAX_ATTEMPTS * len(POISON_TOPICS)
        assert parked_total - parked_before == len(POISON_TOPICS)
        assert await metric_value(client, "cms_outbox_pending_events") == 0

        # Parking is not an outage: the service stays healthy and keeps publishing.
        assert (await client.get("/healthz")).status_code == 200
        later = await create_class(client, owner, name="after parking")
        events = await collect_events(
            fault_env.kafka_bootstrap,
            lambda e: e.envelope.data.aggregate_id == later["id"],
            count=1,
            timeout=60,
            settle=0.1,
        )
        assert len(events) == 1

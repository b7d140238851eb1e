"""Fault 4: two replicas, one database, one broker, concurrent writes through both.

Both relays run at once. Every outbox row is published exactly once (no crash here, so no
redelivery either), and each class's events keep their order.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.tests.reliability.conftest import FaultEnv
from services.class_management_service.tests.support.api import (
    metric_value,
    user_headers,
)
from services.class_management_service.tests.support.database import (
    outbox_rows,
    pending_outbox,
)
from services.class_management_service.tests.support.kafka_events import (
    by_user,
    collect_events,
    order_problems,
)
from services.class_management_service.tests.support.polling import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CLASSES = 60
UPDATES_PER_CLASS = 3


async def test_two_replicas_publish_every_row_once_and_in_order(
    fault_env: FaultEnv, fault_engine: AsyncEngine
) -> None:
    # Small batches: many passes, so the two relays really compete for rows.
    first = fault_env.start_service("replica-a", RELAY_BATCH_SIZE=7)
    second = fault_env.start_service("replica-b", RELAY_BATCH_SIZE=7)
    owner = f"replicas-{uuid.uuid4().hex[:8]}"
    limit = asyncio.Semaphore(12)

    async with (
        httpx.AsyncClient(base_url=first.base_url, timeout=20) as client_a,
        httpx.AsyncClient(base_url=second.base_url, timeout=20) as client_b,
    ):
        replicas = itertools.cycle((client_a, client_b))

        async def one_class(index: int) -> dict[str, Any]:
            # Each step goes to the other replica than the one before.
            clients = [next(replicas) for _ in range(UPDATES_PER_CLASS + 1)]
            async with limit:
                response = await clients[0].post(
                    "/v1/classes",
                    json={"name": f"class {index}", "course_codes": ["ENG6"]},
                    headers=user_headers(owner),
                )
            assert response.status_code == 201, response.text
            record = dict(response.json())
            for step, client in enumerate(clients[1:], start=1):
                async with limit:
                    response = await client.put(
                        f"/v1/classes/{record['id']}",
                        json={"name": f"class {index} v{step + 1}"},
                        headers=user_headers(owner, **{"If-Match": f'"{record["version"]}"'}),
                    )
                assert response.status_code == 200, response.text
                record = dict(response.json())
            return record

        classes = await asyncio.gather(*(one_class(i) for i in range(CLASSES)))
        assert {c["version"] for c in classes} == {UPDATES_PER_CLASS + 1}

        async def drained() -> bool:
            return await pending_outbox(fault_engine) == 0

        await wait_until(drained, 30)
        published = [
            await metric_value(client, "cms_outbox_published_total")
            for client in (client_a, client_b)
        ]

    total = CLASSES * (UPDATES_PER_CLASS + 1)
    assert await outbox_rows(fault_engine) == []  # every row published, and deleted
    # Each relay counts the rows the broker acknowledged: together exactly one per row (each
    # change's event and its state record).
    assert sum(published) == 2 * total, published
    assert all(count > 0 for count in published), f"one relay did all the work: {published}"

    events = await collect_events(
        fault_env.kafka_bootstrap,
        by_user(owner),
        count=total,
        timeout=30,
    )
    per_event = Counter(e.envelope.event_id for e in events)
    assert len(per_event) == total
    assert set(per_event.values()) == {1}, "an event was published twice"
    versions = Counter(e.envelope.data.class_id for e in events)
    assert set(versions.values()) == {UPDATES_PER_CLASS + 1}
    assert order_problems(events) == []
    print(f"rows published by replica a/b: {published}")

"""Fault 5: Redis is down. CRUD keeps working, health says "degraded", nothing is lost; a
request with an Idempotency-Key is refused (503 IDEMPOTENCY_UNAVAILABLE, Retry-After), as its
guarantee cannot be kept.

Redis only wakes the relays of other replicas (and backs Idempotency-Key). Replica
``api`` serves requests with its relay off; replica ``relay`` publishes. With Redis down
the relay falls back to polling; once Redis is back its listener subscribes again.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.implementations.redis_outbox_waker_impl import (
    WAKE_CHANNEL,
)
from services.class_management_service.tests.reliability.conftest import FaultEnv
from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    problem_of,
    user_headers,
)
from services.class_management_service.tests.support.database import (
    outbox_rows,
    pending_outbox,
)
from services.class_management_service.tests.support.kafka_events import (
    by_user,
    collect_events,
)
from services.class_management_service.tests.support.polling import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

POLL_SECONDS = 3.0
FAST_SECONDS = 2.0  # a request that Redis slowed down would take longer


async def health(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/healthz")
    return response.status_code, response.json()


async def test_redis_outage_keeps_crud_working_and_loses_nothing(
    fault_env: FaultEnv, fault_engine: AsyncEngine
) -> None:
    api = fault_env.start_service("api", RELAY_ENABLED="false")
    relay = fault_env.start_service("relay", RELAY_POLL_INTERVAL_SECONDS=POLL_SECONDS)
    owner = f"redis-outage-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(fault_env.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        async with (
            httpx.AsyncClient(base_url=api.base_url, timeout=15) as client,
            httpx.AsyncClient(base_url=relay.base_url, timeout=15) as relay_client,
        ):

            async def healthy() -> bool:
                for probe in (client, relay_client):
                    status, body = await health(probe)
                    if (status, body["status"]) != (200, "ok"):
                        return False
                return True

            await wait_until(healthy, 60)

            await fault_env.stop_component("redis")

            for probe in (client, relay_client):
                status, body = await health(probe)
                assert body["dependencies"]["redis"]["status"] == "degraded", body
                assert (status, body["status"]) == (200, "degraded"), (status, body)

            # CRUD, each request as fast as with Redis up.
            slowest = 0.0
            classes = []
            for index in range(30):
                started = time.monotonic()
                classes.append(await create_class(client, owner, name=f"r{index}"))
                slowest = max(slowest, time.monotonic() - started)
            for record in classes[:10]:
                started = time.monotonic()
                response = await client.put(
                    f"/v1/classes/{record['id']}",
                    json={"name": record["name"] + "!"},
                    headers=user_headers(owner, **{"If-Match": '"1"'}),
                )
                assert response.status_code == 200, response.text
                slowest = max(slowest, time.monotonic() - started)
            student = await create_student(
                client, owner, email="ada@example.org", class_ids=[classes[0]["id"]]
            )
            deleted = await client.delete(
                f"/v1/classes/{classes[-1]['id']}", headers=user_headers(owner)
            )
            assert deleted.status_code == 204, deleted.text
            listed = await client.get("/v1/classes", headers=user_headers(owner))
            assert listed.status_code == 200 and listed.json()["pagination"]["total"] == 29
            students = await client.get("/v1/classes/students", headers=user_headers(owner))
            assert students.json()["pagination"]["total"] == 1
            roster = await client.get(
                f"/v1/classes/{classes[0]['id']}/roster", headers=user_headers(owner)
            )
            assert [s["student_id"] for s in roster.json()["students"]] == [student["id"]]
            # Idempotency-Key cannot be honoured without Redis: a request that asks for it is
            # refused (503, Retry-After) and creates nothing, quickly; unkeyed ones are served.
            for path, body in [
                ("/v1/classes", {"name": "keyed", "course_codes": ["ENG5"]}),
                ("/v1/classes/students", {"person_name": {"first_name": "K", "last_name": "Y"}}),
            ]:
                started = time.monotonic()
                keyed = await client.post(
                    path,
                    json=body,
                    headers=user_headers(owner, **{"Idempotency-Key": "during-outage"}),
                )
                slowest = max(slowest, time.monotonic() - started)
                problem = await problem_of(keyed, 503, "IDEMPOTENCY_UNAVAILABLE")
                assert "Idempotency-Key" in problem["detail"]
                assert int(keyed.headers["Retry-After"]) > 0
            assert slowest < FAST_SECONDS, f"a request took {slowest:.2f}s with Redis down"

            # The relay polls: every change is published while Redis is still down.
            async def drained() -> bool:
                return await pending_outbox(fault_engine) == 0

            await wait_until(drained, POLL_SECONDS * 3 + 5)
            assert await outbox_rows(fault_engine) == []  # published, and deleted
            after = await client.get("/v1/classes", headers=user_headers(owner))
            assert after.json()["pagination"]["total"] == 29  # the keyed POST created nothing
            # 30 created, 10 renamed, the student created, the class it joined (its
            # student_count, a new version), a class deleted.
            changes = 30 + 10 + 1 + 1 + 1
            events = await collect_events(
                fault_env.kafka_bootstrap, by_user(owner), count=changes, timeout=15
            )
            assert len({e.envelope.event_id for e in events}) == changes
            joined = [
                e.envelope.data
                for e in events
                if e.topic == "huleedu.class.updated.v1"
                and str(e.envelope.data.class_id) == classes[0]["id"]
            ]
            assert sorted((d.version, d.student_count) for d in joined) == [(2, 0), (3, 1)], joined

            await fault_env.start_component("redis")

            await wait_until(healthy, 60)

            # The relay's listener is subscribed again, so wake-ups reach it once more.
            async def subscribed() -> bool:
                counts = dict(await redis.pubsub_numsub(WAKE_CHANNEL))
                return int(counts.get(WAKE_CHANNEL.encode(), 0)) == 1

            await wait_until(subscribed, 60)
    finally:
        await redis.aclose()
    assert api.running and relay.running

"""The deployed topology: ``serve`` with RELAY_ENABLED=false plus ``relay``, two processes.

Both are real subprocesses on the devstack's PostgreSQL, Redis and broker, sharing one
fresh migrated database, as docker-compose.services.yml runs them. A class created through
the API process reaches the broker through the relay process, woken over Redis; the relay
process serves health and metrics but not the API; both stop cleanly on SIGTERM.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from common_core.events import ClassCreatedV1, topic_for
from redis.asyncio import Redis

from services.class_management_service.implementations.redis_outbox_waker_impl import (
    WAKE_CHANNEL,
)
from services.class_management_service.tests.support.kafka_events import EventCollector
from services.class_management_service.tests.support.polling import wait_until
from services.class_management_service.tests.support.service_process import (
    ServiceProcess,
    service_env,
)

pytestmark = pytest.mark.timeout(180)


async def _metric(client: httpx.AsyncClient, base_url: str, name: str) -> float:
    for line in (await client.get(base_url + "/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not among the metrics of {base_url}")


async def _wake_subscribers(redis_url: str) -> int:
    client = Redis.from_url(redis_url)
    try:
        ((_, count),) = await client.pubsub_numsub(WAKE_CHANNEL)
        return int(count)
    finally:
        await client.aclose()


async def test_api_process_and_relay_process_deliver_events_together(
    database_url: str,
    redis_url: str,
    kafka_bootstrap: str,
    events: EventCollector,
    tmp_path: Path,
) -> None:
    # Relay off for both in the environment: `relay` turns it on whatever the variable says.
    # The relay polls only every 30 s, so an event delivered within 10 s was woken over Redis.
    env = service_env(
        database_url,
        redis_url,
        kafka_bootstrap,
        RELAY_ENABLED="false",
        RELAY_POLL_INTERVAL_SECONDS=30,
        LOG_LEVEL="INFO",
    )
    subscribers_before = await _wake_subscribers(redis_url)
    api = ServiceProcess(env, tmp_path / "api.log", name="api")
    relay = ServiceProcess(env, tmp_path / "relay.log", name="relay", command="relay")
    try:
        api.start()
        relay.start()
        api.wait_healthy()
        relay.wait_healthy()

        async def relay_subscribed() -> bool:
            return await _wake_subscribers(redis_url) > subscribers_before

        await wait_until(relay_subscribed, timeout=60, interval=0.1)

        async with httpx.AsyncClient(timeout=10) as client:
            api_health: Any = (await client.get(api.base_url + "/healthz")).json()
            assert api_health["dependencies"]["relay"]["status"] == "disabled"
            relay_health: Any = (await client.get(relay.base_url + "/healthz")).json()
            assert relay_health["status"] == "ok", relay_health
            assert relay_health["dependencies"]["relay"]["status"] == "ok"
            assert relay_health["dependencies"]["kafka"]["status"] == "ok"

            correlation_id = str(uuid.uuid4())
            headers = {
                "X-User-ID": f"teacher-{uuid.uuid4().hex[:8]}",
                "X-Correlation-ID": correlation_id,
            }
            created = await client.post(
                api.base_url + "/v1/classes",
                json={"name": "9A", "course_codes": ["ENG5"]},
                headers=headers,
            )
            assert created.status_code == 201, created.text
            class_id = created.json()["id"]

            (event,) = await events.wait_for(
                lambda e: e.topic == topic_for(ClassCreatedV1) and e.key == class_id.encode(),
                timeout=60,
            )
            assert isinstance(event.envelope.data, ClassCreatedV1)
            assert str(event.envelope.correlation_id) == correlation_id

            # Published by the relay process, not by the API process. The relay counts a row
            # after the broker's acknowledgement, so a consumer may see the event first.
            # Two rows: the created event and the class's state record.
            async def relay_counted() -> bool:
                return await _metric(client, relay.base_url, "cms_outbox_published_total") >= 2

            await wait_until(relay_counted, timeout=60, interval=0.05)
            assert await _metric(client, relay.base_url, "cms_outbox_published_total") == 2
            assert await _metric(client, api.base_url, "cms_outbox_published_total") == 0

            # The relay process serves health and metrics only, not the API.
            listed = await client.get(relay.base_url + "/v1/classes", headers=headers)
            assert listed.status_code == 404, listed.text
            posted = await client.post(
                relay.base_url + "/v1/classes", json={"name": "9B"}, headers=headers
            )
            assert posted.status_code == 404, posted.text
            assert (await client.get(relay.base_url + "/healthz/live")).status_code == 200
            listed = await client.get(api.base_url + "/v1/classes", headers=headers)
            assert listed.status_code == 200, listed.text
    finally:
        stopped = {"api": api.stop(), "relay": relay.stop()}

    for name, process in (("api", api), ("relay", relay)):
        output = process.log_text()
        # A graceful shutdown on SIGTERM exits 0 (server.GracefulServer).
        assert stopped[name] == 0, f"{name}: {stopped[name]}\n{output}"
        assert "Traceback" not in output, output
        assert "Application shutdown complete" in output, output
        assert "Class Management Service stopped" in output, output
    assert "Class Management Service started (relay off)" in api.log_text()
    assert "Class Management Service started (relay on)" in relay.log_text()

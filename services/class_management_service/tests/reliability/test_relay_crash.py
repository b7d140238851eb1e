"""Fault 3: the relay dies after the broker acknowledged a batch, before deleting it.

Relay level: tests/integration/test_outbox_relay.py
(test_crash_after_ack_republishes_with_the_same_event_id). Here the same crash is injected
into the running service (its real relay loop, started by the app's lifespan): the loop
recovers by itself, the batch is published again with the same event_ids, and a consumer
that dedupes by event_id sees each change exactly once. A real crash (SIGKILL of the
process) loses no accepted change either.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from common_core.events import CHANGE_TOPICS
from dishka import Provider, Scope, provide
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.app import create_app
from services.class_management_service.config import Settings
from services.class_management_service.implementations.outbox_relay import OutboxRelay
from services.class_management_service.protocols import ClassEventPublisherProtocol
from services.class_management_service.tests.reliability.conftest import FaultEnv
from services.class_management_service.tests.support.api import (
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

pytestmark = pytest.mark.timeout(120)


class CrashOnceAfterAck(OutboxRelay):
    crashed_with: list[Any] | None = None

    async def _after_publish(self, messages: Any) -> None:
        if self.crashed_with is None:
            self.crashed_with = list(messages)
            raise RuntimeError("relay crashed between the broker's ack and the commit")


class CrashingRelayProvider(Provider):
    @provide(scope=Scope.APP)
    async def relay(
        self, engine: AsyncEngine, publisher: ClassEventPublisherProtocol, settings: Settings
    ) -> AsyncIterator[OutboxRelay]:
        relay = CrashOnceAfterAck(engine, publisher, settings)
        yield relay
        await relay.stop()


async def test_service_relay_crash_after_ack_republishes_same_event_ids(
    settings: Settings, engine: AsyncEngine
) -> None:
    owner = f"crash-{uuid.uuid4().hex[:8]}"
    app = create_app(settings, CrashingRelayProvider())
    async with app.test_app():
        client = app.test_client()
        for index in range(6):
            response = await client.post(
                "/v1/classes",
                json={"name": f"c{index}", "course_codes": ["ENG5"]},
                headers={"X-User-ID": owner},
            )
            assert response.status_code == 201

        async def drained() -> bool:
            return await pending_outbox(engine) == 0

        await wait_until(drained, 60)
        relay = await app.extensions["QUART_DISHKA"].container.get(OutboxRelay)
        assert isinstance(relay, CrashOnceAfterAck) and relay.crashed_with
        assert relay.running, "the relay loop did not survive the crash"
        # The crashed batch's events (its state records went out twice too, on the state
        # topics, which this collector does not read).
        crashed = {m.event_id for m in relay.crashed_with if m.topic in CHANGE_TOPICS}
        assert crashed, "the crashed batch held no event"

    assert await outbox_rows(engine) == []  # every row published, and deleted
    events = await collect_events(
        settings.KAFKA_BOOTSTRAP_SERVERS,
        by_user(owner),
        count=6 + len(crashed),
        timeout=15,
    )
    copies = Counter(e.envelope.event_id for e in events)
    # The crashed batch went out twice, with the same ids; everything else once.
    assert len(copies) == 6 and crashed <= set(copies)
    assert copies == {event_id: 2 if event_id in crashed else 1 for event_id in copies}
    # ... and with the same content: a consumer deduping by event_id loses nothing.
    first: dict[uuid.UUID, Any] = {}
    for event in events:
        earlier = first.setdefault(event.envelope.event_id, event.envelope)
        assert earlier == event.envelope


@pytest.mark.slow
async def test_a_killed_service_loses_no_accepted_change(
    fault_env: FaultEnv, fault_engine: AsyncEngine
) -> None:
    """SIGKILL the service while it accepts writes and relays them (small batches, so a
    pass is likely in flight); a new process on the same database finishes the work."""
    first = fault_env.start_service("doomed", RELAY_BATCH_SIZE=5)
    owner = f"killed-{uuid.uuid4().hex[:8]}"
    accepted: list[str] = []
    stop = asyncio.Event()

    async def writer(client: httpx.AsyncClient, number: int) -> None:
        count = 0
        while not stop.is_set():
            count += 1
            try:
                response = await client.post(
                    "/v1/classes",
                    json={"name": f"w{number}-{count}", "course_codes": ["ENG7"]},
                    headers=user_headers(owner),
                )
            except httpx.TransportError:
                return  # the process died under this request: not accepted
            assert response.status_code == 201, response.text
            accepted.append(response.json()["id"])

    async with httpx.AsyncClient(base_url=first.base_url, timeout=10) as client:
        writers = [asyncio.create_task(writer(client, n)) for n in range(4)]
        await asyncio.sleep(1.5)
        first.kill()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*writers), 60)
    assert len(accepted) > 10, "too few writes before the kill to mean anything"

    fault_env.start_service("successor")

    async def drained() -> bool:
        return await pending_outbox(fault_engine) == 0

    await wait_until(drained, 60)
    assert await outbox_rows(fault_engine) == []  # every row published, and deleted
    async with fault_engine.connect() as connection:
        committed = {
            str(class_id)
            for class_id in await connection.scalars(
                text("SELECT id FROM classes WHERE created_by_user_id = :owner"), {"owner": owner}
            )
        }
    assert set(accepted) <= committed  # every 201 was committed
    events = await collect_events(fault_env.kafka_bootstrap, by_user(owner), len(committed), 60)
    # At least once, always with the row's own event_id: deduped, one event per class.
    event_ids: dict[str, set[uuid.UUID]] = {}
    for event in events:
        event_ids.setdefault(str(event.envelope.data.aggregate_id), set()).add(
            event.envelope.event_id
        )
    assert set(event_ids) == committed
    assert all(len(ids) == 1 for ids in event_ids.values()), event_ids

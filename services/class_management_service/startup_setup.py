"""Start-up and graceful shutdown: every resource started here is stopped here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from dishka import AsyncContainer
from quart import Quart
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.config import Settings
from services.class_management_service.implementations.kafka_event_publisher_impl import (
    KafkaEventPublisherImpl,
)
from services.class_management_service.implementations.outbox_relay import OutboxRelay
from services.class_management_service.implementations.redis_outbox_waker_impl import (
    listen_for_wakes,
)
from services.class_management_service.protocols import OutboxWakerProtocol

logger = logging.getLogger(__name__)
SHUTDOWN_TASK_TIMEOUT_SECONDS = 2.0


def register_lifecycle(app: Quart, container: AsyncContainer, settings: Settings) -> None:
    background: list[asyncio.Task[None]] = []
    stopping = asyncio.Event()

    @app.before_serving
    async def _startup() -> None:
        # Resolve the APP-scoped resources now, so the first request does not pay for them.
        await container.get(AsyncEngine)
        await container.get(OutboxWakerProtocol)
        relay = await container.get(OutboxRelay)
        if settings.RELAY_ENABLED:
            relay.start()
            stopping.clear()
            background.append(
                asyncio.create_task(
                    listen_for_wakes(
                        settings.REDIS_URL, relay.wake, retry_seconds=1.0, stop=stopping
                    ),
                    name="outbox-wake-listener",
                )
            )
        logger.info(
            "Class Management Service started (relay %s)",
            "on" if settings.RELAY_ENABLED else "off",
        )

    @app.after_serving
    async def _shutdown() -> None:
        stopping.set()
        for task in background:
            task.cancel()
        if background:
            # redis-py can swallow a cancellation that lands while it is still connecting;
            # such a task sees ``stopping`` within a second, and shutdown never waits longer
            # than the bound.
            _, stuck = await asyncio.wait(background, timeout=SHUTDOWN_TASK_TIMEOUT_SECONDS)
            for task in stuck:
                logger.warning("Background task %s did not stop in time", task.get_name())
        background.clear()
        relay = await container.get(OutboxRelay)
        await _bounded("outbox relay", relay.stop())
        publisher = await container.get(KafkaEventPublisherImpl)
        # The producer flushes pending sends on stop; with the broker gone that could wait
        # for the full request timeout.
        await _bounded("Kafka producer", publisher.stop())
        await _bounded("container", container.close())
        logger.info("Class Management Service stopped")


async def _bounded(what: str, step: Coroutine[Any, Any, None]) -> None:
    """One shutdown step, given at most SHUTDOWN_TASK_TIMEOUT_SECONDS: shutdown never hangs."""
    try:
        await asyncio.wait_for(step, SHUTDOWN_TASK_TIMEOUT_SECONDS)
    except TimeoutError:
        logger.warning("Shutdown: the %s did not stop in time", what)

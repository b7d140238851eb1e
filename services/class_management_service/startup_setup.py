"""Start-up and graceful shutdown: the order of things and a bound on each step.

The resources themselves (engine, Redis, Kafka producer, relay, waker) belong to the Dishka
providers in ``di.py``: each provider's finalizer stops what it built, once, when the
container closes. This module starts the relay and its Redis wake listener (it owns that
task), and on shutdown stops the listener, then closes the container within a bound.
"""

from __future__ import annotations

import asyncio
import logging

from dishka import AsyncContainer
from quart import Quart
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.config import Settings, database_address
from services.class_management_service.di import (
    SHUTDOWN_STEP_TIMEOUT_SECONDS,
    bounded,
    ping_database,
)
from services.class_management_service.implementations.outbox_relay import OutboxRelay
from services.class_management_service.implementations.redis_outbox_waker_impl import (
    listen_for_wakes,
)
from services.class_management_service.protocols import OutboxWakerProtocol

logger = logging.getLogger(__name__)
# The container's finalizers bound each of their own slow steps (di.py); this bounds the
# whole, so a shutdown never hangs whatever a dependency does.
CONTAINER_CLOSE_TIMEOUT_SECONDS = 4 * SHUTDOWN_STEP_TIMEOUT_SECONDS
STARTUP_PING_TIMEOUT_SECONDS = 5.0


def register_lifecycle(app: Quart, container: AsyncContainer, settings: Settings) -> None:
    background: list[asyncio.Task[None]] = []
    stopping = asyncio.Event()

    @app.before_serving
    async def _startup() -> None:
        # Resolve the APP-scoped resources now, so the first request does not pay for them.
        engine = await container.get(AsyncEngine)
        await container.get(OutboxWakerProtocol)
        relay = await container.get(OutboxRelay)
        await _warn_if_database_unreachable(engine, settings)
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
            _, stuck = await asyncio.wait(background, timeout=SHUTDOWN_STEP_TIMEOUT_SECONDS)
            for task in stuck:
                logger.warning("Background task %s did not stop in time", task.get_name())
        background.clear()
        # The providers' finalizers stop the relay, then the producer, the waker, Redis and
        # the engine (the reverse of the order they were built in).
        await bounded("container", container.close(), CONTAINER_CLOSE_TIMEOUT_SECONDS)
        logger.info("Class Management Service stopped")


async def _warn_if_database_unreachable(engine: AsyncEngine, settings: Settings) -> None:
    """Serve anyway (health says 503 until the database is back), but say so at once."""
    try:
        await asyncio.wait_for(ping_database(engine), STARTUP_PING_TIMEOUT_SECONDS)
    except Exception as error:  # whatever the cause, the operator needs to hear it
        logger.warning(
            "PostgreSQL at %s cannot be reached (%s: %s); /healthz answers 503 until it can",
            database_address(settings.DATABASE_URL),
            type(error).__name__,
            error,
        )

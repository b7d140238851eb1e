"""Dishka providers, one per layer. Tests swap a layer by passing another provider."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable

from dishka import Provider, Scope, from_context, provide
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.class_management_service.config import Settings
from services.class_management_service.implementations.class_management_service_impl import (
    ClassManagementServiceImpl,
)
from services.class_management_service.implementations.event_delivery_health_impl import (
    EventDeliveryHealthImpl,
)
from services.class_management_service.implementations.kafka_event_publisher_impl import (
    KafkaEventPublisherImpl,
)
from services.class_management_service.implementations.outbox_relay import OutboxRelay
from services.class_management_service.implementations.postgres.repository import (
    PostgreSQLClassRepositoryImpl,
)
from services.class_management_service.implementations.postgres.sessions import SERVER_SETTINGS
from services.class_management_service.implementations.redis_idempotency_store_impl import (
    RedisIdempotencyStoreImpl,
)
from services.class_management_service.implementations.redis_outbox_waker_impl import (
    RedisOutboxWakerImpl,
)
from services.class_management_service.protocols import (
    ClassEventPublisherProtocol,
    ClassManagementServiceProtocol,
    ClassRepositoryProtocol,
    EventDeliveryHealthProtocol,
    IdempotencyStoreProtocol,
    OutboxWakerProtocol,
)

logger = logging.getLogger(__name__)
# Each finalizer step that waits for a dependency gets at most this long.
SHUTDOWN_STEP_TIMEOUT_SECONDS = 2.0


def build_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.DATABASE_URL,
        pool_size=settings.DATABASE_POOL_SIZE,
        max_overflow=settings.DATABASE_MAX_OVERFLOW,
        pool_timeout=settings.DATABASE_POOL_TIMEOUT_SECONDS,
        pool_pre_ping=settings.DATABASE_POOL_PRE_PING,
        # A database error's message then names no statement parameter: no student's name
        # or e-mail reaches a log line through it.
        hide_parameters=True,
        connect_args={
            "timeout": settings.DATABASE_CONNECT_TIMEOUT_SECONDS,
            "command_timeout": settings.DATABASE_STATEMENT_TIMEOUT_MS / 1000 or None,
            "server_settings": {
                "application_name": "class_management_service",
                "statement_timeout": str(settings.DATABASE_STATEMENT_TIMEOUT_MS),
                **SERVER_SETTINGS,
            },
        },
    )


async def bounded(
    what: str, step: Awaitable[None], seconds: float = SHUTDOWN_STEP_TIMEOUT_SECONDS
) -> None:
    """One shutdown step, given at most ``seconds``: shutdown never hangs."""
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        logger.warning("Shutdown: the %s did not stop in time", what)


async def ping_database(engine: AsyncEngine) -> None:
    """One round trip to PostgreSQL; raises when it cannot be reached."""
    # AUTOCOMMIT: one round trip, not BEGIN, SELECT 1 and ROLLBACK.
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("SELECT 1"))


class InfrastructureProvider(Provider):
    """Process-wide resources: the one engine, Redis, the Kafka publisher and the relay."""

    settings = from_context(provides=Settings, scope=Scope.APP)

    @provide(scope=Scope.APP)
    async def engine(self, settings: Settings) -> AsyncIterator[AsyncEngine]:
        engine = build_engine(settings)
        yield engine
        await engine.dispose()

    @provide(scope=Scope.APP)
    async def redis(self, settings: Settings) -> AsyncIterator[Redis]:
        client = Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1.0, socket_timeout=1.0)
        yield client
        await client.aclose()

    @provide(scope=Scope.APP)
    async def publisher(self, settings: Settings) -> AsyncIterator[KafkaEventPublisherImpl]:
        publisher = KafkaEventPublisherImpl(settings)
        yield publisher
        # The producer flushes pending sends on stop; with the broker gone that could wait
        # for the full request timeout.
        await bounded("Kafka producer", publisher.stop())

    @provide(scope=Scope.APP)
    def event_publisher(self, publisher: KafkaEventPublisherImpl) -> ClassEventPublisherProtocol:
        return publisher

    @provide(scope=Scope.APP)
    async def relay(
        self, engine: AsyncEngine, publisher: ClassEventPublisherProtocol, settings: Settings
    ) -> AsyncIterator[OutboxRelay]:
        relay = OutboxRelay(engine, publisher, settings)
        yield relay
        await bounded("outbox relay", relay.stop())

    @provide(scope=Scope.APP)
    async def waker(
        self, redis: Redis, relay: OutboxRelay, settings: Settings
    ) -> AsyncIterator[RedisOutboxWakerImpl]:
        waker = RedisOutboxWakerImpl(
            redis, relay.wake, min_interval=settings.OUTBOX_WAKE_MIN_INTERVAL_SECONDS
        )
        yield waker
        await waker.drain()

    @provide(scope=Scope.APP)
    def delivery_health(
        self, relay: OutboxRelay, publisher: KafkaEventPublisherImpl
    ) -> EventDeliveryHealthProtocol:
        return EventDeliveryHealthImpl(relay, publisher)

    @provide(scope=Scope.APP)
    def idempotency_store(self, redis: Redis, settings: Settings) -> IdempotencyStoreProtocol:
        return RedisIdempotencyStoreImpl(redis, settings.IDEMPOTENCY_TTL_SECONDS)

    @provide(scope=Scope.APP)
    def outbox_waker(self, waker: RedisOutboxWakerImpl) -> OutboxWakerProtocol:
        return waker


class RepositoryProvider(Provider):
    scope = Scope.APP

    @provide
    def repository(self, engine: AsyncEngine) -> ClassRepositoryProtocol:
        return PostgreSQLClassRepositoryImpl(engine)


class ServiceProvider(Provider):
    scope = Scope.APP

    service = provide(ClassManagementServiceImpl, provides=ClassManagementServiceProtocol)

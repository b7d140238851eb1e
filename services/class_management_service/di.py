"""Dishka providers, one per layer. Tests swap a layer by passing another provider."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dishka import Provider, Scope, from_context, provide
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.class_management_service.config import Settings
from services.class_management_service.implementations.class_management_service_impl import (
    ClassManagementServiceImpl,
)
from services.class_management_service.implementations.class_repository_postgres_impl import (
    PostgreSQLClassRepositoryImpl,
)
from services.class_management_service.implementations.kafka_event_publisher_impl import (
    KafkaEventPublisherImpl,
)
from services.class_management_service.implementations.outbox_relay import OutboxRelay
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
    OutboxWakerProtocol,
)


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
            },
        },
    )


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
        await publisher.stop()

    @provide(scope=Scope.APP)
    def event_publisher(self, publisher: KafkaEventPublisherImpl) -> ClassEventPublisherProtocol:
        return publisher

    @provide(scope=Scope.APP)
    async def relay(
        self, engine: AsyncEngine, publisher: ClassEventPublisherProtocol, settings: Settings
    ) -> AsyncIterator[OutboxRelay]:
        relay = OutboxRelay(engine, publisher, settings)
        yield relay
        await relay.stop()

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
    def idempotency_store(self, redis: Redis, settings: Settings) -> RedisIdempotencyStoreImpl:
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

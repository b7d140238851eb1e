"""Health and metrics: what operators and orchestrators poll."""

from __future__ import annotations

import asyncio
import logging

from dishka import FromDishka
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from quart import Blueprint, Response
from quart_dishka import inject
from quart_schema import hide, validate_response
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service import metrics
from services.class_management_service.api_models import DependencyHealth, HealthResponse
from services.class_management_service.implementations.kafka_event_publisher_impl import (
    KafkaEventPublisherImpl,
)
from services.class_management_service.implementations.outbox_relay import OutboxRelay

logger = logging.getLogger(__name__)
health_bp = Blueprint("health", __name__)
CHECK_TIMEOUT_SECONDS = 2.0


async def _check(name: str, probe: asyncio.Future[object] | object) -> tuple[str, DependencyHealth]:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)  # type: ignore[arg-type]
        return name, DependencyHealth(status="ok")
    except Exception as error:  # a health check reports every failure, whatever its kind
        return name, DependencyHealth(
            status="down", detail=f"{type(error).__name__}: {error}"[:300]
        )


async def _ping_postgres(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _relay_state(relay: OutboxRelay) -> None:
    if not relay.running:
        raise RuntimeError("the outbox relay is not running")
    if relay.last_error:
        raise RuntimeError(relay.last_error)


@health_bp.get("/healthz")
@validate_response(HealthResponse, 200)
@validate_response(HealthResponse, 503)
@inject
async def healthz(
    engine: FromDishka[AsyncEngine],
    redis: FromDishka[Redis],
    publisher: FromDishka[KafkaEventPublisherImpl],
    relay: FromDishka[OutboxRelay],
) -> tuple[HealthResponse, int]:
    """200 when PostgreSQL, Redis, Kafka and the relay are healthy; 503 naming what is not."""
    results = dict(
        await asyncio.gather(
            _check("postgres", _ping_postgres(engine)),
            _check("redis", redis.ping()),
            _check("kafka", publisher.check()),
            _check("relay", _relay_state(relay)),
        )
    )
    if results["redis"].status != "ok":
        # Redis only speeds the relay up; the service keeps working without it.
        results["redis"] = DependencyHealth(status="degraded", detail=results["redis"].detail)
    failing = [name for name, health in results.items() if health.status != "ok"]
    if not failing:
        return HealthResponse(status="ok", dependencies=results), 200
    status = "unhealthy" if "postgres" in failing else "degraded"
    return HealthResponse(status=status, dependencies=results), 503


@health_bp.get("/healthz/live")
@hide
async def liveness() -> dict[str, str]:
    """The process answers; dependencies are not checked."""
    return {"status": "ok"}


@health_bp.get("/metrics")
@hide
@inject
async def prometheus_metrics(relay: FromDishka[OutboxRelay]) -> Response:
    try:
        depth, oldest_age = await asyncio.wait_for(relay.pending_stats(), CHECK_TIMEOUT_SECONDS)
        metrics.OUTBOX_DEPTH.set(depth)
        metrics.OUTBOX_OLDEST_AGE.set(oldest_age)
    except Exception as error:  # metrics stay servable while the database is down
        logger.debug("Outbox figures unavailable: %s", error)
    return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)

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
from services.class_management_service.config import Settings
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
    # AUTOCOMMIT: one round trip, not BEGIN, SELECT 1 and ROLLBACK.
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
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
    settings: FromDishka[Settings],
) -> tuple[HealthResponse, int]:
    """200 when every dependency this replica needs is healthy (Redis may be degraded);
    503 naming what is not."""
    checks = [_check("postgres", _ping_postgres(engine)), _check("redis", redis.ping())]
    if settings.RELAY_ENABLED:
        checks += [_check("kafka", publisher.check()), _check("relay", _relay_state(relay))]
    results = dict(await asyncio.gather(*checks))
    if not settings.RELAY_ENABLED:
        # This replica never starts the producer or the relay: checking them would make an
        # API-only replica unhealthy for ever.
        results["kafka"] = results["relay"] = DependencyHealth(
            status="disabled", detail="RELAY_ENABLED=false: this replica does not publish"
        )
    if results["redis"].status != "ok":
        # Redis only speeds the relay up; the service keeps working without it.
        results["redis"] = DependencyHealth(status="degraded", detail=results["redis"].detail)
    # "degraded" and "disabled" do not fail the check: requests are served without them.
    # A 503 for a Redis outage would make the image's HEALTHCHECK (and any readiness probe)
    # take every replica out of service for a dependency that no request needs.
    failing = [
        name
        for name, health in results.items()
        if health.status not in ("ok", "degraded", "disabled")
    ]
    if not failing:
        degraded = any(health.status == "degraded" for health in results.values())
        return HealthResponse(status="degraded" if degraded else "ok", dependencies=results), 200
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

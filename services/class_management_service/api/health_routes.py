"""Health and metrics: what operators and orchestrators poll."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from dishka import FromDishka
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from quart import Blueprint, Response, current_app
from quart_dishka import inject
from quart_schema import hide, validate_response
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service import metrics
from services.class_management_service.api_models import DependencyHealth, HealthResponse
from services.class_management_service.config import Settings
from services.class_management_service.di import ping_database
from services.class_management_service.protocols import EventDeliveryHealthProtocol

logger = logging.getLogger(__name__)
health_bp = Blueprint("health", __name__)
CHECK_TIMEOUT_SECONDS = 2.0
#: app.config key: True in the ``relay`` process, whose /healthz fails when it cannot publish.
DELIVERY_REQUIRED = "EVENT_DELIVERY_REQUIRED"


async def _check(name: str, probe: Awaitable[object]) -> tuple[str, DependencyHealth]:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
        return name, DependencyHealth(status="ok")
    except Exception as error:  # a health check reports every failure, whatever its kind
        return name, DependencyHealth(
            status="down", detail=f"{type(error).__name__}: {error}"[:300]
        )


async def _relay_state(delivery: EventDeliveryHealthProtocol) -> None:
    problem = delivery.relay_problem()
    if problem:
        raise RuntimeError(problem)


@health_bp.get("/healthz")
@validate_response(HealthResponse, 200)
@validate_response(HealthResponse, 503)
@inject
async def healthz(
    engine: FromDishka[AsyncEngine],
    redis: FromDishka[Redis],
    delivery: FromDishka[EventDeliveryHealthProtocol],
    settings: FromDishka[Settings],
) -> tuple[HealthResponse, int]:
    """503 only when this replica cannot do its job: PostgreSQL down (and, in the ``relay``
    process, Kafka or the relay down). Otherwise 200, ``degraded`` naming what is down."""
    checks = [_check("postgres", ping_database(engine)), _check("redis", redis.ping())]
    if settings.RELAY_ENABLED:
        checks += [
            _check("kafka", delivery.check_broker()),
            _check("relay", _relay_state(delivery)),
        ]
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
    # A 503 takes the replica out of a load balancer (and fails the image's HEALTHCHECK).
    # Requests need only PostgreSQL: with Kafka or the relay down, writes still succeed
    # into the outbox and their events wait there. Failing every replica over a broker
    # outage would turn a delay of events into a full outage. The relay process exists to
    # publish: its health fails without them.
    required = {"postgres"}
    if current_app.config.get(DELIVERY_REQUIRED):
        required |= {"kafka", "relay"}
    down = {name for name, health in results.items() if health.status == "down"}
    if "postgres" in down:
        return HealthResponse(status="unhealthy", dependencies=results), 503
    degraded = down or any(health.status == "degraded" for health in results.values())
    status = "degraded" if degraded else "ok"
    return HealthResponse(status=status, dependencies=results), 503 if down & required else 200


@health_bp.get("/healthz/live")
@hide
async def liveness() -> dict[str, str]:
    """The process answers; dependencies are not checked."""
    return {"status": "ok"}


@health_bp.get("/metrics")
@hide
@inject
async def prometheus_metrics(delivery: FromDishka[EventDeliveryHealthProtocol]) -> Response:
    try:
        depth, oldest_age = await asyncio.wait_for(delivery.outbox_backlog(), CHECK_TIMEOUT_SECONDS)
        metrics.OUTBOX_DEPTH.set(depth)
        metrics.OUTBOX_OLDEST_AGE.set(oldest_age)
    except Exception as error:  # metrics stay servable while the database is down
        logger.debug("Outbox figures unavailable: %s", error)
    return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)

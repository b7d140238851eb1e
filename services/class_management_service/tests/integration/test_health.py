"""/healthz: 503 only when this replica cannot serve requests (PostgreSQL down); Kafka or the
relay down is 200 ``degraded`` naming them, except in the relay process, which exists to
publish. Event delivery is read through ``EventDeliveryHealthProtocol``, swapped here."""

from __future__ import annotations

from typing import Any

from dishka import Provider, Scope, provide
from quart.testing.app import TestApp as QuartTestApp

from services.class_management_service.app import create_app
from services.class_management_service.config import Settings
from services.class_management_service.protocols import EventDeliveryHealthProtocol


class _DeliveryDown:
    """The broker refuses and the relay's last pass failed."""

    async def check_broker(self) -> None:
        raise ConnectionRefusedError("broker refused")

    def relay_problem(self) -> str | None:
        return "BrokerUnavailableError: 3 of 3 events not acknowledged"

    async def outbox_backlog(self) -> tuple[int, float]:
        return 3, 12.5


class _DeliveryDownProvider(Provider):
    @provide(scope=Scope.APP)
    def delivery(self) -> EventDeliveryHealthProtocol:
        return _DeliveryDown()


async def _health(settings: Settings, *, api: bool) -> tuple[int, dict[str, Any]]:
    app = create_app(settings, _DeliveryDownProvider(), api=api)
    async with QuartTestApp(app, startup_timeout=30, shutdown_timeout=30):
        response = await app.test_client().get("/healthz")
        return response.status_code, await response.get_json()


async def test_an_api_replica_stays_in_service_while_event_delivery_is_down(
    settings: Settings,
) -> None:
    status, body = await _health(settings, api=True)
    assert (status, body["status"]) == (200, "degraded"), body
    dependencies = body["dependencies"]
    assert dependencies["postgres"]["status"] == "ok"
    assert dependencies["kafka"] == {
        "status": "down",
        "detail": "ConnectionRefusedError: broker refused",
    }
    assert dependencies["relay"]["status"] == "down"
    assert "not acknowledged" in dependencies["relay"]["detail"]


async def test_the_relay_process_is_unhealthy_while_event_delivery_is_down(
    settings: Settings,
) -> None:
    status, body = await _health(settings, api=False)
    assert (status, body["status"]) == (503, "degraded"), body
    assert body["dependencies"]["kafka"]["status"] == "down"


async def test_postgres_down_is_503_unhealthy(settings: Settings) -> None:
    unreachable = settings.model_copy(
        update={
            "DATABASE_URL": "postgresql+asyncpg://cms:pw@127.0.0.1:9/none",
            "DATABASE_CONNECT_TIMEOUT_SECONDS": 1.0,
            "RELAY_ENABLED": False,
        }
    )
    status, body = await _health(unreachable, api=True)
    assert (status, body["status"]) == (503, "unhealthy"), body
    assert body["dependencies"]["postgres"]["status"] == "down"


async def test_metrics_read_the_outbox_backlog_through_the_port(settings: Settings) -> None:
    app = create_app(settings, _DeliveryDownProvider())
    async with QuartTestApp(app, startup_timeout=30, shutdown_timeout=30):
        text = (await (await app.test_client().get("/metrics")).get_data()).decode()
    assert "cms_outbox_pending_events 3.0" in text
    assert "cms_outbox_oldest_pending_age_seconds 12.5" in text

"""Start-up and shutdown: every resource started is stopped; the entry point serves."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from quart.testing.app import TestApp as QuartTestApp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.app import create_app
from services.class_management_service.config import Settings
from services.class_management_service.di import build_engine
from services.class_management_service.implementations.kafka_event_publisher_impl import (
    KafkaEventPublisherImpl,
)
from services.class_management_service.implementations.outbox_relay import OutboxRelay
from services.class_management_service.tests.support.polling import wait_until
from services.class_management_service.tests.support.service_process import (
    ServiceProcess,
    service_env,
)


async def _backend_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'class_management_service'"
                    " AND datname = current_database()"
                )
            )
        )


async def test_shutdown_stops_tasks_and_closes_connections(settings: Settings, engine) -> None:
    before = {task for task in asyncio.all_tasks()}
    app = create_app(settings)
    async with app.test_app():
        client = app.test_client()
        response = await client.post(
            "/v1/classes", json={"name": "9A", "course_codes": ["ENG5"]}, headers={"X-User-ID": "u"}
        )
        assert response.status_code == 201
        assert (await client.get("/healthz")).status_code == 200
        assert await _backend_count(engine) >= 1
        started = {task.get_name() for task in asyncio.all_tasks() - before}
        assert {"outbox-relay", "outbox-wake-listener"} <= started

    def leftover() -> list[asyncio.Task[Any]]:
        return [
            task
            for task in asyncio.all_tasks() - before
            if not task.done() and task is not asyncio.current_task()
        ]

    async def all_stopped() -> bool:
        # Tasks finish and the server drops the closed connections' backends shortly after.
        return not leftover() and await _backend_count(engine) == 0

    try:
        await wait_until(all_stopped, timeout=30, interval=0.05)
    except AssertionError:
        raise AssertionError(
            f"left running: {[task.get_name() for task in leftover()]}, "
            f"{await _backend_count(engine)} backends"
        ) from None


def test_serve_entrypoint_serves_and_stops_on_sigterm(settings: Settings, tmp_path: Path) -> None:
    env = service_env(
        settings.DATABASE_URL,
        settings.REDIS_URL,
        settings.KAFKA_BOOTSTRAP_SERVERS,
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    process = ServiceProcess(env, tmp_path / "serve.log", name="serve")
    try:
        process.start()
        process.wait_healthy()
    finally:
        code = process.stop(timeout=30)
    output = process.log_text()
    # A graceful shutdown on SIGTERM exits 0 (server.GracefulServer).
    assert code == 0, output
    assert "Traceback" not in output, output
    assert "Application shutdown complete" in output
    assert '"route": "/healthz"' in output
    assert "Class Management Service stopped" in output


async def test_shutdown_right_after_startup_does_not_hang(settings: Settings) -> None:
    app = create_app(settings)
    test_app = app.test_app()
    await test_app.startup()
    await asyncio.wait_for(test_app.shutdown(), timeout=60)


async def test_each_resource_is_stopped_once_by_its_provider(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    stops: Counter[str] = Counter()
    for owner in (OutboxRelay, KafkaEventPublisherImpl):
        original = owner.stop

        async def counting_stop(self: Any, original: Any = original, name: str = owner.__name__):
            stops[name] += 1
            await original(self)

        monkeypatch.setattr(owner, "stop", counting_stop)
    app = create_app(settings)
    async with QuartTestApp(app, startup_timeout=30, shutdown_timeout=30):
        assert (await app.test_client().get("/healthz/live")).status_code == 200
    assert stops == {"OutboxRelay": 1, "KafkaEventPublisherImpl": 1}


async def test_the_services_connections_plan_no_parallel_workers(settings: Settings) -> None:
    """The pool's connections carry SERVER_SETTINGS (the plan tests plan under them)."""
    engine = build_engine(settings)
    try:
        async with engine.connect() as connection:
            workers = await connection.scalar(text("SHOW max_parallel_workers_per_gather"))
    finally:
        await engine.dispose()

    assert workers == "0"

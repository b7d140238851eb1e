"""Start-up and shutdown: every resource started is stopped; the entry point serves."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.app import create_app
from services.class_management_service.config import Settings


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
    await asyncio.sleep(0.2)
    leftover = [
        task
        for task in asyncio.all_tasks() - before
        if not task.done() and task is not asyncio.current_task()
    ]
    assert leftover == [], [task.get_name() for task in leftover]
    assert await _backend_count(engine) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_entrypoint_serves_and_stops_on_sigterm(settings: Settings) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "CLASS_MANAGEMENT_SERVICE_DATABASE_URL": settings.DATABASE_URL,
        "CLASS_MANAGEMENT_SERVICE_REDIS_URL": settings.REDIS_URL,
        "CLASS_MANAGEMENT_SERVICE_KAFKA_BOOTSTRAP_SERVERS": settings.KAFKA_BOOTSTRAP_SERVERS,
        "CLASS_MANAGEMENT_SERVICE_KAFKA_ENABLE_IDEMPOTENCE": "false",
        "CLASS_MANAGEMENT_SERVICE_HOST": "127.0.0.1",
        "CLASS_MANAGEMENT_SERVICE_PORT": str(port),
        "CLASS_MANAGEMENT_SERVICE_LOG_FORMAT": "json",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.class_management_service", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.2)
        assert status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # uvicorn finishes its graceful shutdown, then re-raises the signal it got.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert '"route": "/healthz"' in output
    assert "Class Management Service stopped" in output


async def test_shutdown_right_after_startup_does_not_hang(settings: Settings) -> None:
    app = create_app(settings)
    test_app = app.test_app()
    await test_app.startup()
    await asyncio.wait_for(test_app.shutdown(), timeout=10)

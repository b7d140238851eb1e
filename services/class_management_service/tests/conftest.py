"""Fixtures of the Class Management Service tests, on the devstack's real infrastructure.

One migrated template database is built per session; each test gets its own clone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from quart import Quart
from quart.testing.app import TestApp
from quart.typing import TestClientProtocol
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.class_management_service.app import create_app
from services.class_management_service.config import AuthMode, Settings
from services.class_management_service.migrations import upgrade_to_head
from services.class_management_service.tests.support.kafka_events import EventCollector

TEMPLATE_DATABASE = "cms_migrated_template"


@pytest.fixture(scope="session")
def migrated_template(database_factory: Any) -> str:
    """A database at the head revision, used only as a template (never connected to)."""
    url = database_factory.create(TEMPLATE_DATABASE)
    upgrade_to_head(url)
    return TEMPLATE_DATABASE


@pytest.fixture
def database_url(database_factory: Any, migrated_template: str) -> Iterator[str]:
    """A migrated database of this test's own, as an asyncpg URL."""
    name = database_factory.unique_name("cms")
    url = database_factory.create(name, template=migrated_template)
    yield Settings(DATABASE_URL=url).DATABASE_URL
    database_factory.drop(name)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, pool_size=20, max_overflow=10)
    yield engine
    await engine.dispose()


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, database_url: str, redis_url: str, kafka_bootstrap: str
) -> Settings:
    """The app's settings on the devstack, in trusted-header mode (the caller is X-User-ID).
    ``@pytest.mark.relay_off`` turns its relay off, for tests that count the outbox rows
    requests wrote (a relay deletes each row once published) or the statements requests
    sent."""
    return Settings(
        AUTH_MODE=AuthMode.TRUSTED_HEADER,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        KAFKA_ENABLE_IDEMPOTENCE=False,  # the local broker has no idempotent producers
        RELAY_POLL_INTERVAL_SECONDS=0.5,
        RELAY_MAX_BACKOFF_SECONDS=2.0,
        RELAY_ENABLED=request.node.get_closest_marker("relay_off") is None,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Quart]:
    """The real app with its real lifespan (engine, Redis, Kafka producer, relay)."""
    app = create_app(settings)
    # Quart's default 6 s start/stop budget is tight on a loaded 2-core CI machine.
    async with TestApp(app, startup_timeout=30, shutdown_timeout=30):
        yield app


@pytest.fixture
def client(app: Quart) -> TestClientProtocol:
    return app.test_client()


@pytest.fixture
def user_id() -> str:
    return f"teacher-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def headers(user_id: str) -> dict[str, str]:
    return {"X-User-ID": user_id, "X-Correlation-ID": str(uuid.uuid4())}


@pytest.fixture
async def events(kafka_bootstrap: str) -> AsyncIterator[EventCollector]:
    async with EventCollector(kafka_bootstrap) as collector:
        yield collector

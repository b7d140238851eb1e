"""Fixtures of the reliability tests.

Two kinds of infrastructure:

* ``fault_stack``: a LocalStack of these tests' own. Fault tests stop and restart its
  PostgreSQL, Redis and Kafka; the session's shared stack (``devstack``) is never touched.
  ``fault_env`` gives each fault test a fresh migrated database on it, starts service
  processes on request, and afterwards stops them, brings every component back up and
  drops the database, whatever the test did.
* ``served_cms``: one ``serve`` process on the shared stack (its own database), used by the
  tests that attack the API (fuzzing, bad input, hostile users, concurrency, idempotency).

If a LocalStack cannot start, the tests fail with the reason; they are never skipped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from huleedu_devstack.local import COMPONENTS, LocalStack
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.class_management_service.config import Settings
from services.class_management_service.migrations import upgrade_to_head
from services.class_management_service.tests.support.service_process import (
    ServiceProcess,
    service_env,
)
from services.class_management_service.tests.support.tokens import (
    JWT_SETTINGS,
    BearerFromUserHeader,
)

FAULT_TEMPLATE = "cms_fault_template"


def ensure_running(stack: LocalStack) -> None:
    """Bring back every component a test may have left stopped."""
    for component in COMPONENTS:
        if not stack.component_running(component):
            stack.start_component(component)


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[LocalStack]:
    """A LocalStack only for fault injection (stopped at the end of the session)."""
    stack = LocalStack(startup_timeout=60.0)
    try:
        stack.start()
    except Exception as error:
        stack.stop()
        pytest.fail(
            f"the reliability tests' own LocalStack could not start: {error}", pytrace=False
        )
    try:
        url = stack.create_database(FAULT_TEMPLATE)
        upgrade_to_head(url)
        yield stack
    finally:
        stack.stop()


@dataclass
class FaultEnv:
    """One fault test's world: the fault stack, a fresh database and its service processes."""

    stack: LocalStack
    database_url: str  # asyncpg URL
    log_dir: Path
    services: list[ServiceProcess] = field(default_factory=list)

    @property
    def redis_url(self) -> str:
        return self.stack.redis_url

    @property
    def kafka_bootstrap(self) -> str:
        return self.stack.kafka_bootstrap

    def start_service(
        self, name: str = "cms", command: str = "serve", **settings: object
    ) -> ServiceProcess:
        env = service_env(self.database_url, self.redis_url, self.kafka_bootstrap, **settings)
        process = ServiceProcess(env, self.log_dir / f"{name}.log", name=name, command=command)
        self.services.append(process)
        return process.start()

    async def stop_component(self, name: str) -> None:
        # Stopping tansu or PostgreSQL blocks for seconds: keep the test's event loop running.
        await asyncio.wait_for(asyncio.to_thread(self.stack.stop_component, name), 60)

    async def start_component(self, name: str) -> None:
        await asyncio.wait_for(asyncio.to_thread(self.stack.start_component, name), 90)


@pytest.fixture
def fault_env(fault_stack: LocalStack, tmp_path: Path) -> Iterator[FaultEnv]:
    ensure_running(fault_stack)
    name = f"cms_fault_{uuid.uuid4().hex[:12]}"
    url = fault_stack.create_database(name, template=FAULT_TEMPLATE)
    env = FaultEnv(fault_stack, Settings(DATABASE_URL=url).DATABASE_URL, tmp_path)
    try:
        yield env
    finally:
        for process in env.services:
            process.stop()
        ensure_running(fault_stack)
        fault_stack.drop_database(name)


@pytest.fixture
async def fault_engine(fault_env: FaultEnv) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(fault_env.database_url, pool_size=5, pool_pre_ping=True)
    yield engine
    await engine.dispose()


# -- the API tests' served process on the shared stack ---------------------------------


@dataclass(frozen=True)
class ServedCms:
    base_url: str
    database_url: str
    redis_url: str
    kafka_bootstrap: str
    process: ServiceProcess


@pytest.fixture(scope="session")
def served_cms(
    database_factory: Any,
    migrated_template: str,
    redis_url: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServedCms]:
    name = database_factory.unique_name("cms_served")
    url = Settings(DATABASE_URL=database_factory.create(name, template=migrated_template))
    process = ServiceProcess(
        service_env(url.DATABASE_URL, redis_url, kafka_bootstrap),
        tmp_path_factory.mktemp("served_cms") / "cms.log",
        name="served-cms",
    )
    process.start()
    try:
        yield ServedCms(process.base_url, url.DATABASE_URL, redis_url, kafka_bootstrap, process)
    finally:
        process.stop()
        database_factory.drop(name)


@pytest.fixture(scope="session")
def served_cms_jwt(
    served_cms: ServedCms, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedCms]:
    """A second ``serve`` process on ``served_cms``'s database, in jwt mode (tokens from
    tests/support/tokens.py): ``served_engine`` sees what either process did."""
    process = ServiceProcess(
        service_env(
            served_cms.database_url,
            served_cms.redis_url,
            served_cms.kafka_bootstrap,
            **JWT_SETTINGS,
        ),
        tmp_path_factory.mktemp("served_cms_jwt") / "cms.log",
        name="served-cms-jwt",
    )
    # Started in the middle of a loaded run (when the first jwt test comes): a generous wait.
    process.start(timeout=120)
    try:
        yield ServedCms(
            process.base_url,
            served_cms.database_url,
            served_cms.redis_url,
            served_cms.kafka_bootstrap,
            process,
        )
    finally:
        process.stop()


@dataclass(frozen=True)
class ServedInMode:
    """A served process in one AUTH_MODE and how a test's client proves who calls it."""

    mode: str
    cms: ServedCms
    auth: httpx.Auth | None  # jwt: X-User-ID becomes a bearer token for that user


@pytest.fixture(scope="module", params=["trusted-header", "jwt"])
def served_in_mode(request: pytest.FixtureRequest, served_cms: ServedCms) -> ServedInMode:
    """Each test using it runs once per AUTH_MODE, the same requests written with X-User-ID."""
    if request.param == "jwt":
        return ServedInMode(
            "jwt", request.getfixturevalue("served_cms_jwt"), BearerFromUserHeader()
        )
    return ServedInMode("trusted-header", served_cms, None)


@pytest.fixture
async def served_engine(served_cms: ServedCms) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(served_cms.database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
def new_user() -> Callable[[str], str]:
    """A fresh user id per call, so tests sharing ``served_cms`` never see each other's data."""
    return lambda label="teacher": f"{label}-{uuid.uuid4().hex[:10]}"

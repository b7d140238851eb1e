"""pytest fixtures giving tests a real PostgreSQL, Redis and Kafka-protocol broker.

Loaded for the whole repo via ``-p huleedu_devstack.pytest_plugin``. Nothing starts
until a test asks for one of these fixtures; the stack is then shared by the
session. If it cannot start, the requesting tests FAIL (they are never skipped).

Session fixtures: ``devstack`` (the Stack), ``postgres_url`` (admin URL),
``redis_url``, ``kafka_bootstrap``, ``database_factory`` (create/drop databases,
e.g. one migrated template cloned per test with ``template=``).
Function fixtures: ``fresh_database_url`` (a new empty database, dropped after the
test), ``clean_redis`` (FLUSHALL before the test; yields the Redis URL).

All fixtures are plain sync fixtures, usable from sync and async tests alike.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from huleedu_devstack.stack import Stack


class DatabaseFactory:
    """Creates and drops databases on the session's PostgreSQL.

    Databases it created and that are still there are dropped at session end.
    """

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._created: set[str] = set()

    @property
    def admin_url(self) -> str:
        return self._stack.postgres_url

    @staticmethod
    def unique_name(prefix: str = "test") -> str:
        return f"{prefix}_{uuid.uuid4().hex[:16]}"

    def url(self, name: str) -> str:
        from huleedu_devstack.databases import database_url

        return database_url(self.admin_url, name)

    def create(self, name: str | None = None, template: str | None = None) -> str:
        """Create ``name`` (a unique name if None), optionally cloned from ``template``."""
        name = name or self.unique_name()
        url = self._stack.create_database(name, template=template)
        self._created.add(name)
        return url

    def drop(self, name: str) -> None:
        self._stack.drop_database(name)
        self._created.discard(name)

    def drop_all(self) -> None:
        for name in sorted(self._created):
            self.drop(name)


@pytest.fixture(scope="session")
def devstack() -> Iterator[Stack]:
    """The session's stack (started on first use, stopped at session end)."""
    from huleedu_devstack.stack import create_stack

    try:
        stack = create_stack()
    except Exception as exc:
        pytest.fail(f"huleedu devstack: cannot choose a backend: {exc}", pytrace=False)
    try:
        stack.start()
    except Exception as exc:
        try:
            stack.stop()
        finally:
            pytest.fail(
                f"huleedu devstack ({stack.backend} backend) could not start: {exc}",
                pytrace=False,
            )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def postgres_url(devstack: Stack) -> str:
    """Admin URL, ``postgresql://postgres@127.0.0.1:PORT/postgres`` locally."""
    return devstack.postgres_url


@pytest.fixture(scope="session")
def redis_url(devstack: Stack) -> str:
    return devstack.redis_url


@pytest.fixture(scope="session")
def kafka_bootstrap(devstack: Stack) -> str:
    return devstack.kafka_bootstrap


@pytest.fixture(scope="session")
def database_factory(devstack: Stack) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(devstack)
    yield factory
    try:
        factory.drop_all()
    except Exception as exc:
        warnings.warn(f"huleedu devstack: could not drop test databases: {exc}", stacklevel=1)


@pytest.fixture
def fresh_database_url(database_factory: DatabaseFactory) -> Iterator[str]:
    """A brand-new empty database for this test, dropped (WITH FORCE) afterwards."""
    name = database_factory.unique_name()
    url = database_factory.create(name)
    yield url
    database_factory.drop(name)


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """FLUSHALL, then the Redis URL."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=10)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_url

"""The pytest plugin's fixtures against the session stack: databases and Redis."""

from __future__ import annotations

from typing import Any

import pytest
from huleedu_devstack.databases import run_blocking
from huleedu_devstack.pytest_plugin import DatabaseFactory

pytestmark = pytest.mark.timeout(60)


async def _fetch(url: str, sql: str, *args: Any) -> Any:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await conn.fetchval(sql, *args, timeout=10)
    finally:
        await conn.close()


async def _database_exists(admin_url: str, name: str) -> bool:
    return bool(
        await _fetch(admin_url, "SELECT count(*) FROM pg_database WHERE datname = $1", name)
    )


def test_session_urls(postgres_url: str, redis_url: str, kafka_bootstrap: str) -> None:
    assert postgres_url.startswith("postgresql://")
    assert redis_url.startswith("redis://")
    host, _, port = kafka_bootstrap.rpartition(":")
    assert host and port.isdigit()


async def test_fresh_database_is_new_and_empty(fresh_database_url: str, postgres_url: str) -> None:
    name = fresh_database_url.rsplit("/", 1)[1]
    assert name.startswith("test_")
    assert await _fetch(fresh_database_url, "SELECT current_database()") == name
    tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    assert await _fetch(fresh_database_url, tables) == 0
    await _fetch(fresh_database_url, "CREATE TABLE scratch (id int)")
    assert await _database_exists(postgres_url, name)


async def test_drop_database_forces_out_open_sessions(
    database_factory: DatabaseFactory, postgres_url: str
) -> None:
    factory = database_factory
    name = factory.unique_name()
    url = factory.create(name)
    assert await _database_exists(postgres_url, name)
    # an open connection must not block the drop (WITH (FORCE))
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        factory.drop(name)
        assert not await _database_exists(postgres_url, name)
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await conn.fetchval("SELECT 1", timeout=5)
    finally:
        conn.terminate()
    factory.drop(name)  # dropping a missing database is fine


async def test_template_database_is_cloned(
    database_factory: DatabaseFactory, postgres_url: str
) -> None:
    import asyncpg

    template = database_factory.unique_name("tpl")
    template_url = database_factory.create(template)
    await _fetch(template_url, "CREATE TABLE migrated (v text)")
    await _fetch(template_url, "INSERT INTO migrated VALUES ('seed') RETURNING v")

    # a session still connected to the template is terminated so the clone can proceed
    lingering = await asyncpg.connect(template_url, timeout=10)
    try:
        clones = [database_factory.create(template=template) for _ in range(2)]
    finally:
        lingering.terminate()
    for clone_url in clones:
        assert await _fetch(clone_url, "SELECT v FROM migrated") == "seed"
    await _fetch(clones[0], "INSERT INTO migrated VALUES ('only in clone 0')")
    assert await _fetch(clones[1], "SELECT count(*) FROM migrated") == 1
    for clone_url in clones:
        database_factory.drop(clone_url.rsplit("/", 1)[1])
    database_factory.drop(template)
    assert not await _database_exists(postgres_url, template)


def test_stack_create_database_from_sync_code(devstack: Any) -> None:
    url = devstack.create_database("sync_created")
    try:
        assert url.endswith("/sync_created")
        current = run_blocking(lambda: _fetch(url, "SELECT current_database()"))
        assert current == "sync_created"
    finally:
        devstack.drop_database("sync_created")


def test_clean_redis_flushes_before_the_test(
    request: pytest.FixtureRequest, redis_url: str
) -> None:
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        client.set("left-over", "1")
        assert client.get("left-over") == b"1"
        assert request.getfixturevalue("clean_redis") == redis_url
        assert client.get("left-over") is None
        assert client.dbsize() == 0
    finally:
        client.close()

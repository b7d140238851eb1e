"""Create and drop PostgreSQL databases given an admin URL. Works for every backend."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from huleedu_devstack.errors import DevstackError

T = TypeVar("T")

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_CONNECT_TIMEOUT = 10.0
_TEMPLATE_BUSY_RETRIES = 5


def _check_name(name: str, what: str = "database name") -> str:
    if not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid {what} {name!r}: use letters, digits and underscores, "
            "not starting with a digit, at most 63 characters"
        )
    return name


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` with its database (the URL path) replaced by ``name``."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path="/" + name))


def _database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def _asyncpg_url(url: str) -> str:
    """asyncpg wants ``postgresql://``; accept SQLAlchemy style ``postgresql+driver://``."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    return urlunsplit(parts._replace(scheme=scheme))


def _maintenance_url(admin_url: str, avoid: set[str]) -> str:
    """A URL to run CREATE/DROP DATABASE from, not connected to any database in ``avoid``."""
    for candidate in (_database_of(admin_url), "postgres", "template1"):
        if candidate not in avoid:
            return _asyncpg_url(database_url(admin_url, candidate))
    raise ValueError(f"no maintenance database available outside {sorted(avoid)}")


def run_blocking(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop.

    It runs on a short-lived thread with its own loop, so the caller's event loop
    (e.g. pytest-asyncio's session loop) is neither blocked by nor replaced by ours.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="huleedu-devstack-db", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def _terminate_sessions(conn: Any, database: str) -> int:
    """Terminate the other sessions on ``database``; returns how many there were."""
    rows = await conn.fetch(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    return len(rows)


async def acreate_database(admin_url: str, name: str, template: str | None = None) -> str:
    """CREATE DATABASE ``name`` (optionally from ``template``) and return its URL.

    A template must have no other sessions; sessions still connected to it are
    terminated (a few attempts) so a migrated template can be cloned per test.
    """
    import asyncpg  # type: ignore[import-untyped]

    _check_name(name)
    sql = f"CREATE DATABASE {_quote(name)}"
    if template is not None:
        sql += f" TEMPLATE {_quote(_check_name(template, 'template name'))}"
    avoid = {name} | ({template} if template else set())
    conn = await asyncpg.connect(_maintenance_url(admin_url, avoid), timeout=_CONNECT_TIMEOUT)
    try:
        for attempt in range(_TEMPLATE_BUSY_RETRIES + 1):
            # PostgreSQL itself waits 5 s before failing on a busy template: clear it first.
            if template is not None and await _terminate_sessions(conn, template):
                await asyncio.sleep(0.05 * (attempt + 1))
            try:
                await conn.execute(sql)
                break
            except asyncpg.exceptions.ObjectInUseError:
                if template is None or attempt == _TEMPLATE_BUSY_RETRIES:
                    raise
    except asyncpg.PostgresError as exc:
        raise DevstackError(f"could not create database {name!r}: {exc}") from exc
    finally:
        await conn.close()
    return database_url(admin_url, name)


async def adrop_database(admin_url: str, name: str) -> None:
    """DROP DATABASE IF EXISTS ``name`` WITH (FORCE): open sessions are terminated."""
    import asyncpg

    _check_name(name)
    conn = await asyncpg.connect(_maintenance_url(admin_url, {name}), timeout=_CONNECT_TIMEOUT)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
    except asyncpg.PostgresError as exc:
        raise DevstackError(f"could not drop database {name!r}: {exc}") from exc
    finally:
        await conn.close()


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    """Blocking :func:`acreate_database`; safe to call from sync or async code."""
    return run_blocking(lambda: acreate_database(admin_url, name, template))


def drop_database(admin_url: str, name: str) -> None:
    """Blocking :func:`adrop_database`; safe to call from sync or async code."""
    run_blocking(lambda: adrop_database(admin_url, name))

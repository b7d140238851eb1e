"""Alembic, driven from code: the only way the schema is made."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from services.class_management_service.config import Settings, database_address

ALEMBIC_DIR = Path(__file__).parent / "alembic"
CONNECT_TIMEOUT_SECONDS = 10.0


class DatabaseUnreachableError(Exception):
    """The database to migrate cannot be connected to; the message names it (no password)."""


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic config for ``database_url`` (default: the service's settings)."""
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    # ConfigParser interpolation would eat a literal '%' in a password.
    config.set_main_option("sqlalchemy.url", _url(database_url).replace("%", "%%"))
    return config


def _url(database_url: str | None) -> str:
    return (
        Settings(DATABASE_URL=database_url).DATABASE_URL
        if database_url
        else Settings().DATABASE_URL
    )


def upgrade_to_head(database_url: str | None = None) -> None:
    command.upgrade(alembic_config(database_url), "head")


def downgrade_to(revision: str, database_url: str | None = None) -> None:
    command.downgrade(alembic_config(database_url), revision)


def migrate(database_url: str | None = None) -> str:
    """Upgrade to head; return the line ``migrate`` prints (from which revision to which).

    Raises DatabaseUnreachableError, naming host, port and database, when the database
    cannot be connected to (refused, unknown host or database, bad credentials, timeout).
    """
    url = _url(database_url)
    before = current_revision(url)
    upgrade_to_head(url)
    after = current_revision(url)
    where = database_address(url)
    if before == after:
        return f"Database {where} is already at revision {after} (head)"
    return f"Migrated database {where} from revision {before or '<empty>'} to {after} (head)"


def current_revision(database_url: str) -> str | None:
    """The revision the database is at (None when never migrated)."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async def connect_and_read() -> str | None:
        engine = create_async_engine(
            database_url,
            poolclass=pool.NullPool,
            connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
        )
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(connect_and_read())
    except (OSError, TimeoutError, DBAPIError) as error:
        raise DatabaseUnreachableError(
            f"cannot connect to the database {database_address(database_url)}: {_reason(error)}"
        ) from None


def _reason(error: BaseException) -> str:
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__

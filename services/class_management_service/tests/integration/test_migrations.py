"""Migrations are the only way the schema is made: test them as a staircase."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from common_core import COURSES
from services.class_management_service.config import Settings, database_address
from services.class_management_service.migrations import (
    alembic_config,
    downgrade_to,
    upgrade_to_head,
)
from services.class_management_service.models_db import Base
from services.class_management_service.tests.support.service_process import free_port


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/none"))
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


def _run(url: str, work: Any) -> Any:
    async def go() -> Any:
        engine = create_async_engine(Settings(DATABASE_URL=url).DATABASE_URL)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _tables(connection: Connection) -> set[str]:
    rows = connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    return {row[0] for row in rows}


def test_every_revision_upgrades_downgrades_and_upgrades_again(fresh_database_url: str) -> None:
    revisions = _revisions()
    assert revisions[:2] == ["0001", "0002"]
    previous = "base"
    for revision in revisions:
        upgrade_to_head_or(revision, fresh_database_url)
        assert _run(fresh_database_url, _current) == revision
        downgrade_to(previous, fresh_database_url)
        assert _run(fresh_database_url, _current) == (None if previous == "base" else previous)
        upgrade_to_head_or(revision, fresh_database_url)
        previous = revision
    downgrade_to("base", fresh_database_url)
    assert _run(fresh_database_url, _tables) == {"alembic_version"}


def upgrade_to_head_or(revision: str, url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def test_upgraded_schema_matches_the_models(fresh_database_url: str) -> None:
    upgrade_to_head(fresh_database_url)
    assert _run(fresh_database_url, _schema_diff) == []


def test_seeded_courses_match_common_core(fresh_database_url: str) -> None:
    upgrade_to_head(fresh_database_url)
    rows = _run(
        fresh_database_url,
        lambda c: c.execute(text("SELECT course_code, language, name FROM courses")).all(),
    )
    seeded = {(row[0], row[1], row[2]) for row in rows}
    expected = {
        (code.value, info.language.value, info.display_name) for code, info in COURSES.items()
    }
    assert seeded == expected


def _migrate(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLASS_MANAGEMENT_SERVICE_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "services.class_management_service", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_entrypoint_applies_head_and_says_from_which_revision(
    fresh_database_url: str,
) -> None:
    where = database_address(Settings(DATABASE_URL=fresh_database_url).DATABASE_URL)
    head = _revisions()[-1]
    done = _migrate(fresh_database_url)
    assert done.returncode == 0, done.stderr
    assert _run(fresh_database_url, _current) == head
    assert done.stdout.splitlines() == [
        f"Migrated database {where} from revision <empty> to {head} (head)"
    ]
    again = _migrate(fresh_database_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"Database {where} is already at revision {head} (head)"]


def test_migrate_from_an_older_revision_names_both(fresh_database_url: str) -> None:
    first, head = _revisions()[0], _revisions()[-1]
    upgrade_to_head_or(first, fresh_database_url)
    done = _migrate(fresh_database_url)
    assert done.returncode == 0, done.stderr
    assert f"from revision {first} to {head} (head)" in done.stdout


def _unknown_database(postgres_url: str) -> str:
    return str(make_url(postgres_url).set(database="no_such_database", password="s3cret"))


def _refused_port(postgres_url: str) -> str:
    return str(make_url(postgres_url).set(port=free_port(), password="s3cret"))


def _unknown_host(postgres_url: str) -> str:
    return str(make_url(postgres_url).set(host="no-such-host.invalid", password="s3cret"))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_unknown_database, "does not exist"),
        (_refused_port, "Connect call failed"),
        (_unknown_host, "gaierror"),
    ],
)
def test_migrate_against_an_unreachable_database_is_one_line_naming_it(
    postgres_url: str, make: Callable[[str], str], reason: str
) -> None:
    url = make(postgres_url)
    parsed = make_url(url)
    done = _migrate(url)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"migrate: cannot connect to the database {parsed.host}:{parsed.port}/{parsed.database}:"
    )
    assert reason in line
    assert "s3cret" not in line

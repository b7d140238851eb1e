"""Migrations are the only way the schema is made: test them as a staircase."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from common_core import COURSES
from services.class_management_service.config import Settings
from services.class_management_service.migrations import (
    alembic_config,
    downgrade_to,
    upgrade_to_head,
)
from services.class_management_service.models_db import Base


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


def test_migrate_entrypoint_applies_head(fresh_database_url: str) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "CLASS_MANAGEMENT_SERVICE_DATABASE_URL": fresh_database_url}
    done = subprocess.run(
        [sys.executable, "-m", "services.class_management_service", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert _run(fresh_database_url, _current) == _revisions()[-1]

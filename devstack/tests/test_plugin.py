"""The pytest plugin in a separate pytest run: fixtures clean up; start failures fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from huleedu_devstack import KAFKA_BOOTSTRAP_ENV, POSTGRES_URL_ENV, REDIS_URL_ENV
from huleedu_devstack.databases import run_blocking

pytestmark = pytest.mark.timeout(120)

INNER_TESTS = """
import pathlib

OUT = pathlib.Path(__file__).with_name("db_name.txt")


def test_uses_every_fixture(
    devstack, postgres_url, redis_url, kafka_bootstrap, database_factory, fresh_database_url,
    clean_redis,
):
    assert devstack.backend == "external"
    assert clean_redis == redis_url
    assert fresh_database_url.startswith(postgres_url.rsplit("/", 1)[0])
    OUT.write_text(fresh_database_url.rsplit("/", 1)[1])


def test_no_stack_needed():
    pass
"""


def _inner_pytest(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    return subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "huleedu_devstack.pytest_plugin",
            "-p", "no:cacheprovider", "-p", "no:randomly", "-rA", "test_inner.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )  # fmt: skip


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HULEEDU_DEVSTACK_")}


async def _database_exists(admin_url: str, name: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        count = await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()
    return bool(count)


def test_fixtures_work_and_the_fresh_database_is_dropped(tmp_path: Path, devstack: Any) -> None:
    env = _base_env() | {
        POSTGRES_URL_ENV: devstack.postgres_url,
        REDIS_URL_ENV: devstack.redis_url,
        KAFKA_BOOTSTRAP_ENV: devstack.kafka_bootstrap,
    }
    result = _inner_pytest(tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    name = (tmp_path / "db_name.txt").read_text()
    assert not run_blocking(lambda: _database_exists(devstack.postgres_url, name))


def test_a_stack_that_cannot_start_fails_the_tests_never_skips(tmp_path: Path) -> None:
    env = _base_env() | {POSTGRES_URL_ENV: "postgresql://postgres@127.0.0.1:1/postgres"}
    result = _inner_pytest(tmp_path, env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 error" in result.stdout
    assert "huleedu devstack: cannot choose a backend" in result.stdout
    assert REDIS_URL_ENV in result.stdout
    assert "skipped" not in result.stdout

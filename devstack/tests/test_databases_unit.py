"""Pure helpers of huleedu_devstack.databases."""

from __future__ import annotations

import pytest
from huleedu_devstack.databases import _asyncpg_url, _maintenance_url, database_url


def test_database_url_replaces_only_the_database() -> None:
    admin = "postgresql+asyncpg://u:p%40ss@127.0.0.1:5433/postgres?sslmode=disable"
    assert (
        database_url(admin, "t_1")
        == "postgresql+asyncpg://u:p%40ss@127.0.0.1:5433/t_1?sslmode=disable"
    )
    assert database_url("postgresql://postgres@h:1", "x") == "postgresql://postgres@h:1/x"


def test_asyncpg_url_drops_the_driver() -> None:
    assert _asyncpg_url("postgresql+asyncpg://u@h:1/d") == "postgresql://u@h:1/d"
    assert _asyncpg_url("postgres://u@h:1/d") == "postgresql://u@h:1/d"


def test_maintenance_url_avoids_the_databases_being_changed() -> None:
    assert _maintenance_url("postgresql://u@h:1/postgres", {"x"}).endswith("/postgres")
    assert _maintenance_url("postgresql://u@h:1/postgres", {"postgres"}).endswith("/template1")
    assert _maintenance_url("postgresql://u@h:1/app", {"app"}).endswith("/postgres")


@pytest.mark.parametrize("name", ["", "1abc", "a-b", 'a"b', "a b", "x" * 64, "drop;table"])
def test_invalid_database_names_are_rejected(name: str) -> None:
    from huleedu_devstack.databases import create_database, drop_database

    with pytest.raises(ValueError, match="invalid database name"):
        create_database("postgresql://u@127.0.0.1:1/postgres", name)
    with pytest.raises(ValueError, match="invalid database name"):
        drop_database("postgresql://u@127.0.0.1:1/postgres", name)

"""Alembic, driven from code: the only way the schema is made."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from services.class_management_service.config import Settings

ALEMBIC_DIR = Path(__file__).parent / "alembic"


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic config for ``database_url`` (default: the service's settings)."""
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    url = (
        Settings(DATABASE_URL=database_url).DATABASE_URL
        if database_url
        else Settings().DATABASE_URL
    )
    # ConfigParser interpolation would eat a literal '%' in a password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(database_url: str | None = None) -> None:
    command.upgrade(alembic_config(database_url), "head")


def downgrade_to(revision: str, database_url: str | None = None) -> None:
    command.downgrade(alembic_config(database_url), revision)

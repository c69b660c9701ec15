"""Run the Alembic migrations: every process that needs the schema calls ``migrate`` at start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlalchemy_url(database_url: str) -> str:
    _scheme, rest = database_url.split("://", 1)
    return f"postgresql+psycopg://{rest}"


def migrate(database_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", _sqlalchemy_url(database_url).replace("%", "%%"))
    command.upgrade(config, "head")

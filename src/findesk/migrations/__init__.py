"""Alembic migrations, run by ``findesk migrate`` and at the start of ``findesk serve``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from findesk.kit.files import private_file, sqlite_path

HERE = Path(__file__).parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    if (path := sqlite_path(url)) is not None:
        private_file(path)
    command.upgrade(alembic_config(url), "head")

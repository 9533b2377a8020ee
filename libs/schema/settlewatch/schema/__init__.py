"""The database schema: every table definition and the one Alembic migration history that
creates them (``migrations/``). A service's own tables are in the module named after it
(``matcher``, ``alerts``); ``reference`` holds those several services read (merchant profiles,
maintenance windows). The modules only describe the tables; migrations create them.
"""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config

__all__ = ["alembic_config", "migrate"]


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("settlewatch.schema") / "migrations"))
    # ConfigParser interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the schema to `revision`; safe to run concurrently and repeatedly (blocking)."""
    command.upgrade(alembic_config(url), revision)

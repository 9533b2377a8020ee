"""The database schema: every table definition and the one Alembic migration history that
creates them (``migrations/``). The modules only describe the tables; migrations create them.

Each table names the service that owns it (``info={"owner": …}``: ``reference`` is ingest's,
``settlement_files`` recon's, ``access`` holds the common tokens and audit log and ingest's
webhook secrets). Only its owner reads or writes a table; another service reads the owner's
views, ``<owner>_read_*`` (migrations 0006, 0007, 0011, 0018), so an owner may change its
tables without breaking a reader (tests/project/test_layout.py holds every service to it).
"""

from __future__ import annotations

import importlib.util
from importlib.resources import files
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Alembic is loaded by what migrates, not by every service reading a table
    from alembic.config import Config

__all__ = ["alembic_config", "migrate", "revision_module"]


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("settlewatch.schema") / "migrations"))
    # ConfigParser interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the schema to `revision`; safe to run concurrently and repeatedly (blocking)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def revision_module(name: str) -> ModuleType:
    """A migration's module by its file name (the folder is not a package), for a later one
    that reuses what it defined."""
    path = files("settlewatch.schema") / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, str(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""The table descriptions the code queries with match what the migrations create."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

import settlewatch.schema
from settlewatch.common.db import create_engine
from settlewatch.schema.reference import metadata

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_tables_in_code_match_the_migrated_database(database_url: str) -> None:
    # Every module's tables are compared: each one is imported (a table only joins the metadata
    # when its module is), and each uses the one metadata.
    for module in pkgutil.iter_modules(settlewatch.schema.__path__):
        if module.name != "migrations":
            tables = importlib.import_module(f"settlewatch.schema.{module.name}")
            assert getattr(tables, "metadata", metadata) is metadata, module.name

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        # Indexes are the migrations' business (the code never names them).
        return [d for d in compare_metadata(context, metadata) if "index" not in str(d[0])]

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(differences) == []
    finally:
        await engine.dispose()

"""The table descriptions the code queries with match what the migrations create."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from settlewatch.common.db import create_engine
from settlewatch.schema import alerts as alerts_tables
from settlewatch.schema import matcher as matcher_tables
from settlewatch.schema import settlement_files as files_tables
from settlewatch.schema.reference import metadata

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_tables_in_code_match_the_migrated_database(database_url: str) -> None:
    # Every service's tables are compared.
    assert matcher_tables.payments.metadata is metadata
    assert alerts_tables.alerts.metadata is metadata
    assert files_tables.settlement_files.metadata is metadata

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

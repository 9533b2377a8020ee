"""One way to write (common.db.transaction, issue 28 item 7): BEGIN before the first statement,
so a lock taken by a driver statement holds until the commit. With SQLAlchemy's lazy BEGIN the
alerts' FOR UPDATE and the matcher's advisory lock and generation fence ran in autocommit and
held nothing. Each lock: a second connection cannot take it while it is held, and can after."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.alerts.repository.alerts import ALERT_FOR_CHANGE
from settlewatch.common.db import create_engine, driver_transaction
from settlewatch.matcher.store import DAY_TABLES_LOCK, FENCE
from tests.support.urls import asyncpg_dsn

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def can_take(database_url: str, statement: str, *args: object) -> bool:
    """Whether another connection gets the lock at once (it gives up after 200 ms)."""
    other = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with other.transaction():
            await other.execute("SET LOCAL lock_timeout = '200ms'")
            try:
                await other.execute(statement, *args)
            except asyncpg.LockNotAvailableError:
                return False
        return True
    finally:
        await other.close()


async def test_the_matchers_advisory_lock_holds_until_the_commit(
    engine: AsyncEngine, database_url: str
) -> None:
    async with driver_transaction(engine) as driver:
        await driver.execute(DAY_TABLES_LOCK)
        assert not await can_take(database_url, DAY_TABLES_LOCK)
    assert await can_take(database_url, DAY_TABLES_LOCK)


async def test_the_generation_fence_holds_its_partition_until_the_commit(
    engine: AsyncEngine, database_url: str
) -> None:
    setup = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await setup.execute(
            "INSERT INTO matcher_partitions (partition, generation, body) VALUES (7, 3, '{}')"
        )
    finally:
        await setup.close()
    async with driver_transaction(engine) as driver:
        assert await driver.execute(FENCE, 7, 3) == "UPDATE 1"
        assert not await can_take(database_url, FENCE, 7, 3)
    assert await can_take(database_url, FENCE, 7, 3)


async def test_an_alert_being_acknowledged_is_held_until_the_commit(
    engine: AsyncEngine, database_url: str
) -> None:
    setup = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await setup.execute(
            "INSERT INTO alerts (alert_id, type, status, summary, evidence, notify, oncall, "
            "created_at, updated_at) VALUES ('A1', 'settlement.overdue', 'open', 's', '{}', "
            "true, false, now(), now())"
        )
    finally:
        await setup.close()
    async with driver_transaction(engine) as driver:
        assert await driver.fetchval(ALERT_FOR_CHANGE, "A1") == "open"
        assert not await can_take(database_url, ALERT_FOR_CHANGE, "A1")
    assert await can_take(database_url, ALERT_FOR_CHANGE, "A1")

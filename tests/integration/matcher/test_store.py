"""The matcher store against the real database."""

from __future__ import annotations

import asyncpg
import pytest

from settlewatch.common.db import create_engine
from settlewatch.matcher.store import LostOwnership, MatcherStore, forget_consumed_offsets
from tests.support.urls import asyncpg_dsn

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_partition_claimed_by_a_newer_owner_cannot_be_saved_by_the_old_one(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        store = MatcherStore(engine)
        old = await store.claim(3)
        new = await store.claim(3)  # another instance took the partition over
        assert new.generation == old.generation + 1
        await store.save([new], [], {("t", 3): 10})
        with pytest.raises(LostOwnership):
            await store.save([old], [], {("t", 3): 99})
        assert await store.offsets(["t"], [3]) == {("t", 3): 10}  # the zombie changed nothing
    finally:
        await engine.dispose()


async def test_forgetting_offsets_makes_the_matcher_start_from_the_beginning(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("INSERT INTO matcher_offsets VALUES ('x.transactions', 0, 42)")
        await forget_consumed_offsets(database_url)
        assert await conn.fetchval("SELECT count(*) FROM matcher_offsets") == 0
    finally:
        await conn.close()

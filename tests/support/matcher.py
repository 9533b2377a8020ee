"""Watching a running matcher from the outside: its clock, as saved in the database."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from tests.support.urls import asyncpg_dsn


async def matcher_clock(database_url: str) -> datetime | None:
    """The oldest saved clock over the matcher's partitions (None before the first save)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        clock: datetime | None = await conn.fetchval("SELECT min(clock) FROM matcher_partitions")
        return clock
    finally:
        await conn.close()


def service_env(database_url: str, bootstrap: str, prefix: str, tokens: str) -> dict[str, str]:
    """The environment of a service process on the test's database, broker and topics."""
    return {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SETTLEWATCH_TOPIC_PREFIX": prefix,
        "SETTLEWATCH_API_TOKENS": tokens,
        "MATCHER_SESSION_TIMEOUT": "PT2S",
    }

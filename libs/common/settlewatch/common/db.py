"""PostgreSQL plumbing: async engines, the one transaction helper, the readiness ping, the
driver connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from settlewatch.common import audit

__all__ = [
    "create_engine",
    "driver_connection",
    "driver_session",
    "driver_snapshot",
    "driver_transaction",
    "invalidated_on_error",
    "ping",
    "safe_url",
    "transaction",
]

# Long enough for a busy database, short enough that /readyz answers before a probe times out.
CONNECT_TIMEOUT_S = 2.0


def create_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    """An asyncpg engine whose pooled connections are checked before use (they die with the DB)."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        pool_pre_ping=True,
        connect_args={"timeout": CONNECT_TIMEOUT_S},
        json_serializer=lambda value: orjson.dumps(value).decode(),
        json_deserializer=orjson.loads,
    )


async def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under SQLAlchemy's, in the same transaction: for set-based writes
    (`unnest` of arrays) that SQLAlchemy's bind-parameter expansion cannot do at scale."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


@asynccontextmanager
async def invalidated_on_error(conn: AsyncConnection) -> AsyncIterator[None]:
    """Around work that calls the driver directly: on any error the connection is discarded, not
    pooled. SQLAlchemy never sees the driver's own errors (a server that went away mid-query),
    so it would pool a connection asyncpg considers busy ("another operation is in progress"),
    and every later checkout would fail with it."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.invalidate()
        raise


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """The one way settlewatch writes: a transaction committed when the block ends, rolled back
    (and its connection discarded) if it raises.

    BEGIN is sent at once: SQLAlchemy sends it only with its own first statement, so statements
    sent to the driver first (``driver_connection``) would run in autocommit — an advisory lock
    or a ``FOR UPDATE`` would hold nothing. Inside an API request that changes something, the
    request's audit row (common.audit) is written in the same transaction: a change is never
    committed without it."""
    async with engine.connect() as conn, invalidated_on_error(conn):
        async with conn.begin():
            await conn.exec_driver_sql("SELECT 1")
            yield conn
            audited = await audit.write_pending(conn)
        if audited is not None:
            audited.written = True  # committed


@asynccontextmanager
async def driver_transaction(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A :func:`transaction` on the driver (asyncpg) connection, for set-based writes."""
    async with transaction(engine) as conn:
        yield await driver_connection(conn)


@asynccontextmanager
async def driver_session(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The driver connection for reads (autocommit), discarded on error like the above."""
    async with engine.connect() as conn, invalidated_on_error(conn):
        yield await driver_connection(conn)


@asynccontextmanager
async def driver_snapshot(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The driver connection in a read-only transaction of one snapshot (REPEATABLE READ): reads
    that must agree with each other, and settings made for them with ``SET LOCAL``."""
    async with (
        driver_session(engine) as driver,
        driver.transaction(isolation="repeatable_read", readonly=True),
    ):
        yield driver


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query within the connect timeout."""
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))


def safe_url(url: str) -> str:
    """The URL with its password masked, for logs and banners."""
    return make_url(url).render_as_string(hide_password=True)

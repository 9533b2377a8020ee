"""A typed view of the asyncpg connection under SQLAlchemy's engine (the queries are set-based
SQL with arrays, which asyncpg binds directly), typed for the repositories over common.db's
session and transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, cast

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.common.db import driver_session, driver_transaction

__all__ = ["Connection", "Row", "dumps", "loads", "reading", "writing"]


class Row(Protocol):
    """An asyncpg row; the repositories turn it into a dataclass before it leaves them."""

    def __getitem__(self, key: str) -> Any: ...


class Connection(Protocol):
    async def fetch(self, query: str, *args: object) -> list[Row]: ...

    async def fetchrow(self, query: str, *args: object) -> Row | None: ...

    async def fetchval(self, query: str, *args: object) -> object: ...

    async def execute(self, query: str, *args: object) -> str: ...


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[Connection]:
    async with driver_session(engine) as driver:
        yield cast(Connection, driver)


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[Connection]:
    """One transaction (common.db.transaction: BEGIN before the first statement, so a
    ``FOR UPDATE`` holds its rows): committed when the block ends, rolled back if it raises."""
    async with driver_transaction(engine) as driver:
        yield cast(Connection, driver)


def dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def loads(value: object) -> Any:
    """A jsonb column as asyncpg returns it (text), decoded."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value

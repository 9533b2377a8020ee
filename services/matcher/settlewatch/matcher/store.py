"""The matcher's state store in PostgreSQL.

A batch is saved in one transaction: the payments it changed, each partition's state document,
the findings it decided (outbox) and the offsets it consumed. So after a crash the matcher
resumes from exactly the state that goes with its offsets, and no finding is lost or doubled.
Each partition row carries a generation, bumped by every new owner: a matcher that lost a
partition in a rebalance fails its next save instead of overwriting the new owner's state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from settlewatch.common.db import create_engine
from settlewatch.matcher import tables
from settlewatch.matcher.codec import (
    finding_to_json,
    partition_from_json,
    partition_to_json,
    payment_from_json,
    payment_to_json,
)
from settlewatch.matcher.core.model import Finding, PartitionState

__all__ = ["LostOwnership", "MatcherStore", "Owned", "StoredFinding", "forget_consumed_offsets"]


# Set-based writes (unnest): one statement per batch whatever its size, no parameter limit.
_UPSERT_PAYMENTS = """
INSERT INTO matcher_payments (txn_id, partition, merchant_id, status, bank_code, currency,
                              amount_minor, occurred_at, business_date, due_at, body)
SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::bigint[], $8::timestamptz[], $9::date[], $10::timestamptz[], $11::jsonb[])
ON CONFLICT (txn_id) DO UPDATE SET partition = EXCLUDED.partition, status = EXCLUDED.status,
    due_at = EXCLUDED.due_at, body = EXCLUDED.body, updated_at = now()
"""
_INSERT_OUTBOX = """
INSERT INTO matcher_outbox (key, merchant_id, body)
SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])
ON CONFLICT (key) DO NOTHING
RETURNING key
"""


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under SQLAlchemy's, in the same transaction."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


class LostOwnership(Exception):
    """Another matcher instance owns the partition now; this one must drop it."""


@dataclass
class Owned:
    """A partition this instance owns: its state and the generation that fences its writes."""

    partition: int
    generation: int
    state: PartitionState


@dataclass(frozen=True)
class StoredFinding:
    key: str
    merchant_id: str | None
    body: dict[str, Any]


class MatcherStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(self, partition: int) -> Owned:
        """Take ownership of `partition` and load its state."""
        claim = (
            insert(tables.partitions)
            .values(partition=partition, generation=1, body={})
            .on_conflict_do_update(
                index_elements=[tables.partitions.c.partition],
                set_={"generation": tables.partitions.c.generation + 1},
            )
            .returning(
                tables.partitions.c.generation, tables.partitions.c.clock, tables.partitions.c.body
            )
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(claim)).one()
            bodies = await conn.scalars(
                select(tables.payments.c.body).where(tables.payments.c.partition == partition)
            )
            payments = [payment_from_json(body) for body in bodies]
        return Owned(partition, row.generation, partition_from_json(row.body, row.clock, payments))

    async def offsets(
        self, topics: Iterable[str], partitions: Iterable[int]
    ) -> dict[tuple[str, int], int]:
        query = select(tables.offsets).where(
            tables.offsets.c.topic.in_(list(topics)),
            tables.offsets.c.partition.in_(list(partitions)),
        )
        async with self._engine.connect() as conn:
            return {(r.topic, r.partition): r.next_offset for r in await conn.execute(query)}

    async def save(
        self,
        owned: Sequence[Owned],
        findings: Sequence[Finding],
        next_offsets: Mapping[tuple[str, int], int],
    ) -> list[StoredFinding]:
        """Write a processed batch atomically; return the findings that are new (to publish)."""
        async with self._engine.begin() as conn:
            for part in owned:
                await self._save_partition(conn, part)
            new = await self._add_to_outbox(conn, findings)
            if next_offsets:
                rows = [
                    {"topic": t, "partition": p, "next_offset": o}
                    for (t, p), o in next_offsets.items()
                ]
                upsert = insert(tables.offsets).values(rows)
                await conn.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[tables.offsets.c.topic, tables.offsets.c.partition],
                        set_={"next_offset": upsert.excluded.next_offset},
                    )
                )
        for part in owned:
            part.state.changed.clear()
            part.state.removed.clear()
        return new

    async def _save_partition(self, conn: AsyncConnection, part: Owned) -> None:
        state = part.state
        fenced = (
            update(tables.partitions)
            .where(
                tables.partitions.c.partition == part.partition,
                tables.partitions.c.generation == part.generation,
            )
            .values(clock=state.clock, body=partition_to_json(state), updated_at=func.now())
        )
        if (await conn.execute(fenced)).rowcount != 1:
            raise LostOwnership(f"partition {part.partition} has a newer owner")
        changed = [state.payments[t] for t in sorted(state.changed) if t in state.payments]
        if changed:
            driver = await _driver(conn)
            await driver.execute(
                _UPSERT_PAYMENTS,
                [p.txn_id for p in changed],
                [part.partition] * len(changed),
                [p.merchant_id for p in changed],
                [p.status for p in changed],
                [p.bank_code for p in changed],
                [p.currency for p in changed],
                [p.amount_minor for p in changed],
                [p.occurred_at for p in changed],
                [p.business_date for p in changed],
                [p.due_at for p in changed],
                [payment_to_json(p).decode() for p in changed],
            )
        if state.removed:
            driver = await _driver(conn)
            await driver.execute(
                "DELETE FROM matcher_payments WHERE txn_id = ANY($1::text[])", sorted(state.removed)
            )

    async def _add_to_outbox(
        self, conn: AsyncConnection, findings: Sequence[Finding]
    ) -> list[StoredFinding]:
        if not findings:
            return []
        stored = [StoredFinding(f.key, f.merchant_id, finding_to_json(f)) for f in findings]
        driver = await _driver(conn)
        inserted = await driver.fetch(
            _INSERT_OUTBOX,
            [f.key for f in stored],
            [f.merchant_id for f in stored],
            [orjson.dumps(f.body).decode() for f in stored],
        )
        new_keys = {row["key"] for row in inserted}
        return [f for f in stored if f.key in new_keys]

    async def unpublished(self, limit: int = 1000) -> list[StoredFinding]:
        query = (
            select(tables.outbox.c.key, tables.outbox.c.merchant_id, tables.outbox.c.body)
            .where(tables.outbox.c.published_at.is_(None))
            .order_by(tables.outbox.c.created_at, tables.outbox.c.key)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [StoredFinding(r.key, r.merchant_id, r.body) for r in await conn.execute(query)]

    async def mark_published(self, keys: Sequence[str]) -> None:
        if keys:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(tables.outbox)
                    .where(tables.outbox.c.key.in_(list(keys)))
                    .values(published_at=func.now())
                )


async def forget_consumed_offsets(database_url: str) -> None:
    """Make the matcher read its topics from the beginning (for a broker that starts empty,
    like the embedded one; the state stays, and re-applied events are idempotent)."""
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(delete(tables.offsets))
    finally:
        await engine.dispose()

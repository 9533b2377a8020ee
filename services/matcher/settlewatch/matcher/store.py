"""The matcher's state store in PostgreSQL.

A payment's facts live in `matcher_payments` and its state in `matcher_payment_states`
(schema.matcher), each one table per business date, so a closed window (every payment in it
settled, cancelled or expired, and older than the retention) is dropped whole.
The matcher keeps only a working set in memory plus, per owned partition, an index from txn_id to
business date that points its reads at the right day.

A batch is saved in one transaction: the payments it changed, each partition's state document,
the findings it decided (outbox) and the offsets it consumed. So after a crash the matcher
resumes from exactly the state that goes with its offsets, and no finding is lost or doubled.
A partition's findings are written by its one owner in `seq` order and sent in that order, so
what is published is one number per partition (`matcher_published`, migration 0020).
Each partition row carries a generation, bumped by every new owner: a matcher that lost a
partition in a rebalance fails its next save instead of overwriting the new owner's state.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import takewhile
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from settlewatch.common.db import (
    create_engine,
    driver_connection,
    driver_snapshot,
    driver_transaction,
    transaction,
)
from settlewatch.common.errors import Fenced
from settlewatch.common.events import FindingRecord, finding_json
from settlewatch.matcher.codec import (
    FACT_COLUMNS,
    PAYMENT_SELECT,
    PAYMENTS_FROM,
    STATE_COLUMNS,
    fact_row,
    finding_to_json,
    partition_from_json,
    partition_to_json,
    payment_from_row,
    reference_to_json,
    state_row,
)
from settlewatch.matcher.core.matcher import DUPLICATE_HORIZON, EXPIRY
from settlewatch.matcher.core.model import (
    AWAITING_DEADLINE,
    OPEN,
    OWED,
    REGION_JUMP_WINDOW,
    Finding,
    PartitionState,
    Payment,
    RegionSeen,
)
from settlewatch.matcher.day_index import DayIndex
from settlewatch.matcher.timer_sql import (
    FIRE_EXPIRED,
    FIRE_OVERDUE,
    FIRE_PLAN,
    NEXT_DUE,
    status_in,
)
from settlewatch.schema import matcher as tables

__all__ = [
    "DAY_TABLES_LOCK",
    "FENCE",
    "NEVER",
    "Batch",
    "Fired",
    "LostOwnership",
    "MatcherStore",
    "OpenTotals",
    "TopOverdue",
    "Owned",
    "StoredFinding",
    "StoredIds",
    "forget_consumed_offsets",
]

# (bank_code, status, currency) → (payments, sum of absolute amounts in minor units)
OpenTotals = dict[tuple[str, str, str], tuple[int, int]]
TopOverdue = list[tuple[str, str, int]]  # merchant, currency, overdue amount (minor units)


# A batch's payments are copied (binary COPY, the fastest way in) into staging tables of the
# session, emptied at commit, and merged in one statement each: the facts are written once (a
# payment's facts never change), the state is replaced.
_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS matcher_payments_stage ON COMMIT DELETE ROWS AS
    SELECT {facts} FROM matcher_payments WITH NO DATA;
CREATE TEMP TABLE IF NOT EXISTS matcher_payment_states_stage ON COMMIT DELETE ROWS AS
    SELECT {states} FROM matcher_payment_states WITH NO DATA
""".format(facts=", ".join(FACT_COLUMNS), states=", ".join(STATE_COLUMNS))
_MERGE_FACTS = f"""
INSERT INTO matcher_payments ({", ".join(FACT_COLUMNS)})
SELECT * FROM matcher_payments_stage
ON CONFLICT (txn_id, business_date) DO NOTHING
"""
_MERGE_STATES = f"""
INSERT INTO matcher_payment_states ({", ".join(STATE_COLUMNS)})
SELECT * FROM matcher_payment_states_stage
ON CONFLICT (txn_id, business_date) DO UPDATE SET {
    ", ".join(f"{c} = EXCLUDED.{c}" for c in STATE_COLUMNS[STATE_COLUMNS.index("status") :])
}, updated_at = now()
"""
# Set-based statements (arrays): one per batch whatever its size, no parameter limit.
# A partition's rows get their seq while its writer holds the partition's row (the fence), so a
# partition's seqs are in commit order: once its findings up to a seq are sent, all below are.
_MARK_WATERMARKS = """
INSERT INTO matcher_published (partition, seq) SELECT * FROM unnest($1::int[], $2::bigint[])
ON CONFLICT (partition) DO UPDATE SET seq = greatest(matcher_published.seq, EXCLUDED.seq)
"""
# A finding without a partition (the stall watch's: any instance writes them) is marked alone.
_MARK_KEYS = "UPDATE matcher_outbox SET published_at = now() WHERE key = ANY($1::text[])"
# Up to $1 findings still to send of each partition, in order, and of none.
_UNPUBLISHED = """
SELECT key, merchant_id, body::text, seq, partition FROM (
    SELECT key, merchant_id, body, seq, partition FROM matcher_outbox
    WHERE partition IS NULL AND published_at IS NULL ORDER BY seq LIMIT $1) lone
UNION ALL
SELECT o.key, o.merchant_id, o.body::text, o.seq, o.partition
FROM matcher_partitions p LEFT JOIN matcher_published w ON w.partition = p.partition
CROSS JOIN LATERAL (
    SELECT key, merchant_id, body, seq, partition FROM matcher_outbox
    WHERE partition = p.partition AND seq > coalesce(w.seq, 0) ORDER BY seq LIMIT $1) o
"""
# Findings sent and older than the state's retention leave the outbox: a partition's, a batch at
# a time in `seq` order up to its watermark (its rows are written in that order by one owner, so
# their times rise with it: the batch's old prefix is what goes); the stall watch's by their mark.
_PRUNABLE = """
SELECT seq, created_at < $3 AS old FROM matcher_outbox
WHERE partition = $1 AND seq > $2
  AND seq <= (SELECT seq FROM matcher_published WHERE partition = $1)
ORDER BY seq LIMIT $4
"""
_PRUNE = "DELETE FROM matcher_outbox WHERE partition = $1 AND seq > $2 AND seq <= $3"
_PRUNE_LONE = "DELETE FROM matcher_outbox WHERE partition IS NULL AND published_at < $1"
# Serialises the creators of a new day's table (two instances, one new day).
DAY_TABLES_LOCK = "SELECT pg_advisory_xact_lock(hashtext('matcher_payments'))"
# The two tables of a payment, each split by business date.
_DAY_SPLIT = ("matcher_payments", "matcher_payment_states")
# A save goes through only while this instance still owns the partition's generation; the row
# stays locked until the save commits, so a new owner's claim waits for it.
FENCE = """
UPDATE matcher_partitions SET updated_at = now() WHERE partition = $1 AND generation = $2
"""
# A batch's partitions, each fenced by its generation: a partition another instance has claimed
# since is not written (the caller's transaction is then rolled back). One statement, not one a
# partition: the batch is written while the next one is applied, and each round trip waits for
# the event loop.
_SAVE_PARTITIONS = """
UPDATE matcher_partitions p
SET clock = u.clock, body = u.body::jsonb, reference = coalesce(u.reference::jsonb, p.reference),
    updated_at = now()
FROM unnest($1::int[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[])
    AS u(partition, generation, clock, body, reference)
WHERE p.partition = u.partition AND p.generation = u.generation
RETURNING p.partition
"""
_UNFINISHED = """
UPDATE matcher_partitions SET body = jsonb_set(body, '{unfinished_tick}', $2::jsonb)
WHERE partition = $1
"""
_INSERT_OUTBOX = """
INSERT INTO matcher_outbox (key, merchant_id, body, partition)
SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::int[])
ON CONFLICT (key) DO NOTHING
RETURNING key, seq
"""
# A day's table is looked up alone (the date is in the query), so only its index is probed.
_FETCH = f"""
SELECT {PAYMENT_SELECT} FROM {PAYMENTS_FROM}
WHERE f.business_date = $1 AND s.business_date = $1 AND f.txn_id = ANY($2)
"""


# What a maintenance window may move (the core reschedules payments awaiting their deadline).
_PENDING_OF_BANK = f"""
SELECT {PAYMENT_SELECT} FROM {PAYMENTS_FROM}
WHERE s.partition = $1 AND s.{status_in(AWAITING_DEADLINE)} AND s.bank_code = $2
  AND s.due_at >= $3
"""
# What a loaded calendar year may move (the core re-dates payments whose status is still owed):
# a business date up to the end of the year, a deadline from the eve of it on.
_OWED_ACROSS_YEAR = f"""
SELECT {PAYMENT_SELECT} FROM {PAYMENTS_FROM}
WHERE s.partition = $1 AND s.{status_in(OWED)} AND s.business_date <= $2 AND s.due_at >= $3
"""
# Where the payments are: a row per partition and day, its txn_ids as one text, an id a line (an
# array took 4× the database's and the driver's time at a million; a txn_id holds no line break:
# events.ID_PATTERN).
_KEYS = """
SELECT partition, business_date, string_agg(txn_id, E'\\n') AS txn_ids FROM matcher_payments
WHERE partition = ANY($1) GROUP BY partition, business_date
"""
# Each partition row's version: every save of a partition's payments updates its row in the same
# transaction (_SAVE_PARTITIONS; FENCE for a fired round), so a row whose version is unchanged
# since a read has had no payment saved.
_VERSIONS = "SELECT partition, xmin::text AS version FROM matcher_partitions"
_VERSIONS_LOCKED = f"{_VERSIONS} WHERE partition = ANY($1) ORDER BY partition FOR UPDATE"
# The recent sales (duplicates) and the recent sales and refunds with a region (跳码).
_RECENT = """
SELECT partition, kind, merchant_id, card_fingerprint, amount_minor, currency, txn_id,
       occurred_at, terminal_id, evidence ->> 'region' AS region
FROM matcher_payments
WHERE partition = ANY($1) AND kind IN ('sale', 'refund') AND occurred_at >= $2
ORDER BY occurred_at, txn_id
"""
# The sales and refunds that occurred at given times (what the duplicate and region indexes
# point at: matcher.core.recent), on the index of recent sales and refunds by time (0021).
_AT_TIMES = f"""
SELECT {PAYMENT_SELECT} FROM {PAYMENTS_FROM}
WHERE f.partition = $1 AND f.kind IN ('sale', 'refund')
  AND f.occurred_at = ANY($2::timestamptz[])
"""
_TOP_OVERDUE = """
SELECT merchant_id, currency, sum(amount_minor)::bigint AS amount
FROM matcher_payment_states
WHERE partition = ANY($1) AND status = 'overdue'
GROUP BY merchant_id, currency ORDER BY amount DESC LIMIT $2
"""
_OPEN_TOTALS = f"""
SELECT bank_code, status, currency, count(*), sum(amount_minor)::bigint
FROM matcher_payment_states
WHERE partition = ANY($1) AND {status_in(OWED)}
GROUP BY bank_code, status, currency
"""
# For the gauges' sums, which group every owed payment into a few groups (bank × status ×
# currency; merchant × currency): the planner, taking the groups for a tenth of the rows, sorted
# them in parallel workers and spilled to disk — 1.2–1.5 s of CPU at a million owed, every 5 s;
# hashed in the one backend it is 0.3 s.
_SUMMING = "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL enable_sort = off"
# Whether a day holds a payment still open or expired since $3 (its table alone is read).
_STILL_OPEN = """
SELECT EXISTS (SELECT 1 FROM matcher_payment_states WHERE business_date = $1
               AND (status = ANY($2) OR (status = 'expired' AND due_at >= $3)))
"""
_DAYS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'matcher_payments'::regclass
"""


def _day_table(day: date, table: str) -> str:
    return f"{table}_d{day:%Y%m%d}"


NEVER = datetime.max.replace(tzinfo=UTC)


class LostOwnership(Fenced):
    """Another matcher instance owns the partition now; this one must drop it."""


@dataclass
class Owned:
    """A partition this instance owns: its state, the generation that fences its writes, and
    where each of its payments is stored (txn_id → business date)."""

    partition: int
    generation: int
    state: PartitionState
    days: DayIndex = field(default_factory=DayIndex)
    # No payment stored and out of the working set is due before this (None: not known yet), so
    # a tick before it need not ask the database.
    due_floor: datetime | None = None
    # The payments of the working set whose facts are stored (read from the store or taken to
    # be written): a payment's facts never change, so a change of its state writes the state
    # alone. Only a hint: a payment not in it has its facts written (again: no harm).
    facts_stored: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class StoredFinding:
    """A finding in the outbox: `value` is its JSON, as published; `seq` its place in the outbox
    (None until written), `partition` the one that decided it (None: the stall watch)."""

    key: str
    merchant_id: str | None
    value: bytes
    partition: int | None
    seq: int | None = None


@dataclass
class StoredIds:
    """Where the partitions' payments lie, read before this instance knew which partitions it
    would get (MatcherStore.read_ahead), with the version of each partition's row at that read:
    a claim keeps the index of a partition whose row has not changed since. Once `wanted` is
    set (the partitions assigned), the read skips the others."""

    versions: dict[int, str] = field(default_factory=dict)
    days: dict[int, DayIndex] = field(default_factory=dict)
    wanted: set[int] | None = None

    def wants(self, partition: int) -> bool:
        """Whether the read takes (or took) `partition`: `wanted` is set once, never widened,
        so a partition it wants was read whole once the read is done."""
        return self.wanted is None or partition in self.wanted


@dataclass(frozen=True)
class Fired:
    """One round of the deadline fast path: its new findings (each names its partition), and
    whether the round was full (more may be due)."""

    findings: list[StoredFinding]
    full: bool


@dataclass(frozen=True)
class _PartitionRow:
    partition: int
    generation: int
    clock: datetime | None
    body: dict[str, Any]
    reference: dict[str, Any] | None


@dataclass(frozen=True)
class Batch:
    """A processed batch as it is written (MatcherStore.take): partition rows, payment rows
    (and their txn_ids, by partition), the days they are stored in, findings (seq not yet
    known) and the offsets consumed."""

    partitions: list[_PartitionRow]
    payments: list[tuple[tuple[Any, ...] | None, tuple[Any, ...]]]  # facts (None: stored), state
    changed: dict[int, set[str]]  # partition → the txn_ids of its payments in the batch
    days: set[date]
    findings: list[StoredFinding]
    offsets: dict[tuple[str, int], int]


class MatcherStore:
    def __init__(
        self, engine: AsyncEngine, region_jump_window: timedelta = REGION_JUMP_WINDOW
    ) -> None:
        self._engine = engine
        self._region_jump_window = region_jump_window
        self._day_tables: set[date] = set()  # known to exist

    async def read_ahead(self, ahead: StoredIds) -> None:
        """Fill `ahead` with where the payments of every partition lie, as `claim` would read
        it: a process reads it while its consumer group assigns the partitions (a second or
        more that it would otherwise wait), and the claim then reads only what was saved since.
        """
        async with driver_snapshot(self._engine) as driver:  # versions and ids of one snapshot
            ahead.versions = {r["partition"]: r["version"] for r in await driver.fetch(_VERSIONS)}
            await self._read_days(driver, list(ahead.versions), ahead.days, ahead.wants)

    async def _read_days(
        self,
        driver: Any,
        partitions: list[int],
        into: dict[int, DayIndex],
        wanted: Callable[[int], bool] = lambda _: True,
    ) -> None:
        """Where the payments of `partitions` lie, into their indexes, a day's ids at a time (a
        million ids as strings are ≈ 70 MB)."""
        if partitions:
            async for r in driver.cursor(_KEYS, partitions, prefetch=1):
                if wanted(r["partition"]):
                    index = into.setdefault(r["partition"], DayIndex())
                    index.add_day(r["business_date"], r["txn_ids"].split("\n"))

    async def claim(self, partitions: Sequence[int], ahead: StoredIds | None = None) -> list[Owned]:
        """Take ownership of `partitions` and load what their state needs in memory (where
        their payments lie from `ahead`, a finished read, for each partition saved nothing since
        it was read)."""
        claim = (
            insert(tables.partitions)
            .values([{"partition": p, "generation": 1, "body": {}} for p in partitions])
            .on_conflict_do_update(
                index_elements=[tables.partitions.c.partition],
                set_={"generation": tables.partitions.c.generation + 1},
            )
            .returning(
                tables.partitions.c.partition,
                tables.partitions.c.generation,
                tables.partitions.c.clock,
                tables.partitions.c.reference,
                tables.partitions.c.body,
            )
        )
        async with transaction(self._engine) as conn:
            driver = await driver_connection(conn)
            days: dict[int, DayIndex] = {}
            if ahead is not None:  # locked until the claim commits: no save comes between
                for r in await driver.fetch(_VERSIONS_LOCKED, list(partitions)):
                    p = r["partition"]
                    if ahead.wants(p) and ahead.versions.get(p) == r["version"]:
                        days[p] = ahead.days.get(p, DayIndex())  # none: it held no payment
            rows = {row.partition: row for row in await conn.execute(claim)}
            clocks = [row.clock for row in rows.values() if row.clock is not None]
            horizon = max(DUPLICATE_HORIZON, self._region_jump_window)
            since = min(clocks) - horizon if clocks else datetime(1970, 1, 1, tzinfo=UTC)
            sales = defaultdict(list)
            regions = defaultdict(list)
            for r in await driver.fetch(_RECENT, list(partitions), since):
                if r["kind"] == "sale":
                    key = (
                        r["merchant_id"],
                        r["card_fingerprint"],
                        r["amount_minor"],
                        r["currency"],
                    )
                    sales[r["partition"]].append((key, r["txn_id"], r["occurred_at"]))
                if r["terminal_id"] and r["region"]:
                    seen = RegionSeen(
                        r["merchant_id"],
                        r["terminal_id"],
                        r["txn_id"],
                        r["occurred_at"],
                        r["region"],
                    )
                    regions[r["partition"]].append(seen)
            await self._read_days(driver, [p for p in partitions if p not in days], days)
        return [
            Owned(
                p,
                rows[p].generation,
                partition_from_json(
                    rows[p].reference,
                    rows[p].body,
                    rows[p].clock,
                    sales[p],
                    regions[p],
                    self._region_jump_window,
                ),
                days.get(p, DayIndex()),
            )
            for p in partitions
        ]

    async def offsets(
        self, topics: Iterable[str], partitions: Iterable[int]
    ) -> dict[tuple[str, int], int]:
        query = select(tables.offsets).where(
            tables.offsets.c.topic.in_(list(topics)),
            tables.offsets.c.partition.in_(list(partitions)),
        )
        async with self._engine.connect() as conn:
            return {(r.topic, r.partition): r.next_offset for r in await conn.execute(query)}

    # --- reads into the working set -------------------------------------------------------

    async def _fetch(self, query: str, *args: Any) -> list[Any]:
        async with self._engine.connect() as conn:
            driver = await driver_connection(conn)
            return list(await driver.fetch(query, *args))

    async def _payments(self, owned: Owned, query: str, *args: Any) -> list[Payment]:
        """Payments of `owned` from a query that selects PAYMENT_SELECT."""
        payments = [payment_from_row(row) for row in await self._fetch(query, *args)]
        owned.facts_stored.update(p.txn_id for p in payments)
        return payments

    async def fetch(self, owned: Owned, txn_ids: Iterable[str]) -> list[Payment]:
        """The stored payments among `txn_ids` that are not in the working set."""
        by_day: dict[date, list[str]] = defaultdict(list)
        for txn_id in txn_ids:
            if txn_id not in owned.state.payments:
                for day in owned.days.days_of(txn_id):
                    by_day[day].append(txn_id)
        return [
            payment
            for day, ids in sorted(by_day.items())
            for payment in await self._payments(owned, _FETCH, day, ids)
        ]

    async def at_times(self, owned: Owned, times: Iterable[datetime]) -> list[Payment]:
        """The stored sales and refunds of the partition that occurred at `times`."""
        times = sorted(times)
        return await self._payments(owned, _AT_TIMES, owned.partition, times) if times else []

    async def next_due(self, owned: Owned, besides: Iterable[str] = ()) -> datetime:
        """When the timer next acts on a stored payment of the partition but those `besides`
        (NEVER: no such payment)."""
        async with self._engine.connect() as conn:
            driver = await driver_connection(conn)
            due = await driver.fetchval(NEXT_DUE, owned.partition, list(besides))
        return due or NEVER

    async def pending_of_bank(self, owned: Owned, bank_code: str, since: datetime) -> list[Payment]:
        """Pending payments of a bank due at or after `since` (a new maintenance window)."""
        return await self._payments(owned, _PENDING_OF_BANK, owned.partition, bank_code, since)

    async def owed_across_year(self, owned: Owned, year: int) -> list[Payment]:
        """Pending and overdue payments whose deadline may involve days of `year`."""
        last_day = date(year, 12, 31)
        eve = datetime(year - 1, 12, 30, tzinfo=UTC)  # before 1 January in any time zone
        return await self._payments(owned, _OWED_ACROSS_YEAR, owned.partition, last_day, eve)

    async def open_totals(self, partitions: Sequence[int]) -> OpenTotals:
        """Pending and overdue payments and amounts of `partitions`, as last saved."""
        rows = await self._sum(_OPEN_TOTALS, list(partitions))
        return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}

    async def top_overdue(self, partitions: Sequence[int], limit: int = 20) -> TopOverdue:
        """The merchants of `partitions` with the most money overdue (a bounded set of series)."""
        rows = await self._sum(_TOP_OVERDUE, list(partitions), limit)
        return [(r[0], r[1], r[2]) for r in rows]

    async def _sum(self, query: str, *args: Any) -> list[Any]:
        async with driver_snapshot(self._engine) as driver:
            await driver.execute(_SUMMING)
            return list(await driver.fetch(query, *args))

    # --- writes ---------------------------------------------------------------------------

    async def save(
        self,
        owned: Sequence[Owned],
        findings: Mapping[int | None, Sequence[Finding]],
        next_offsets: Mapping[tuple[str, int], int],
    ) -> list[StoredFinding]:
        """Write a processed batch atomically, `findings` by the partition that decided them
        (None: none did); return the findings that are new (to publish)."""
        return await self.write(self.take(owned, findings, next_offsets))

    def take(
        self,
        owned: Sequence[Owned],
        findings: Mapping[int | None, Sequence[Finding]],
        next_offsets: Mapping[tuple[str, int], int],
    ) -> Batch:
        """A processed batch as `write` will write it, taken from the state now (the changes
        are then no longer pending), so that the state can move on while it is written."""
        payments = [
            (part, p)
            for part in owned
            for t in sorted(part.state.changed)
            if (p := part.state.payments.get(t)) is not None
        ]
        batch = Batch(
            [
                _PartitionRow(
                    part.partition,
                    part.generation,
                    part.state.clock,
                    partition_to_json(part.state),
                    reference_to_json(part.state) if part.state.reference_changed else None,
                )
                for part in owned
            ],
            [
                (
                    fact_row(p, part.partition) if p.txn_id not in part.facts_stored else None,
                    state_row(p, part.partition),
                )
                for part, p in payments
            ],
            {part.partition: set(part.state.changed) for part in owned},
            {p.business_date for _, p in payments},
            [
                StoredFinding(f.key, f.merchant_id, orjson.dumps(finding_to_json(f)), partition)
                for partition, decided in findings.items()
                for f in decided
            ],
            dict(next_offsets),
        )
        for part in owned:
            state = part.state
            for txn_id in state.changed:
                if (payment := state.payments.get(txn_id)) is not None:
                    part.days.add(txn_id, payment.business_date)
                    part.facts_stored.add(txn_id)
            part.facts_stored.intersection_update(state.payments)  # the evicted go
            state.changed.clear()
            state.reference_changed = False
        return batch

    async def write(self, batch: Batch) -> list[StoredFinding]:
        """Write a batch taken by `take` in one transaction; return its new findings."""
        await self._ensure_day_tables(batch.days)
        async with transaction(self._engine) as conn:
            await self._save_partitions(conn, batch.partitions)
            if batch.payments:
                driver = await driver_connection(conn)
                await driver.execute(_STAGE)
                await driver.copy_records_to_table(
                    "matcher_payments_stage",
                    records=[facts for facts, _ in batch.payments if facts is not None],
                )
                await driver.copy_records_to_table(
                    "matcher_payment_states_stage", records=[state for _, state in batch.payments]
                )
                await driver.execute(_MERGE_FACTS)
                await driver.execute(_MERGE_STATES)
            new = await self._add_to_outbox(conn, batch.findings)
            if batch.offsets:
                rows = [
                    {"topic": t, "partition": p, "next_offset": o}
                    for (t, p), o in batch.offsets.items()
                ]
                upsert = insert(tables.offsets).values(rows)
                await conn.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[tables.offsets.c.topic, tables.offsets.c.partition],
                        set_={"next_offset": upsert.excluded.next_offset},
                    )
                )
        return new

    async def _ensure_day_tables(self, days: Iterable[date]) -> None:
        missing = set(days) - self._day_tables
        if not missing:
            return
        async with transaction(self._engine) as conn:
            driver = await driver_connection(conn)
            await driver.execute(DAY_TABLES_LOCK)  # the DDL is once per day
            for day in sorted(missing):
                for table in _DAY_SPLIT:
                    await driver.execute(
                        f"CREATE TABLE IF NOT EXISTS {_day_table(day, table)} PARTITION OF "
                        f"{table} FOR VALUES FROM ('{day}') TO ('{day}'::date + 1)"
                    )
        self._day_tables |= missing

    async def _save_partitions(self, conn: AsyncConnection, rows: Sequence[_PartitionRow]) -> None:
        if not rows:
            return
        driver = await driver_connection(conn)
        saved = await driver.fetch(
            _SAVE_PARTITIONS,
            [r.partition for r in rows],
            [r.generation for r in rows],
            [r.clock for r in rows],
            [orjson.dumps(r.body).decode() for r in rows],
            [None if r.reference is None else orjson.dumps(r.reference).decode() for r in rows],
        )
        if lost := {r.partition for r in rows} - {row["partition"] for row in saved}:
            raise LostOwnership(f"partitions {sorted(lost)} have a newer owner")

    async def _add_to_outbox(
        self, conn: AsyncConnection, stored: Sequence[StoredFinding]
    ) -> list[StoredFinding]:
        if not stored:
            return []
        driver = await driver_connection(conn)
        inserted = await driver.fetch(
            _INSERT_OUTBOX,
            [f.key for f in stored],
            [f.merchant_id for f in stored],
            [f.value.decode() for f in stored],
            [f.partition for f in stored],
        )
        seqs = {row["key"]: row["seq"] for row in inserted}
        return [
            dataclasses.replace(f, seq=seq) for f in stored if (seq := seqs.get(f.key)) is not None
        ]

    async def fire_due(self, owned: Owned, now: datetime, limit: int) -> Fired:
        """One round of the deadline fast path (timer_sql): up to `limit` stored payments of
        each kind due by `now` marked overdue or expired and their findings written to the
        outbox, with the tick saved as unfinished while rounds are full, in one transaction."""
        stamp = orjson.dumps(now).decode()[1:-1]  # as a payment's history writes it
        at = finding_json(  # as the findings it writes carry it
            FindingRecord(
                id="",
                type="settlement.overdue",
                state="open",
                at=now,
                merchant_id=None,
                txn_id=None,
                evidence={},
            )
        )["at"]
        findings: list[StoredFinding] = []
        full = False
        async with transaction(self._engine) as conn:
            driver = await driver_connection(conn)
            fenced = await driver.execute(FENCE, owned.partition, owned.generation)
            if fenced != "UPDATE 1":
                raise LostOwnership(f"partition {owned.partition} has a newer owner")
            await driver.execute(FIRE_PLAN)
            for statement in (FIRE_OVERDUE, FIRE_EXPIRED):
                rows = await driver.fetch(statement, owned.partition, now, stamp, at, limit)
                full = full or rows[0]["fired"] >= limit
                findings += [
                    StoredFinding(
                        r["key"], r["merchant_id"], r["body"].encode(), owned.partition, r["seq"]
                    )
                    for r in rows
                    if r["key"] is not None
                ]
            unfinished = orjson.dumps(now.isoformat() if full else None).decode()
            await driver.execute(_UNFINISHED, owned.partition, unfinished)
        owned.state.unfinished_tick = now if full else None
        return Fired(findings, full)

    async def drop_closed_windows(self, before: date, owned: Iterable[Owned]) -> list[date]:
        """Drop the day tables before `before` in which no payment is still open nor expired
        since `before` (an expired payment stays readable for the retention), and forget their
        payments in the owned partitions' indexes. Returns the days dropped."""
        # Expired at due_at + EXPIRY: since `before` when due_at >= before - EXPIRY.
        expired_since = datetime.combine(before, datetime.min.time(), UTC) - EXPIRY
        dropped: list[date] = []
        names = [row[0] for row in await self._fetch(_DAYS)]
        existing = {datetime.strptime(n.rsplit("_d", 1)[1], "%Y%m%d").date() for n in names}
        for day in sorted(d for d in existing if d < before):
            async with transaction(self._engine) as conn:
                driver = await driver_connection(conn)
                still_open = await driver.fetchval(_STILL_OPEN, day, sorted(OPEN), expired_since)
                if not still_open:
                    tables_of_day = ", ".join(_day_table(day, t) for t in _DAY_SPLIT)
                    await driver.execute(f"DROP TABLE IF EXISTS {tables_of_day}")
                    dropped.append(day)
        remaining = existing - set(dropped)  # another instance may have dropped some
        for part in owned:
            part.days.forget({d for d in part.days.days() if d < before} - remaining)
            part.facts_stored.clear()  # some may have gone with their day
        self._day_tables = {d for d in self._day_tables if d >= before or d in remaining}
        return dropped

    async def prune_outbox(
        self, before: datetime, partitions: Iterable[int], batches: int = 10, batch: int = 10_000
    ) -> bool:
        """Delete the findings sent and written before `before`, of `partitions` and of none,
        at most `batches` transactions of `batch` rows (a matcher's loop is not held up for
        long); return whether all are gone. What is unsent stays, whatever its age."""
        async with driver_transaction(self._engine) as driver:
            await driver.execute(_PRUNE_LONE, before)
        for partition in partitions:
            after = 0
            while True:
                if batches == 0:
                    return False
                batches -= 1
                async with driver_transaction(self._engine) as driver:
                    rows = await driver.fetch(_PRUNABLE, partition, after, before, batch)
                    old = list(takewhile(lambda r: r["old"], rows))
                    if old:
                        await driver.execute(_PRUNE, partition, after, old[-1]["seq"])
                if len(old) < batch:
                    break
                after = old[-1]["seq"]
        return True

    async def unpublished(self, limit: int = 1000) -> list[StoredFinding]:
        """Findings saved but not yet sent: up to `limit` of each partition, in order."""
        return [
            StoredFinding(r[0], r[1], r[2].encode(), r[4], r[3])
            for r in await self._fetch(_UNPUBLISHED, limit)
        ]

    async def mark_published(self, findings: Sequence[StoredFinding]) -> None:
        """`findings` (as saved) were sent: one watermark per partition, whatever their number."""
        marks: dict[int, int] = {}
        lone = []
        for f in findings:
            if f.partition is None or f.seq is None:
                lone.append(f.key)
            else:
                marks[f.partition] = max(marks.get(f.partition, 0), f.seq)
        if marks or lone:
            async with transaction(self._engine) as conn:
                driver = await driver_connection(conn)
                if marks:
                    await driver.execute(_MARK_WATERMARKS, list(marks), list(marks.values()))
                if lone:
                    await driver.execute(_MARK_KEYS, lone)


async def forget_consumed_offsets(database_url: str) -> None:
    """Make the matcher read its topics from the beginning (for a broker that starts empty,
    like the embedded one; the state stays, and re-applied events are idempotent)."""
    engine = create_engine(database_url, pool_size=1)
    try:
        async with transaction(engine) as conn:
            await conn.execute(delete(tables.offsets))
    finally:
        await engine.dispose()

"""Migration 0022 at scale: N stored payments (default 1 M) of the release before moved to the
narrow state table, online, while a matcher of the release before keeps writing.

The payments (bench/search.py's, over its 35 days) are written as the release before held them,
one row each, with COPY. Then a writer saves payments one at a time as such a matcher does (an
upsert of the whole row, a deadline fired) — first for 5 s alone (the reference), then while
`migrate --to 0022` runs (the copy in batches of SETTLEWATCH_MIGRATION_BATCH, default 20 000).
Printed: the migration's time and rate, the writes meanwhile and their latency (p50, p99, max)
against the reference's, and the time 0023 takes. Last line:
``RESULT migration_0022_s=<seconds> write_p99_ratio=<during ÷ reference>``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from alembic import command

from bench.parts import parts
from bench.search import DAYS, FIRST_DAY, sample_payment
from settlewatch.matcher.codec import PAYMENT_COLUMNS, payment_row
from settlewatch.schema import alembic_config, migrate
from tests.support import before_0022
from tests.support.urls import asyncpg_dsn


async def load(conn: asyncpg.Connection, total: int) -> float:
    started = time.perf_counter()
    per_day = total // DAYS
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        table = f"matcher_payments_d{day:%Y%m%d}"
        await conn.execute(
            f"CREATE TABLE {table} (LIKE matcher_payments INCLUDING DEFAULTS INCLUDING GENERATED)"
        )
        rows = [
            payment_row(sample_payment(i * DAYS + d, day, per_day), 100) for i in range(per_day)
        ]
        await conn.copy_records_to_table(table, records=rows, columns=PAYMENT_COLUMNS)
        await conn.execute(
            f"ALTER TABLE matcher_payments ATTACH PARTITION {table} "
            f"FOR VALUES FROM ('{day}') TO ('{day + timedelta(days=1)}')"
        )
    await conn.execute("ANALYZE matcher_payments")
    return time.perf_counter() - started


async def write(url: str, total: int, stop: asyncio.Event, latencies: list[float]) -> None:
    """Save random stored payments one at a time, made overdue, until `stop`."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    rng = random.Random(22)
    per_day = total // DAYS
    try:
        while not stop.is_set():
            i = rng.randrange(per_day * DAYS)
            payment = sample_payment(i, FIRST_DAY + timedelta(days=i % DAYS), per_day)
            payment.status = payment.reported = "overdue"
            row: Any = payment_row(payment, 100)
            started = time.perf_counter()
            await conn.execute(before_0022.WRITE, *row)
            latencies.append(time.perf_counter() - started)
            if latencies[-1] > 1:
                print(f"  a write waited {latencies[-1]:.1f} s", flush=True)
    finally:
        await conn.close()


def quantiles(latencies: list[float]) -> str:
    q = statistics.quantiles(latencies, n=100)
    return f"p50 {q[49] * 1e3:.1f} ms, p99 {q[98] * 1e3:.1f} ms, max {max(latencies) * 1e3:.0f} ms"


async def writing_while(url: str, total: int, work: Any) -> tuple[list[float], float]:
    """The writes made while `work` (a blocking call) runs, and its seconds."""
    stop, latencies = asyncio.Event(), []
    writer = asyncio.create_task(write(url, total, stop, latencies))
    started = time.perf_counter()
    await asyncio.to_thread(work)
    seconds = time.perf_counter() - started
    stop.set()
    await writer
    return latencies, seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=1_000_000)
    args = parser.parse_args()
    async with parts(f"migration{uuid.uuid4().hex[:6]}", partitions=1) as p:
        url = p.database_url
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0021")
        conn = await asyncpg.connect(asyncpg_dsn(url))
        seconds = await load(conn, args.payments)
        await conn.close()
        print(f"loaded {args.payments:,} payments as 0021 holds them in {seconds:.0f} s")
        reference, _ = await writing_while(url, args.payments, lambda: time.sleep(5))
        during, migration_s = await writing_while(url, args.payments, lambda: migrate(url, "0022"))
        started = time.perf_counter()
        await asyncio.to_thread(migrate, url)
        contract_s = time.perf_counter() - started
    rate = args.payments / migration_s
    print(f"migrate --to 0022: {migration_s:.1f} s ({rate:,.0f} payments/s)")
    print(f"writes alone ({len(reference):,}): {quantiles(reference)}")
    print(f"writes during it ({len(during):,}): {quantiles(during)}")
    print(f"migrate 0023: {contract_s:.2f} s")
    ratio = statistics.quantiles(during, n=100)[98] / statistics.quantiles(reference, n=100)[98]
    print(f"RESULT migration_0022_s={migration_s:.1f} write_p99_ratio={ratio:.1f}")


if __name__ == "__main__":
    asyncio.run(main())

"""The matcher's state at scale: 1 M pending payments.

Merchant profiles (cycle D9, so nothing falls due during the load) and N transactions spread
over the last two days go through the broker into `settlewatch serve matcher`. Printed:

- memory per pending payment: the matcher's RSS after the load minus its RSS before, ÷ N; and
  the same after the restart below (the state alone: the load's transient objects leave the
  allocator holding memory that a restarted process never had);
- cold restart: the matcher SIGKILLed and started again, until every partition's clock has
  applied a pulse published after the restart (process start, group join, state load);
- N deadlines due at once: one pulse 12 days ahead, until N overdue findings are published;
- the reference, what acquirers run today: the same overdue set from a batch SQL query over
  plain transaction and settlement tables in the same PostgreSQL (COPY-loaded), and its time.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.parts import (
    CONSUMED,
    PUBLISHED,
    Parts,
    merchant_records,
    parts,
    publish_pulse,
    sale_record,
    serve_matcher,
)
from settlewatch.common.events import MerchantProfile
from settlewatch.common.publisher import Publisher
from settlewatch.matcher.core.deadlines import Schedule, deadline
from tests.support.urls import asyncpg_dsn

PARTITIONS = 12
PROFILE = {"name": "m", "settlement_bank": "ICBC", "settlement_cycle": "D9"}
SPREAD_S = 2 * 86400


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def occurred(i: int, now: datetime) -> datetime:
    """Spread over two days ending two hours ago: a steady state, where only the last hour's
    sales are kept for duplicate detection."""
    return now - timedelta(hours=2, seconds=i % SPREAD_S, microseconds=i % 997)


async def produce_transactions(
    publisher: Publisher, p: Parts, n: int, merchants: int, now: datetime
) -> int:
    """Publish the transactions with a pulse after every 5000 (one second of matcher clock
    apart, from 1000 s ago, as ingest's pulses); return the records published."""
    published = 0
    for start in range(0, n, 5000):
        records = [
            sale_record(i, f"M{i % merchants}", occurred(i, now))
            for i in range(start, min(start + 5000, n))
        ]
        await publisher.publish(p.topics.transactions, records)
        await publish_pulse(publisher, p.topics, now - timedelta(seconds=1000 - start // 5000 - 1))
        published += len(records) + 2 * PARTITIONS
    return published


async def wait_for(conn: asyncpg.Connection, query: str, target: int, *args: object) -> float:
    """Seconds until `query` answers at least `target` (a count, or true for 1)."""
    started = time.perf_counter()
    while int(await conn.fetchval(query, *args)) < target:
        await asyncio.sleep(0.1)
    return time.perf_counter() - started


CLOCKS_PAST = "SELECT count(*) FROM matcher_partitions WHERE clock >= $1"


class TopicCounter:
    """Counts the records arriving on a topic from now on, as a consumer of the findings would
    see them. (The harness first asked the store; as the fired payments' dead index entries grew
    each question took seconds, a core of PostgreSQL taken from the work being measured. The
    topic's end offsets would cost nothing, but the embedded broker's lag behind its records.)"""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            max_partition_fetch_bytes=8 * 2**20,
            fetch_max_bytes=64 * 2**20,
        )
        self._topic = topic

    async def __aenter__(self) -> TopicCounter:
        await self._consumer.start()
        await self._consumer.topics()  # the metadata
        partitions = self._consumer.partitions_for_topic(self._topic) or set()
        assigned = [TopicPartition(self._topic, p) for p in partitions]
        self._consumer.assign(assigned)
        await self._consumer.seek_to_end(*assigned)
        for tp in assigned:
            await self._consumer.position(tp)  # fixed now, before anything is published
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()

    async def wait_for(self, target: int) -> float:
        """Seconds until `target` records have arrived."""
        started = time.perf_counter()
        arrived = 0
        while arrived < target:
            batch = await self._consumer.getmany(timeout_ms=100, max_records=100_000)
            arrived += sum(len(records) for records in batch.values())
        return time.perf_counter() - started


async def reconciliation(
    conn: asyncpg.Connection, n: int, now: datetime, at: datetime
) -> tuple[int, float]:
    """The nightly job: every transaction due by `at` without a settlement."""
    await conn.execute(
        "CREATE TABLE recon_transactions (txn_id text PRIMARY KEY, merchant_id text, "
        "amount_minor bigint, occurred_at timestamptz, due_at timestamptz)"
    )
    await conn.execute(
        "CREATE TABLE recon_settlements (txn_id text PRIMARY KEY, net_minor bigint, "
        "settled_at timestamptz)"
    )
    schedule = Schedule.of(MerchantProfile.model_validate(PROFILE))
    rows = [
        (f"T{i}", "M", 12800, (when := occurred(i, now)), deadline(when, schedule).due_at)
        for i in range(n)
    ]
    await conn.copy_records_to_table("recon_transactions", records=rows)
    await conn.execute("ANALYZE recon_transactions")
    started = time.perf_counter()
    overdue = await conn.fetchval(
        "SELECT count(*) FROM recon_transactions t WHERE t.due_at <= $1 "
        "AND NOT EXISTS (SELECT 1 FROM recon_settlements s WHERE s.txn_id = t.txn_id)",
        at,
    )
    return overdue, time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=200)
    args = parser.parse_args()
    n = args.pending
    async with parts(f"bench{uuid.uuid4().hex[:6]}", partitions=PARTITIONS) as p:
        log = str(p.workdir / "matcher.log")
        conn = await asyncpg.connect(asyncpg_dsn(p.database_url))
        publisher = Publisher(p.bootstrap, enable_idempotence=False, timeout=60)
        now = datetime.now(UTC)
        await publisher.publish(p.topics.transactions, merchant_records(args.merchants, PROFILE))
        await publish_pulse(publisher, p.topics, now - timedelta(seconds=1000))
        base = args.merchants + 2 * PARTITIONS
        process = serve_matcher(p, log)
        await wait_for(conn, CONSUMED, base)
        rss_before = rss_bytes(process.pid)

        load_started = time.perf_counter()
        total = base + await produce_transactions(publisher, p, n, args.merchants, now)
        await wait_for(conn, CONSUMED, total)
        load_s = time.perf_counter() - load_started
        rss_after = rss_bytes(process.pid)
        per_payment = (rss_after - rss_before) / n

        process.send_signal(signal.SIGKILL)
        process.wait()
        restart_started = time.perf_counter()
        process = serve_matcher(p, log)
        await publish_pulse(publisher, p.topics, now)
        await wait_for(conn, CLOCKS_PAST, PARTITIONS, now)
        restart_s = time.perf_counter() - restart_started
        rss_restarted = rss_bytes(process.pid)

        due_at_once = now + timedelta(days=12)
        async with TopicCounter(p.bootstrap, p.topics.findings) as findings:
            await publish_pulse(publisher, p.topics, due_at_once)
            due_s = await findings.wait_for(n)  # one finding per payment, all overdue
        published = await conn.fetchval(PUBLISHED)
        process.terminate()
        process.wait(30)
        overdue_in_state = await conn.fetchval(
            "SELECT count(*) FROM matcher_payment_states WHERE status = 'overdue'"
        )
        recon_overdue, recon_s = await reconciliation(conn, n, now, due_at_once)
        await publisher.close()
        await conn.close()

    print(f"pending payments: {n:,} ({args.merchants} merchants, {PARTITIONS} partitions)")
    print(f"load through the matcher: {load_s:.1f} s ({(n / load_s):,.0f} transactions/s)")
    print(f"matcher RSS: {rss_before / 2**20:.0f} MiB before, {rss_after / 2**20:.0f} MiB after")
    print(f"memory per pending payment: {per_payment:.0f} B (goal ≤ 120)")
    print(
        f"restarted matcher: {rss_restarted / 2**20:.0f} MiB, "
        f"{(rss_restarted - rss_before) / n:.0f} B per pending payment (the state alone, without "
        "what the allocator kept from the load)"
    )
    print(f"cold restart with {n:,} pending: {restart_s:.1f} s (goal ≤ 3)")
    print(
        f"{n:,} deadlines due at once: {due_s:.1f} s until every overdue finding was published "
        f"({overdue_in_state:,} overdue in the store, {published:,} findings published; "
        "goal ≤ 30 s)"
    )
    print(
        f"batch SQL reconciliation of the same set: {recon_s:.2f} s for {recon_overdue:,} overdue "
        "(run nightly: detection delay = time to the next run, up to 24 h, plus the query)"
    )
    print(f"RESULT matcher_due_vs_sql={due_s / recon_s:.1f}")


if __name__ == "__main__":
    asyncio.run(main())

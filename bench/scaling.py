"""Matcher instances sharing the work: 1, 2 and 3 `settlewatch serve matcher` processes in one
consumer group on the same log.

The workload of bench/matcher.py (transactions, half of them settled, pulses) is written once;
for each instance count the matcher's tables are emptied (the log is read again from its start)
and the instances are started together. Printed per count: records/s from the first saved batch
to the last record (group joins and rebalances included), and whether the outcome — every
payment's status and every finding id — is the same as with one instance. On 2 cores the point
is that the work divides correctly across instances, not that it gets faster. Last line:
``RESULT scaling_same_outcome=<1 if all counts decided the same, else 0>``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import asyncpg

from bench.matcher import PARTITIONS, produce
from bench.parts import Parts, parts, serve_matcher
from tests.support.urls import asyncpg_dsn

CONSUMED = "SELECT coalesce(sum(next_offset), 0) FROM matcher_offsets"
Outcome = tuple[frozenset[tuple[str, str]], frozenset[str]]


async def run(p: Parts, conn: asyncpg.Connection, instances: int, total: int) -> float:
    await conn.execute(
        "TRUNCATE matcher_payments, matcher_payment_states, matcher_partitions, "
        "matcher_offsets, matcher_outbox"
    )
    logs = [str(p.workdir / f"matcher-{instances}-{i}.log") for i in range(instances)]
    processes = [serve_matcher(p, log) for log in logs]
    try:
        started = first = None
        while (done := int(await conn.fetchval(CONSUMED))) < total:
            if started is None and done > 0:
                started, first = time.perf_counter(), done
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"a matcher exited; see {p.workdir}")
            await asyncio.sleep(0.05)
        assert started is not None and first is not None and first < total, "too small to time"
        return (time.perf_counter() - started) * total / (total - first)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


async def outcome(conn: asyncpg.Connection) -> Outcome:
    statuses = await conn.fetch("SELECT txn_id, status FROM matcher_payments")
    # pipeline.stalled is decided by the wall clock, not the log
    keys = await conn.fetch("SELECT key FROM matcher_outbox WHERE key NOT LIKE 'pipeline.%'")
    return frozenset((r[0], r[1]) for r in statuses), frozenset(r[0] for r in keys)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=60_000, help="transactions")
    parser.add_argument("--merchants", type=int, default=200)
    args = parser.parse_args()
    async with parts(f"bench{uuid.uuid4().hex[:6]}", partitions=PARTITIONS) as p:
        total = await produce(p.bootstrap, p.topics, args.events, args.merchants)
        conn = await asyncpg.connect(asyncpg_dsn(p.database_url))
        rates, outcomes = {}, {}
        for instances in (1, 2, 3):
            rates[instances] = total / await run(p, conn, instances, total)
            outcomes[instances] = await outcome(conn)
        await conn.close()
    print(f"records: {total:,} ({args.events:,} transactions, {PARTITIONS} partitions)")
    same = all(o == outcomes[1] for o in outcomes.values())
    for instances, rate in rates.items():
        agrees = "same outcome" if outcomes[instances] == outcomes[1] else "DIFFERENT outcome"
        print(f"{instances} instance(s): {rate:,.0f} records/s, {agrees}")
    payments, findings = outcomes[1]
    print(f"outcome: {len(payments):,} payments, {len(findings):,} findings")
    print(f"RESULT scaling_same_outcome={int(same)}")


if __name__ == "__main__":
    asyncio.run(main())

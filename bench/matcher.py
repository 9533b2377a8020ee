"""Matcher throughput: events/s applied with durable state vs raw aiokafka consume + decode.

The same records (merchant profiles, then transactions and settlements with a clock pulse in
every partition every 2000 events) are read from the same broker in the same run: once by a
plain consumer that decodes each value, once by `settlewatch serve matcher`, which applies them
to its state and saves state, findings and offsets in PostgreSQL, and once by a replay of the
whole log (`settlewatch replay`: a fresh engine on a scratch database). Last lines:
``RESULT replay_ratio=<replay records/s ÷ matcher records/s>`` and
``RESULT matcher_ratio=<matcher events/s ÷ raw events/s>``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
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
    service_env,
)
from settlewatch.common.config import MatcherSettings
from settlewatch.common.events import encode_event
from settlewatch.common.gc_tuning import tune_gc
from settlewatch.common.kafka import Topics
from settlewatch.common.publisher import Publisher
from settlewatch.matcher.replay import replay
from tests.support.urls import asyncpg_dsn

PARTITIONS = 12


async def produce(bootstrap: str, topics: Topics, events: int, merchants: int) -> int:
    """Write the workload; return how many records the two input topics now hold."""
    publisher = Publisher(bootstrap, enable_idempotence=False, timeout=60)
    profile = {"name": "m", "settlement_bank": "ICBC", "settlement_cycle": "T1"}
    await publisher.publish(topics.transactions, merchant_records(merchants, profile))
    now = datetime.now(UTC)
    sent = merchants
    for start in range(0, events, 2000):
        txns, settlements = [], []
        for i in range(start, min(start + 2000, events)):
            merchant = f"M{i % merchants}"
            txns.append(sale_record(i, merchant, now))
            if i % 2:  # every other payment is settled
                line = {
                    "txn_id": f"T{i}",
                    "gross_minor": 12800,
                    "fee_minor": 77,
                    "net_minor": 12723,
                }
                body = {
                    "settlement_id": f"S{i}",
                    "merchant_id": merchant,
                    "bank_code": "ICBC",
                    "status": "settled",
                    "occurred_at": now.isoformat(),
                    "items": [line],
                }
                settlements.append(
                    (merchant.encode(), encode_event("settlement", orjson.dumps(body)))
                )
        await publisher.publish(topics.transactions, txns)
        await publisher.publish(topics.settlements, settlements)
        await publish_pulse(publisher, topics, now + timedelta(seconds=start // 2000))
        sent += len(txns) + len(settlements) + 2 * PARTITIONS
    await publisher.close()
    return sent


async def raw_consume(bootstrap: str, topics: Topics, total: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000
    )
    await consumer.start()
    partitions = [
        TopicPartition(t, p)
        for t in (topics.transactions, topics.settlements)
        for p in range(PARTITIONS)
    ]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    started, seen = time.perf_counter(), 0
    while seen < total:
        for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
            for record in records:
                orjson.loads(record.value or b"")
            seen += len(records)
    elapsed = time.perf_counter() - started
    await consumer.stop()
    return elapsed


async def matcher_consume(p: Parts, total: int, log: str, findings: int = 0) -> float:
    """Seconds for `settlewatch serve matcher` to get past `total` records and publish
    `findings`, from its first saved batch (the group join excluded; the records of that batch,
    applied before the clock started, are counted at the rate of the rest)."""
    conn = await asyncpg.connect(asyncpg_dsn(p.database_url))
    process = serve_matcher(p, log)
    try:
        started, first = None, 0
        while (done := int(await conn.fetchval(CONSUMED))) < total or (
            findings and int(await conn.fetchval(PUBLISHED)) < findings
        ):
            if started is None and done > 0:
                started, first = time.perf_counter(), done
            if process.poll() is not None:
                raise RuntimeError(f"matcher exited; see {log}")
            await asyncio.sleep(0.05)
        assert started is not None and first < total, "workload too small to time"
        return (time.perf_counter() - started) * total / (total - first)
    finally:
        process.terminate()
        process.wait(30)
        await conn.close()


async def replay_consume(p: Parts) -> tuple[int, float]:
    """The whole log replayed (scratch database created, migrated and dropped included)."""
    settings = MatcherSettings(**service_env(p))  # type: ignore[arg-type]
    started = time.perf_counter()
    always = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
    replayed = await replay(settings, *always)
    return replayed.records, time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--events", type=int, default=100_000, help="transactions (half get settled)"
    )
    parser.add_argument("--merchants", type=int, default=200)
    args = parser.parse_args()
    async with parts(f"bench{uuid.uuid4().hex[:6]}", partitions=PARTITIONS) as p:
        total = await produce(p.bootstrap, p.topics, args.events, args.merchants)
        raw_s = await raw_consume(p.bootstrap, p.topics, total)
        matcher_s = await matcher_consume(p, total, str(p.workdir / "matcher.log"))
        tune_gc()  # as `settlewatch replay` does
        replayed, replay_s = await replay_consume(p)
    raw_rate, matcher_rate, replay_rate = total / raw_s, total / matcher_s, replayed / replay_s
    print(
        f"records: {total} ({args.events} transactions, half settled, {args.merchants} merchants)"
    )
    print(f"raw consume + decode: {raw_rate:,.0f} records/s")
    print(f"matcher with durable state: {matcher_rate:,.0f} records/s")
    print(f"replay of the log: {replayed} records, {replay_rate:,.0f} records/s")
    print(f"RESULT replay_ratio={replay_rate / matcher_rate:.2f}")
    print(f"RESULT matcher_ratio={matcher_rate / raw_rate:.2f}")


if __name__ == "__main__":
    asyncio.run(main())

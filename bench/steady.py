"""Matcher memory per sale under steady load: an hour of sales in the duplicate window.

N sales of realistic size (a 23-character txn_id, a SHA-256 card fingerprint), spread over one
hour of occurred_at and followed by the clock (a pulse after every 2000 sales at the time of the
last one, as ingest's pulses follow the wall clock), go through the broker into
`settlewatch serve matcher` (cycle D9: nothing falls due). All of them are within the hour the
duplicate index keeps, so the matcher holds every one: its RSS after the load minus before,
÷ N, is what each sale of the last hour costs (the duplicate index, the txn_id → business-date
index, the allocator's share). Reference in the same run: the bytes of a sale's record value.
Last line: ``RESULT steady_bytes_per_sale=<B>``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from bench.matcher_state import CONSUMED, PROFILE, rss_bytes, wait_for
from bench.parts import Record, merchant_records, parts, publish_pulse, serve_matcher
from settlewatch.common.events import encode_event
from settlewatch.common.publisher import Publisher
from tests.support.urls import asyncpg_dsn

PARTITIONS = 12


def sale(i: int, merchant: str, occurred_at: datetime) -> Record:
    txn = {
        "txn_id": f"TXN{occurred_at:%Y%m%d}{i:012d}",
        "merchant_id": merchant,
        "terminal_id": f"POS-{i % 3}",
        "type": "sale",
        "amount_minor": 1000 + i % 50_000,
        "currency": "CNY",
        "occurred_at": occurred_at.isoformat(),
        "card_fingerprint": hashlib.sha256(str(i).encode()).hexdigest(),
        "rrn": f"{i:012d}",
    }
    return merchant.encode(), encode_event("transaction", orjson.dumps(txn))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=300_000)
    parser.add_argument("--merchants", type=int, default=200)
    args = parser.parse_args()
    n = args.sales
    async with parts(f"bench{uuid.uuid4().hex[:6]}", partitions=PARTITIONS) as p:
        conn = await asyncpg.connect(asyncpg_dsn(p.database_url))
        publisher = Publisher(p.bootstrap, enable_idempotence=False, timeout=60)
        start = datetime.now(UTC) - timedelta(hours=1)
        await publisher.publish(p.topics.transactions, merchant_records(args.merchants, PROFILE))
        await publish_pulse(publisher, p.topics, start)
        base = args.merchants + 2 * PARTITIONS
        process = serve_matcher(p, str(p.workdir / "matcher.log"))
        await wait_for(conn, CONSUMED, base)
        rss_before = rss_bytes(process.pid)
        published, value_bytes = base, 0
        step = timedelta(hours=1) / n
        for first in range(0, n, 2000):
            records = [
                sale(i, f"M{i % args.merchants}", start + i * step)
                for i in range(first, min(first + 2000, n))
            ]
            value_bytes += sum(len(value) for _, value in records)
            await publisher.publish(p.topics.transactions, records)
            await publish_pulse(publisher, p.topics, start + (first + len(records) - 1) * step)
            published += len(records) + 2 * PARTITIONS
        await wait_for(conn, CONSUMED, published)
        rss_after = rss_bytes(process.pid)
        process.terminate()
        process.wait(30)
        await publisher.close()
        await conn.close()
    per_sale = (rss_after - rss_before) / n
    print(f"sales: {n:,} within one hour of matcher clock ({args.merchants} merchants)")
    print(f"matcher RSS: {rss_before / 2**20:.0f} MiB before, {rss_after / 2**20:.0f} MiB after")
    print(f"memory per sale of the last hour: {per_sale:.0f} B (goal ≤ 150)")
    print(f"a sale's record value: {value_bytes / n:.0f} B")
    print(f"RESULT steady_bytes_per_sale={per_sale:.0f}")


if __name__ == "__main__":
    asyncio.run(main())

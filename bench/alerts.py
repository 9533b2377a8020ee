"""Alerts: findings → signed webhook received, with the alerts service as its own process and a
real HTTP receiver on loopback (uvicorn, in this process).

1. Latency: overdue findings are published to the findings topic at a steady rate (one per
   merchant at a time, as the matcher would); the receiver notes when each alert arrives. The
   figure is arrival − publish − group wait (the group wait is a setting, not a cost).
2. Throughput: one finding for each of many merchants at once; deliveries per second until the
   last one is received. Reference measured in the same run: signed POSTs of the same bodies
   straight from this process to the same receiver, with the same concurrency.
3. Isolation: leg 1 again while 20 more merchants' endpoints trickle their answers (headers,
   then a byte every 4 s, never ending) and their findings keep coming; the healthy merchants'
   p99 against leg 1's.

Merchant profiles are written straight into the database (as ingest stores them). Last line:
``RESULT alerts_trickle_p99_ratio=<leg 3's p99 ÷ leg 1's>``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import orjson

from bench.overdue_latency import percentile
from bench.parts import SECRET_KEY, parts, service_env
from settlewatch.alerts.core.signing import headers
from settlewatch.alerts.delivery import LANES
from settlewatch.common.publisher import Publisher
from settlewatch.common.sealing import Sealer
from tests.support.findings import overdue_finding
from tests.support.receiver import Receiver, receiver
from tests.support.service import served
from tests.support.urls import asyncpg_dsn

GROUP_WAIT = timedelta(milliseconds=100)
TRICKLING = 20
SECRET = "whsec_" + base64.b64encode(b"bench-secret-0123456789abcdef").decode()


def finding(merchant: str, n: int) -> tuple[bytes, bytes]:
    """An overdue finding noting when it was published."""
    body = overdue_finding(f"{merchant}-T{n}", merchant, published=time.time())
    return merchant.encode(), orjson.dumps(body)


async def add_merchants(database_url: str, names: list[str], url: str) -> None:
    profile = {
        "name": "m",
        "settlement_bank": "ICBC",
        "settlement_cycle": "T1",
        "webhook": {"url": url},
    }
    sealer = Sealer([SECRET_KEY])
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.executemany(
            "INSERT INTO merchants (merchant_id, settlement_bank, profile) VALUES ($1, 'ICBC', $2) "
            "ON CONFLICT DO NOTHING",
            [
                (m, orjson.dumps(profile | {"webhook": {"url": url.format(m)}}).decode())
                for m in names
            ],
        )
        await conn.executemany(
            "INSERT INTO webhook_secrets (merchant_id, key_id, sealed) VALUES ($1, $2, $3)",
            [(m, sealer.key_id, sealer.seal(SECRET)) for m in names],
        )
    finally:
        await conn.close()


def alerts_received(rec: Receiver, since: int = 0) -> list[tuple[float, dict[str, Any]]]:
    """(arrival wall time, alert) for every alert received after request number `since`."""
    return [
        (got.wall, alert) for got in rec.received[since:] for alert in got.json()["data"]["alerts"]
    ]


async def wait_for(rec: Receiver, since: int, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    seen, count = since, 0
    while count < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        count += sum(a["merchant_id"].startswith("M") for _, a in alerts_received(rec, seen))
        seen = len(rec.received)


async def raw_posts(url: str, bodies: list[bytes]) -> float:
    """The reference: the same signed bodies POSTed straight to the receiver by LANES senders,
    each with a client of its own (the fastest way found); per second."""
    queue = list(enumerate(bodies))

    async def sender() -> None:
        async with httpx.AsyncClient() as client:
            while queue:
                i, body = queue.pop()
                signed = headers([SECRET], f"msg_raw{i}", int(time.time()), body)
                (await client.post(url, content=body, headers=signed)).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(LANES)))
    return len(bodies) / (time.perf_counter() - started)


async def steady(
    rec: Receiver, publisher: Publisher, topic: str, rate: int, seconds: int, since: int
) -> list[float]:
    """Overdue findings at `rate` per second over 50 healthy merchants for `seconds`: the
    latency of each, published → received, minus the group wait, in ms."""
    expected, base = rate * seconds, since * 1000
    for second in range(seconds):
        tick = time.monotonic()
        for i in range(rate):
            merchant = f"M{(second * rate + i) % 50}"
            await publisher.publish(topic, [finding(merchant, base + second * 1000 + i)])
            await asyncio.sleep(max(0.0, (i + 1) / rate - (time.monotonic() - tick)))
    await wait_for(rec, since, expected, 60)
    return [
        (arrived - alert["evidence"]["published"]) * 1000 - GROUP_WAIT.total_seconds() * 1000
        for arrived, alert in alerts_received(rec, since)
        if alert["merchant_id"].startswith("M")
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=100, help="findings per second (latency)")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--merchants", type=int, default=2000, help="deliveries (throughput)")
    args = parser.parse_args()
    async with parts(f"bench{uuid.uuid4().hex[:6]}", partitions=4) as p, receiver() as rec:
        await add_merchants(
            p.database_url, [f"M{m}" for m in range(args.merchants)], f"{rec.url}/hook"
        )
        env = service_env(
            p,
            SETTLEWATCH_GROUP_WAIT=f"PT{GROUP_WAIT.total_seconds()}S",
            ALERTS_SESSION_TIMEOUT="PT2S",
        )
        publisher = Publisher(p.bootstrap, enable_idempotence=False, timeout=30)
        with served("alerts", env, p.workdir / "alerts.log"):
            await asyncio.sleep(3)  # the consumer joins its group
            # 1. latency at a steady rate
            latencies = await steady(rec, publisher, p.topics.findings, args.rate, args.seconds, 0)
            # 2. deliveries per second, one finding for each of many merchants at once
            since = len(rec.received)
            started = time.time()
            await publisher.publish(
                p.topics.findings, [finding(f"M{m}", 999_999) for m in range(args.merchants)]
            )
            await wait_for(rec, since, args.merchants, 300)
            last = max(got.wall for got in rec.received[since:])
            deliveries = len({got.headers["webhook-id"] for got in rec.received[since:]})
            rate = deliveries / (last - started)
            bodies = [got.body for got in rec.received[since : since + 2000]]
            # 3. leg 1 again beside endpoints that never finish answering
            rec.trickle = lambda got: 4.0 if got.path.startswith("/slow") else None
            slow = [f"SLOW{n}" for n in range(TRICKLING)]
            await add_merchants(p.database_url, slow, f"{rec.url}/slow/{{}}")
            for n in range(10):  # ten groups each: more than their lanes can take at once
                await publisher.publish(p.topics.findings, [finding(m, n) for m in slow])
                await asyncio.sleep(GROUP_WAIT.total_seconds() * 2)
            beside = await steady(
                rec, publisher, p.topics.findings, args.rate, args.seconds, len(rec.received)
            )
        await publisher.close()
        reference = await raw_posts(f"{rec.url}/hook", bodies)
    expected = args.rate * args.seconds
    print(f"alerts received: {len(latencies)} of {expected} ({args.rate}/s for {args.seconds} s)")
    print(
        f"finding published → webhook received, minus the group wait: "
        f"p50 {statistics.median(latencies):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms"
    )
    print(
        f"deliveries: {deliveries} in {last - started:.1f} s = {rate:.0f}/s; reference, signed "
        f"POSTs straight to the receiver: {reference:.0f}/s → ratio {rate / reference:.2f}"
    )
    p99, p99_beside = percentile(latencies, 0.99), percentile(beside, 0.99)
    print(
        f"beside {TRICKLING} trickling endpoints: p50 {statistics.median(beside):.0f} ms, "
        f"p99 {p99_beside:.0f} ms → {p99_beside / p99:.2f}× leg 1's p99 (goal ≤ 1.2)"
    )
    print(f"RESULT alerts_p99_ms={p99:.0f}")
    print(f"RESULT alerts_trickle_p99_ratio={p99_beside / p99:.2f}")


if __name__ == "__main__":
    asyncio.run(main())

"""Overdue latency: how long after `due_at` the `settlement.overdue` finding is on the findings
topic, with ingest (pulses every second, or `--timer-interval`) and the matcher running as their
own processes.

Merchants on the `instant` cycle with a 5 s SLA; transactions posted over HTTP at a steady rate
(ten posts a second) and never settled, so each falls due 5 s after it was made. A consumer on
the findings topic notes when each overdue finding arrives. Reference measured in the same run:
the broker's own produce → consume latency on the same machine. Last line:
``RESULT overdue_p99_s=<p99 seconds after due_at>``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.parts import parts, service_env
from tests.support.service import served

TOKEN = "bench-token-0123456789"
PROFILE = {
    "name": "m",
    "settlement_bank": "ICBC",
    "settlement_cycle": "instant",
    "instant_sla": "PT5S",
}
SLOTS = 10  # posts a second


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def collect_overdue(bootstrap: str, topic: str, expected: int, stop_at: float) -> list[float]:
    """Seconds from due_at to arrival, for every overdue finding that arrives before `stop_at`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    await consumer.topics()
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    latencies: list[float] = []
    try:
        while len(latencies) < expected and time.monotonic() < stop_at:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                arrived = datetime.now(UTC)
                for record in records:
                    finding = orjson.loads(record.value or b"")
                    if finding["type"] == "settlement.overdue" and finding["state"] == "open":
                        due_at = datetime.fromisoformat(finding["evidence"]["due_at"])
                        latencies.append((arrived - due_at).total_seconds())
    finally:
        await consumer.stop()
    return latencies


async def broker_latency(bootstrap: str, topic: str, samples: int = 200) -> list[float]:
    """The reference: produce one record, wait until a consumer has it; repeated."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    await consumer.topics()
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    await consumer.seek_to_end(partition)
    seconds: list[float] = []
    try:
        for _ in range(samples):
            started = time.perf_counter()
            await producer.send_and_wait(topic, b"ping", partition=0)
            while not await consumer.getmany(partition, timeout_ms=1000):
                pass
            seconds.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
    finally:
        await producer.stop()
        await consumer.stop()
    return seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=100, help="transactions per second")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument(
        "--timer-interval",
        default="PT1S",
        help="SETTLEWATCH_TIMER_INTERVAL for both services: the pulses' period (SPEC §5: PT1S)",
    )
    args = parser.parse_args()
    expected = args.rate // SLOTS * SLOTS * args.seconds
    async with parts(f"bench{uuid.uuid4().hex[:6]}") as p:
        env = service_env(
            p,
            SETTLEWATCH_API_TOKENS=f"{TOKEN}=acquirer",
            SETTLEWATCH_TIMER_INTERVAL=args.timer_interval,
        )
        reference = await broker_latency(p.bootstrap, p.topics.dead_letter)
        with (
            served("ingest", env, p.workdir / "ingest.log") as ingest,
            served("matcher", env, p.workdir / "matcher.log"),
        ):
            async with httpx.AsyncClient(
                base_url=ingest, headers={"authorization": f"Bearer {TOKEN}"}
            ) as client:
                for m in range(10):
                    assert (await client.put(f"/v1/merchants/M{m}", json=PROFILE)).is_success
                await asyncio.sleep(5)  # the matcher joins its group and sees the profiles
                stop_at = time.monotonic() + args.seconds + 30
                collector = asyncio.create_task(
                    collect_overdue(p.bootstrap, p.topics.findings, expected, stop_at)
                )
                await asyncio.sleep(1)
                # Ten posts a second, so that the deadlines fall at every phase of the pulses
                # (one post a second put them all at one phase, which a run drew at random).
                for slot in range(args.seconds * SLOTS):
                    tick = time.monotonic()
                    items = [
                        {
                            "txn_id": f"T{slot}-{i}",
                            "merchant_id": f"M{i % 10}",
                            "terminal_id": "POS-1",
                            "type": "sale",
                            "amount_minor": 12800,
                            "currency": "CNY",
                            "occurred_at": datetime.now(UTC).isoformat(),
                            "card_fingerprint": f"fp{slot}-{i}",
                        }
                        for i in range(args.rate // SLOTS)
                    ]
                    response = await client.post("/v1/transactions", json={"items": items})
                    assert response.status_code == 202, response.text
                    await asyncio.sleep(max(0.0, 1 / SLOTS - (time.monotonic() - tick)))
                latencies = await collector
    print(
        f"overdue findings: {len(latencies)} of {expected} ({args.rate}/s for {args.seconds} s, "
        f"pulses every {args.timer_interval})"
    )
    print(
        f"after due_at: p50 {statistics.median(latencies):.2f} s, "
        f"p99 {percentile(latencies, 0.99):.2f} s, max {max(latencies):.2f} s (goal p99 ≤ 1.0 s)"
    )
    print(
        f"reference, broker produce → consume: p50 {statistics.median(reference) * 1000:.1f} ms, "
        f"p99 {percentile(reference, 0.99) * 1000:.1f} ms"
    )
    print(f"RESULT overdue_p99_s={percentile(latencies, 0.99):.2f}")


if __name__ == "__main__":
    asyncio.run(main())

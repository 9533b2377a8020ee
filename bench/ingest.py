"""Ingest throughput: events/s through POST /v1/transactions vs raw aiokafka send_batch.

Both legs publish the same events, keyed and partitioned the same way, acks=all, to the same
broker in the same run. The HTTP leg runs `settlewatch serve ingest` as its own process and a
load client (batches of 1000, a few requests in flight) on this machine.
Last line: ``RESULT ingest_ratio=<http events/s ÷ raw events/s>``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from bench.parts import parts, service_env
from settlewatch.common.events import encode_event
from settlewatch.common.publisher import MAX_BATCH_BYTES
from tests.support.service import served

TOKEN = "bench-token-0123456789"
PROFILE = {"name": "Bench merchant", "settlement_bank": "ICBC", "settlement_cycle": "T1"}


def make_batches(
    events: int, batch: int, merchants: int, run: str
) -> list[list[dict[str, object]]]:
    items = [
        {
            "txn_id": f"{run}-{i}",
            "merchant_id": f"M{i % merchants}",
            "terminal_id": f"POS-{i % 997}",
            "type": "sale",
            "amount_minor": 1000 + (i * 7919) % 500_000,
            "currency": "CNY",
            "occurred_at": "2025-11-20T10:02:31+08:00",
            "card_fingerprint": f"fp_{(i * 31) % 100_000:06d}",
            "rrn": f"{532410000000 + i}",
            "stan": f"{i % 1_000_000:06d}",
        }
        for i in range(events)
    ]
    return [items[i : i + batch] for i in range(0, events, batch)]


async def http_leg(url: str, bodies: list[bytes], concurrency: int) -> float:
    queue = list(reversed(bodies))
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop()
            response = await client.post(f"{url}/v1/transactions", content=body, headers=headers)
            assert response.status_code == 202, response.text

    async with httpx.AsyncClient(timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return time.perf_counter() - started


async def raw_leg(bootstrap: str, topic: str, batches: list[list[dict[str, object]]]) -> float:
    """The reference: the same records, keyed and partitioned alike, through aiokafka's batch
    API from one tight loop (one batch per partition and request, acks=all)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_batch_size=MAX_BATCH_BYTES
    )
    await producer.start()
    partitions = sorted(await producer.partitions_for(topic))
    partitioner = DefaultPartitioner()
    encoded = [
        [
            (str(t["merchant_id"]).encode(), encode_event("transaction", orjson.dumps(t)))
            for t in batch
        ]
        for batch in batches
    ]
    started = time.perf_counter()
    acks = []
    for records in encoded:
        by_partition: dict[int, BatchBuilder] = {}
        for key, value in records:
            partition = partitioner(key, partitions, partitions)
            builder = by_partition.setdefault(partition, producer.create_batch())
            if builder.append(key=key, value=value, timestamp=None) is None:
                acks.append(await producer.send_batch(builder, topic, partition=partition))
                builder = by_partition[partition] = producer.create_batch()
                builder.append(key=key, value=value, timestamp=None)
        for partition, builder in by_partition.items():
            acks.append(await producer.send_batch(builder, topic, partition=partition))
    await asyncio.gather(*acks)
    elapsed = time.perf_counter() - started
    await producer.stop()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="events per leg and round")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds; medians reported"
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--merchants", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    http_rates: list[float] = []
    raw_rates: list[float] = []
    async with parts(f"bench{uuid.uuid4().hex[:6]}") as p:
        env = service_env(p, SETTLEWATCH_API_TOKENS=f"{TOKEN}=acquirer")
        with served("ingest", env, p.workdir / "ingest.log") as url:
            async with httpx.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}) as client:
                for m in range(args.merchants):
                    response = await client.put(f"{url}/v1/merchants/M{m}", json=PROFILE)
                    assert response.status_code == 201
            warmup = make_batches(5 * args.batch, args.batch, args.merchants, "warm")
            await http_leg(url, [orjson.dumps({"items": b}) for b in warmup], args.concurrency)
            # Alternate the legs so that noise from the shared machine hits both alike.
            for round_ in range(args.rounds):
                batches = make_batches(args.events, args.batch, args.merchants, f"r{round_}")
                bodies = [orjson.dumps({"items": b}) for b in batches]
                http_rates.append(args.events / await http_leg(url, bodies, args.concurrency))
                raw_rates.append(
                    args.events / await raw_leg(p.bootstrap, p.topics.transactions, batches)
                )

    http_rate, raw_rate = statistics.median(http_rates), statistics.median(raw_rates)
    print(
        f"events: {args.rounds} rounds of {args.events} per leg, batches of {args.batch}, "
        f"{args.concurrency} requests in flight, {args.merchants} merchants"
    )
    print(f"POST /v1/transactions: {http_rate:,.0f} events/s (median; {_rates(http_rates)})")
    print(f"raw aiokafka send_batch: {raw_rate:,.0f} events/s (median; {_rates(raw_rates)})")
    print(f"RESULT ingest_ratio={http_rate / raw_rate:.2f}")


def _rates(rates: list[float]) -> str:
    return ", ".join(f"{rate:,.0f}" for rate in rates)


if __name__ == "__main__":
    asyncio.run(main())

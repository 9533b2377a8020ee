"""Reading topics back in tests: every record of every partition, up to the current end."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition


async def read_topic(bootstrap: str, *topics: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of every partition of `topics`, up to their ends as of now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # metadata for every topic
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        records: list[ConsumerRecord[bytes, bytes]] = []
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, got in batch.items():
                records += got
                if got and got[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


def decoded(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(record.value or b"null")
    return value


async def data_events(bootstrap: str, *topics: str) -> list[dict[str, Any]]:
    """Every non-pulse event on `topics`, decoded."""
    return [e for e in map(decoded, await read_topic(bootstrap, *topics)) if e["kind"] != "pulse"]

"""Kafka plumbing shared by the services: topic names, topic creation, the readiness probe.

Only plain Kafka features are used (SPEC: consumer groups, keyed partitions, manual commits), so
the same code runs against Apache Kafka in production and the embedded Tansu broker in dev/tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

__all__ = ["BrokerProbe", "Topics", "ensure_topics", "read_topic", "started_consumer"]

_log = logging.getLogger(__name__)
_TOPIC_ALREADY_EXISTS = 36
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Topics:
    """The topic names under one ``SETTLEWATCH_TOPIC_PREFIX``."""

    prefix: str

    @property
    def transactions(self) -> str:
        return f"{self.prefix}.transactions"

    @property
    def settlements(self) -> str:
        return f"{self.prefix}.settlements"

    @property
    def findings(self) -> str:
        return f"{self.prefix}.findings"

    @property
    def dead_letter(self) -> str:
        return f"{self.prefix}.dead-letter"

    def all(self) -> tuple[str, ...]:
        return (self.transactions, self.settlements, self.findings, self.dead_letter)


async def ensure_topics(
    bootstrap_servers: str,
    topics: Topics,
    *,
    partitions: int,
    replication_factor: int,
    configs: Mapping[str, str] | None = None,
) -> None:
    """Create the topics that do not exist yet, with `configs` (the broker's defaults when
    none); existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=replication_factor,
                    topic_configs=dict(configs or {}),
                )
                for name in topics.all()
            ]
        )
        for name, code, message in response.topic_errors:
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"cannot create topic {name}: error {code} {message}")
    finally:
        await admin.close()


class BrokerProbe:
    """Answers "can this process talk to the broker right now?" with a metadata round trip."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._client = AIOKafkaClient(
            bootstrap_servers=bootstrap_servers, request_timeout_ms=int(PROBE_TIMEOUT_S * 1000)
        )
        self._bootstrapped = False

    async def check(self) -> None:
        """Raise unless the broker answers a metadata request within the probe timeout."""
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            if not self._bootstrapped:
                # The broker may come up after the service: bootstrap lazily, retrying per probe.
                await self._client.bootstrap()
                self._bootstrapped = True
            await self._client.fetch_all_metadata()

    async def close(self) -> None:
        await self._client.close()


async def started_consumer(
    consumer: AIOKafkaConsumer, new: Callable[[], AIOKafkaConsumer]
) -> AIOKafkaConsumer:
    """`consumer`, started; while the broker is not up, a fresh one from `new` is tried again
    with backoff (a consumer whose start failed cannot be started again)."""
    delay = 0.5
    while True:
        try:
            await consumer.start()
            return consumer
        except KafkaError as exc:
            await consumer.stop()
            _log.warning("broker unavailable; retrying", extra={"error": str(exc), "in_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            consumer = new()


async def read_topic(bootstrap: str, *topics: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of every partition of `topics`, up to their ends as of now (no group)."""
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

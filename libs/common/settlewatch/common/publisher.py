"""Publishing to Kafka: keyed records in per-partition batches, acknowledged by all replicas.

``publish`` returns only when the broker acknowledged every record (acks=all), or raises
:class:`BrokerUnavailable` within ``timeout`` seconds, so the API can answer 202 or 503 and never
202 for something not stored. Records of a failed call may still arrive later; every event is
idempotent by its id downstream, so a client that resends after a 503 is safe.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from settlewatch.common.config import CommonSettings
from settlewatch.common.errors import Unavailable

__all__ = ["BrokerUnavailable", "Publisher", "Message"]

Message = tuple[bytes, bytes]  # (key, value)
# Large batches amortise the per-request cost; Kafka's default message.max.bytes is ~1 MiB.
MAX_BATCH_BYTES = 512 * 1024


class BrokerUnavailable(Unavailable):
    """The broker did not acknowledge in time; nothing can be promised about the records."""


class Publisher:
    def __init__(self, bootstrap_servers: str, *, enable_idempotence: bool, timeout: float) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._enable_idempotence = enable_idempotence
        self._timeout = timeout
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        self._partition_locks: defaultdict[tuple[str, int], asyncio.Lock] = defaultdict(
            asyncio.Lock
        )
        # murmur2, as the Java client: the same key lands in the same partition as elsewhere
        self._partitioner = DefaultPartitioner()

    @classmethod
    def of_service(cls, settings: CommonSettings, timeout: float) -> Publisher:
        """A service's publisher, to its configured broker."""
        return cls(
            settings.kafka_bootstrap_servers,
            enable_idempotence=settings.kafka_enable_idempotence,
            timeout=timeout,
        )

    async def _ready(self) -> AIOKafkaProducer:
        """The started producer; started on first use so the service can come up before Kafka."""
        if self._producer is not None:
            return self._producer
        async with self._starting:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap_servers,
                    acks="all",
                    enable_idempotence=self._enable_idempotence,
                    max_batch_size=MAX_BATCH_BYTES,
                    max_request_size=MAX_BATCH_BYTES + 64 * 1024,
                    request_timeout_ms=int(self._timeout * 1000),
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
        return self._producer

    async def publish(self, topic: str, records: Sequence[Message]) -> None:
        """Send `records` to `topic`, partitioned by key; return once all are acknowledged."""

        async def send(producer: AIOKafkaProducer) -> None:
            partitions = sorted(await producer.partitions_for(topic))
            by_partition: dict[int, list[Message]] = defaultdict(list)
            for record in records:
                by_partition[self._partition(record[0], len(partitions))].append(record)
            await self._send_batches(producer, topic, by_partition.items())

        await self._with_producer(send)

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one publisher per process, bounded
    def _partition(self, key: bytes, count: int) -> int:
        """Kafka's default partition for `key` (murmur2 in pure Python: worth remembering)."""
        partitions = list(range(count))
        partition: int = self._partitioner(key, partitions, partitions)
        return partition

    async def publish_to(self, topic: str, partition: int, records: Sequence[Message]) -> None:
        """Send `records` to one partition of `topic` (sending a record back where it was read);
        by key if the topic no longer has that partition."""

        async def send(producer: AIOKafkaProducer) -> None:
            if partition in await producer.partitions_for(topic):
                await self._send_batches(producer, topic, [(partition, list(records))])
            else:
                await self.publish(topic, records)

        await self._with_producer(send)

    async def publish_everywhere(self, topic: str, value: bytes) -> None:
        """One unkeyed record into every partition of `topic` (clock pulses, bank-wide events)."""

        async def send(producer: AIOKafkaProducer) -> None:
            partitions = sorted(await producer.partitions_for(topic))
            await self._send_batches(producer, topic, ((p, [(b"", value)]) for p in partitions))

        await self._with_producer(send)

    async def _with_producer(self, send: Callable[[AIOKafkaProducer], Awaitable[None]]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await send(await self._ready())
        except (TimeoutError, KafkaError, OSError) as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def _send_batches(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        by_partition: Iterable[tuple[int, list[Message]]],
    ) -> None:
        acks: list[asyncio.Future[object]] = []
        for partition, records in by_partition:
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(key=key or None, value=value, timestamp=None) is None:
                    acks.append(await self._submit(producer, batch, topic, partition))
                    batch = producer.create_batch()
                    batch.append(key=key or None, value=value, timestamp=None)
            acks.append(await self._submit(producer, batch, topic, partition))
        await asyncio.gather(*acks)

    async def _submit(
        self, producer: AIOKafkaProducer, batch: BatchBuilder, topic: str, partition: int
    ) -> asyncio.Future[object]:
        batch.close()
        # One submitter per partition at a time: aiokafka's accumulator lets a single batch wait
        # per partition, and concurrent waiters exhaust its timeout early (KafkaTimeoutError).
        async with self._partition_locks[(topic, partition)]:
            ack: asyncio.Future[object] = await producer.send_batch(
                batch, topic, partition=partition
            )
        return ack

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

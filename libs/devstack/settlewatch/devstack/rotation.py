"""Retention for the embedded broker, the only way it allows: start it again empty once it has
been read.

The Tansu build keeps every record in memory (≈ 350 B each) and enforces no retention: it
accepts ``retention.ms`` but never deletes, and refuses DeleteRecords. So when its topics hold
more than ``SETTLEWATCH_EMBEDDED_BROKER_MAX_RECORDS`` records, `up` stops ingest (nothing new is
accepted: the acquirer's client sees connection refused for a few seconds and sends again), waits
until the matcher has applied every record (a last clock pulse written in ingest's stead lets it
apply the final stretch) and published its outbox and the alerts service has consumed every
finding, then restarts the broker as the watchdog does after a crash — except
that nothing is lost: the dead letters are written back in their order, so their ids
(``<partition>:<offset>``) and replay markers stay valid. If the services do not drain within
``DRAIN_TIMEOUT_S`` (a backlog), ingest is released and it is tried again later.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from sqlalchemy import select, text

from settlewatch.common.db import create_engine
from settlewatch.common.faults import is_infrastructure
from settlewatch.common.kafka import Topics, read_topic
from settlewatch.common.publisher import Publisher
from settlewatch.ingest.pulses import PulseWriter
from settlewatch.schema import matcher as tables

__all__ = ["CHECK_EVERY_S", "DRAIN_TIMEOUT_S", "Rotation"]

CHECK_EVERY_S = 5.0
DRAIN_TIMEOUT_S = 30.0
RETRY_AFTER_S = 300.0  # after a failed drain: ingest must not be starved by attempts
_PULSE = b'{"v":1,"kind":"pulse"'  # how ingest encodes a clock pulse (common.events)


@dataclass(frozen=True)
class Rotation:
    bootstrap: str
    database_url: str
    topics: Topics
    max_records: int

    async def full(self, first_check_in: float = CHECK_EVERY_S) -> None:
        """Return once the broker's topics hold more than ``max_records`` records."""
        await asyncio.sleep(first_check_in - CHECK_EVERY_S)
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            try:
                ends = await self._ends()
            except Exception as exc:
                if not is_infrastructure(exc):
                    raise
                continue  # the broker is down: the watchdog restarts it
            if sum(ends.values()) > self.max_records:  # nothing is ever deleted: offsets = records
                return

    async def drained(self, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Whether, within ``timeout``, every record has been consumed (ingest must be held)."""
        try:
            await self._last_pulse()
        except Exception as exc:
            if not is_infrastructure(exc):
                raise
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await self._consumed_all():
                    return True
            except Exception as exc:
                if not is_infrastructure(exc):
                    raise
                return False  # a part is down: the watchdogs restart it first
            await asyncio.sleep(0.5)
        return False

    async def _last_pulse(self) -> None:
        """The pulse ingest, held, would have written next: the matcher applies a stretch of the
        log when a pulse follows it, so without this the last records before the hold would
        wait for good. It says what a pulse says — every record acknowledged before it
        precedes it — which holds: ingest is stopped."""
        publisher = Publisher(self.bootstrap, enable_idempotence=False, timeout=10.0)
        try:
            writer = PulseWriter(
                publisher,
                (self.topics.transactions, self.topics.settlements),
                source="settlewatch-up",
                clock=lambda: datetime.now(UTC),
            )
            await writer.pulse()
        finally:
            await publisher.close()

    async def keep(self) -> list[ConsumerRecord[bytes, bytes]]:
        """The dead letters, to be written back once the broker is empty."""
        return await read_topic(self.bootstrap, self.topics.dead_letter)

    async def restore(self, kept: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Write the kept dead letters back, each to its partition, in order and with its
        timestamp: on an empty topic they get the offsets they had."""
        by_partition: defaultdict[int, list[ConsumerRecord[bytes, bytes]]] = defaultdict(list)
        for record in kept:
            by_partition[record.partition].append(record)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            for partition, records in by_partition.items():
                for record in sorted(records, key=lambda r: r.offset):
                    await producer.send_and_wait(
                        self.topics.dead_letter,
                        record.value,
                        key=record.key,
                        partition=partition,
                        timestamp_ms=record.timestamp,
                        headers=list(record.headers),
                    )
        finally:
            await producer.stop()

    async def _ends(self) -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()
            partitions = [
                TopicPartition(topic, p)
                for topic in self.topics.all()
                for p in consumer.partitions_for_topic(topic) or ()
            ]
            return dict(await consumer.end_offsets(partitions))
        finally:
            await consumer.stop()

    async def _consumed_all(self) -> bool:
        ends = await self._ends()
        matcher_offsets, unpublished = await self._matcher_progress()
        inputs = (self.topics.transactions, self.topics.settlements)
        behind = {
            tp: matcher_offsets.get((tp.topic, tp.partition), 0)
            for tp, end in ends.items()
            if tp.topic in inputs and matcher_offsets.get((tp.topic, tp.partition), 0) < end
        }
        if behind and not await self._only_pulses(behind, ends):
            return False
        if unpublished:
            return False
        findings = [tp for tp in ends if tp.topic == self.topics.findings]
        alerts = await self._alerts_progress(findings)
        return all(alerts[tp] >= ends[tp] for tp in findings)

    async def _only_pulses(
        self, since: dict[TopicPartition, int], ends: dict[TopicPartition, int]
    ) -> bool:
        """Whether every record the matcher has not applied is a clock pulse: it applies a
        stretch of the log when the pulse after it arrives, so the last pulses of a partition
        wait for the next one (which ingest, held, does not write)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(list(since))
            for tp, offset in since.items():
                consumer.seek(tp, offset)
            remaining = set(since)
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=1000)
                for tp, records in batch.items():
                    if not all((r.value or b"").startswith(_PULSE) for r in records):
                        return False
                    if records and records[-1].offset >= ends[tp] - 1:
                        remaining.discard(tp)
            return True
        finally:
            await consumer.stop()

    async def _matcher_progress(self) -> tuple[dict[tuple[str, int], int], int]:
        """The matcher's next offsets (in PostgreSQL) and how many findings await publishing."""
        engine = create_engine(self.database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(select(tables.offsets))
                offsets = {(r.topic, r.partition): r.next_offset for r in rows}
                unpublished = await conn.scalar(
                    text("SELECT count(*) FROM matcher_read_unpublished")
                )
        finally:
            await engine.dispose()
        return offsets, int(unpublished or 0)

    async def _alerts_progress(self, findings: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The alerts service's committed offsets (kept in the broker, by its consumer group;
        asked through a consumer of the group that joins nothing: Tansu cannot answer the admin
        client's OffsetFetch)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=f"{self.topics.prefix}.alerts",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            return {tp: await consumer.committed(tp) or 0 for tp in findings}
        finally:
            await consumer.stop()

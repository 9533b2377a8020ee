"""The Kafka loop around the matcher core (SPEC §5).

Each partition number p of the transactions and settlements topics (co-partitioned by
merchant; the range assignor gives both to one instance) is one state. Records are queued per
topic; a clock tick to time C applies, in each topic, every record before its first pulse ≥ C,
then lets the core decide. C is the smaller of the two topics' next pulses, so no settlement
accepted before C can still be on its way when C passes, and the decisions depend only on the
log, never on how it was cut into batches: a replay decides exactly what the live run decided.

A batch ends in one database transaction (state, findings outbox, offsets); then the findings
are published, keyed by merchant, and marked published. On assignment the state and the offsets
come from the database; on revocation the batch in hand is finished first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from settlewatch.common.events import Record, decode_event
from settlewatch.common.kafka import Topics
from settlewatch.common.publisher import Publisher
from settlewatch.matcher.core.matcher import Matcher, UnknownMerchant
from settlewatch.matcher.core.model import Finding, PartitionState
from settlewatch.matcher.core.stall import StallWatch
from settlewatch.matcher.metrics import (
    BATCH_SECONDS,
    CALENDAR_FALLBACKS,
    CONSUMER_LAG,
    FINDINGS,
    SETTLEMENT_DELAY,
)
from settlewatch.matcher.store import MatcherStore, Owned, StoredFinding

__all__ = ["MatcherLoop", "PartitionWork"]

_log = logging.getLogger(__name__)
MAX_RECORDS = 5000


@dataclass
class _Stream:
    queue: deque[tuple[int, Record | None]] = field(default_factory=deque)  # None: dead-lettered
    pulses: int = 0  # pulses in the queue
    applied: int | None = None  # next offset after the last applied record


@dataclass
class PartitionWork:
    """One owned partition: its core, and per topic the records not yet applied."""

    owned: Owned
    streams: dict[str, _Stream]

    @property
    def matcher(self) -> Matcher:
        return Matcher(self.owned.state)

    def add(self, topic: str, offset: int, record: Record | None) -> None:
        stream = self.streams[topic]
        stream.queue.append((offset, record))
        if record is not None and record["kind"] == "pulse":
            stream.pulses += 1

    def advance(self, dead_letter: list[tuple[str, int, str]]) -> list[Finding]:
        """Apply and decide as far as the pulses of every topic allow."""
        matcher = self.matcher
        findings: list[Finding] = []
        while all(stream.pulses for stream in self.streams.values()):
            clock = min(_first_pulse(stream) for stream in self.streams.values())
            for topic, stream in self.streams.items():
                while stream.queue:
                    offset, record = stream.queue[0]
                    if record is not None and record["kind"] == "pulse":
                        if record["body"].at <= clock:
                            stream.queue.popleft()
                            stream.pulses -= 1
                            stream.applied = offset + 1
                        break
                    stream.queue.popleft()
                    stream.applied = offset + 1
                    if record is not None:
                        try:
                            _apply(matcher, record)
                        except UnknownMerchant as exc:
                            dead_letter.append((topic, offset, f"unknown merchant {exc}"))
            findings += matcher.tick(clock)
        return findings


def _first_pulse(stream: _Stream) -> datetime:
    for _, record in stream.queue:
        if record is not None and record["kind"] == "pulse":
            return record["body"].at
    raise AssertionError("called only when the stream holds a pulse")


def _apply(matcher: Matcher, record: Record) -> None:
    if record["kind"] == "transaction":
        matcher.apply_transaction(record["body"])
    elif record["kind"] == "settlement":
        matcher.apply_settlement(record["body"])
    elif record["kind"] == "merchant":
        matcher.apply_merchant(record["body"])
    elif record["kind"] == "maintenance":
        matcher.apply_window(record["body"])


class MatcherLoop(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topics: Topics,
        store: MatcherStore,
        publisher: Publisher,
        session_timeout_ms: int = 10_000,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._topics = topics
        self._store = store
        self._publisher = publisher
        self._lock = asyncio.Lock()
        self._wall = wall
        self._stall = StallWatch(topics.prefix)
        self.works: dict[int, PartitionWork] = {}
        self._bootstrap_servers = bootstrap_servers
        self._session_timeout_ms = session_timeout_ms
        self._consumer = self._new_consumer()

    def _new_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            group_id=f"{self._topics.prefix}.matcher",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(100, self._session_timeout_ms // 5),
            max_poll_records=MAX_RECORDS,
        )

    def states(self) -> dict[int, PartitionState]:
        return {partition: work.owned.state for partition, work in self.works.items()}

    @property
    def inputs(self) -> tuple[str, str]:
        return (self._topics.transactions, self._topics.settlements)

    async def run(self) -> None:
        """Consume until cancelled; waits for the broker if it is not up yet."""
        await self._start()
        try:
            self._consumer.subscribe(list(self.inputs), listener=self)
            await self._publish_leftovers()
            async with asyncio.TaskGroup() as group:  # either failing stops both
                group.create_task(self._consume(), name="matcher-consume")
                group.create_task(self._watch_clock(), name="matcher-stall-watch")
        finally:
            await self._consumer.stop()

    async def _start(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._consumer.start()
                return
            except KafkaError as exc:
                await self._consumer.stop()
                self._consumer = self._new_consumer()
                _log.warning(
                    "broker unavailable; retrying", extra={"error": str(exc), "in_s": delay}
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _consume(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=500, max_records=MAX_RECORDS)
            if batch:
                async with self._lock:
                    with BATCH_SECONDS.time():
                        await self._process(batch)

    async def _watch_clock(self, every: float = 5.0) -> None:
        """pipeline.stalled when the clock of the owned partitions stops (ingest down, pulses
        lost), resolved when it moves again: one page for on-call, not one per payment."""
        while True:
            await asyncio.sleep(every)
            async with self._lock:
                if not self.works:
                    continue
                clocks = [w.owned.state.clock for w in self.works.values()]
                # A partition that never saw a pulse holds the whole clock back.
                clock = min(c for c in clocks if c is not None) if all(clocks) else None
                finding = self._stall.observe(clock, self._wall())
                if finding is not None:
                    FINDINGS.labels(finding.type, finding.state).inc()
                    await self._publish(await self._store.save([], [finding], {}))

    async def _process(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        dead_letter: list[tuple[str, int, str]] = []
        touched: set[int] = set()
        for tp, records in batch.items():
            work = self.works.get(tp.partition)
            if work is None:
                continue  # revoked meanwhile
            touched.add(tp.partition)
            for record in records:
                try:
                    work.add(tp.topic, record.offset, decode_event(record.value or b""))
                except ValidationError as exc:
                    dead_letter.append((tp.topic, record.offset, str(exc)[:2000]))
                    work.add(tp.topic, record.offset, None)
        findings: list[Finding] = []
        for partition in sorted(touched):
            findings += self.works[partition].advance(dead_letter)
        await self._dead_letter(batch, dead_letter)
        offsets = {
            (topic, partition): stream.applied
            for partition in touched
            for topic, stream in self.works[partition].streams.items()
            if stream.applied is not None
        }
        new = await self._store.save(
            [self.works[p].owned for p in sorted(touched)], findings, offsets
        )
        await self._publish(new)
        for finding in findings:
            FINDINGS.labels(finding.type, finding.state).inc()
        for partition in touched:
            self._observe(self.works[partition].owned.state)
        for tp, records in batch.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None and records:
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(
                    highwater - records[-1].offset - 1
                )

    @staticmethod
    def _observe(state: PartitionState) -> None:
        """Drain what the core noted for metrics."""
        for bank_code, seconds in state.settlement_delays:
            SETTLEMENT_DELAY.labels(bank_code).observe(seconds)
        state.settlement_delays.clear()
        if state.calendar_fallbacks:
            CALENDAR_FALLBACKS.inc(state.calendar_fallbacks)
            _log.warning(
                "deadlines computed with weekdays: the PRC calendar does not know the year",
                extra={"deadlines": state.calendar_fallbacks},
            )
            state.calendar_fallbacks = 0

    async def _dead_letter(
        self,
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        dead: Sequence[tuple[str, int, str]],
    ) -> None:
        """Poison records go to the dead-letter topic with the reason, before their offsets are
        saved as consumed: never silently dropped."""
        if not dead:
            return
        values = {(tp.topic, r.offset): r.value for tp, rs in batch.items() for r in rs}
        records = [
            (
                topic.encode(),
                orjson.dumps(
                    {
                        "topic": topic,
                        "offset": offset,
                        "reason": reason,
                        "value": (values.get((topic, offset)) or b"").decode(errors="replace"),
                    }
                ),
            )
            for topic, offset, reason in dead
        ]
        _log.warning("records dead-lettered", extra={"count": len(records)})
        await self._publisher.publish(self._topics.dead_letter, records)

    async def _publish(self, findings: Sequence[StoredFinding]) -> None:
        if not findings:
            return
        await self._publisher.publish(
            self._topics.findings,
            [((f.merchant_id or "").encode(), orjson.dumps(f.body)) for f in findings],
        )
        await self._store.mark_published([f.key for f in findings])

    async def _publish_leftovers(self) -> None:
        """Findings saved by a run that stopped before publishing them (at least once)."""
        while leftovers := await self._store.unpublished():
            await self._publish(leftovers)

    # --- rebalance ------------------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:  # the batch in hand is finished and saved first
            for partition in {tp.partition for tp in revoked}:
                self.works.pop(partition, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self._lock:
            partitions = sorted({tp.partition for tp in assigned})
            for partition in partitions:
                got = {tp.topic for tp in assigned if tp.partition == partition}
                if got != set(self.inputs):
                    _log.error(
                        "partition assigned without its twin", extra={"partition": partition}
                    )
                owned = await self._store.claim(partition)
                self.works[partition] = PartitionWork(owned, {t: _Stream() for t in self.inputs})
            offsets = await self._store.offsets(self.inputs, partitions)
            for tp in assigned:
                offset = offsets.get((tp.topic, tp.partition))
                if offset is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, offset)
            _log.info("partitions assigned", extra={"partitions": partitions})

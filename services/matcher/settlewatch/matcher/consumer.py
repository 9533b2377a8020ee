"""The Kafka loop around the matcher engine (SPEC §5).

The range assignor gives partition p of both input topics to one instance; the engine
(engine.py) applies them and decides. This loop fetches and decodes records (a record that does
not decode is dead-lettered when its turn comes), pauses a partition whose records wait for the
other topic's pulse, publishes findings and dead letters to their topics, and on assignment
loads the state and seeks to the offsets saved with it; on revocation the batch in hand is
finished first. Where the stored payments lie (the largest part of the state) is read while the
group assigns the first partitions: a process restarted at a million payments would otherwise
wait for the assignment (≈ a second, 3 s on Apache Kafka's default initial rebalance delay),
then read for a second more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from settlewatch.common.deadletter import DeadLetter, dead_letter
from settlewatch.common.kafka import Topics, started_consumer
from settlewatch.common.publisher import Publisher
from settlewatch.matcher.core.model import PartitionState
from settlewatch.matcher.core.stall import StallWatch
from settlewatch.matcher.engine import DeadLetters, Engine, PartitionWork, decode
from settlewatch.matcher.metrics import BATCH_SECONDS, CONSUMER_LAG, FINDINGS
from settlewatch.matcher.store import (
    MatcherStore,
    OpenTotals,
    StoredFinding,
    StoredIds,
    TopOverdue,
)

__all__ = ["KafkaSink", "MatcherLoop"]

_log = logging.getLogger(__name__)
MAX_RECORDS = 5000
MAX_QUEUED = 20_000  # records of one topic-partition waiting for a pulse before it is paused


class KafkaSink:
    """Findings to the findings topic keyed by merchant; dead letters, with the reason, to the
    dead-letter topic."""

    def __init__(self, publisher: Publisher, topics: Topics, wall: Callable[[], datetime]) -> None:
        self._publisher = publisher
        self._topics = topics
        self._wall = wall

    async def findings(self, findings: Sequence[StoredFinding]) -> None:
        if findings:
            await self._publisher.publish(
                self._topics.findings,
                [((f.merchant_id or "").encode(), f.value) for f in findings],
            )

    async def dead_letters(self, rejected: Sequence[DeadLetter]) -> None:
        records = [dead_letter(poison, service="matcher", now=self._wall()) for poison in rejected]
        for poison in rejected:
            _log.error(
                "record dead-lettered",
                extra={
                    "topic": poison.topic,
                    "partition": poison.partition,
                    "offset": poison.offset,
                    "reason": poison.reason[:500],
                },
                exc_info=poison.error,
            )
        await self._publisher.publish(self._topics.dead_letter, records)


class MatcherLoop(ConsumerRebalanceListener):  # type: ignore[misc]
    _consumer: AIOKafkaConsumer  # a new one for each run()

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topics: Topics,
        store: MatcherStore,
        publisher: Publisher,
        session_timeout_ms: int = 10_000,
        timer_interval: timedelta = timedelta(seconds=1),
        retention: timedelta = timedelta(days=35),
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._topics = topics
        self._store = store
        self._engine = Engine(store, KafkaSink(publisher, topics, wall), timer_interval)
        self._lock = asyncio.Lock()
        self._wall = wall
        self._stall = StallWatch(topics.prefix)
        self._retention = retention
        self._swept_before: date | None = None
        self._prune_before: datetime | None = None  # findings sent before it leave the outbox
        self.open_totals: OpenTotals = {}
        self.top_overdue: TopOverdue = []
        self.works: dict[int, PartitionWork] = {}
        self._bootstrap_servers = bootstrap_servers
        self._session_timeout_ms = session_timeout_ms
        self._ahead: tuple[StoredIds, asyncio.Task[None]] | None = None

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
        """Consume until cancelled; waits for the broker if it is not up yet. After a failure
        it can run again: it starts afresh from what the store saved, as a new process would."""
        self.works = {}
        ahead = StoredIds()
        reading = asyncio.create_task(self._store.read_ahead(ahead), name="matcher-read-ahead")
        self._ahead = (ahead, reading)
        try:
            self._consumer = await started_consumer(self._new_consumer(), self._new_consumer)
            try:
                self._consumer.subscribe(list(self.inputs), listener=self)
                await self._publish_leftovers()
                async with asyncio.TaskGroup() as group:  # either failing stops both
                    group.create_task(self._consume(), name="matcher-consume")
                    group.create_task(self._watch_clock(), name="matcher-stall-watch")
            finally:
                try:
                    await self._engine.flush()  # the last batch's write, before leaving the group
                finally:
                    await self._consumer.stop()
        finally:
            reading.cancel()  # if nothing was assigned

    async def _consume(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=500, max_records=MAX_RECORDS)
            if batch:
                async with self._lock:
                    with BATCH_SECONDS.time():
                        await self._process(batch)

    async def _watch_clock(self, every: float = 5.0) -> None:
        """pipeline.stalled when the clock of the owned partitions stops (ingest down, pulses
        lost), resolved when it moves again: one page for on-call, not one per payment. Also
        refreshes the open-payment gauges and, once a day, drops closed windows and deletes the
        findings sent before the retention from the outbox."""
        while True:
            await asyncio.sleep(every)
            async with self._lock:
                if not self.works:
                    self.open_totals, self.top_overdue = {}, []  # nothing owned, nothing to say
                    continue
                clocks = [w.owned.state.clock for w in self.works.values()]
                # A partition that never saw a pulse holds the whole clock back.
                clock = min(c for c in clocks if c is not None) if all(clocks) else None
                finding = self._stall.observe(clock, self._wall())
                if finding is not None:
                    FINDINGS.labels(finding.type, finding.state).inc()
                    await self._engine.publish(await self._store.save([], {None: [finding]}, {}))
                if clock is not None:
                    await self._sweep((clock - self._retention).date())
                partitions = sorted(self.works)
            # Reads and deletes of what is saved: no need to hold up the batches meanwhile.
            if self._prune_before is not None and await self._store.prune_outbox(
                self._prune_before, partitions
            ):
                self._prune_before = None  # else more next time
            # Both at once: a scrape between the two reads would see one new and one old.
            totals = await self._store.open_totals(partitions)
            top = await self._store.top_overdue(partitions)
            self.open_totals, self.top_overdue = totals, top

    async def _sweep(self, before: date) -> None:
        """Drop the day tables whose window closed (once per day of matcher clock)."""
        if self._swept_before == before:
            return
        owned = [work.owned for work in self.works.values()]
        dropped = await self._store.drop_closed_windows(before, owned)
        if dropped:
            _log.info("closed windows dropped", extra={"days": [d.isoformat() for d in dropped]})
        self._swept_before = before
        self._prune_before = datetime.combine(before, time.min, UTC)

    async def _process(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        dead_letter: DeadLetters = []
        touched: set[int] = set()
        for tp, records in batch.items():
            work = self.works.get(tp.partition)
            if work is None:
                continue  # revoked meanwhile
            touched.add(tp.partition)
            values = [record.value or b"" for record in records]
            keys = [record.key for record in records]
            for record, decoded in zip(records, decode(values, keys), strict=True):
                work.add(tp.topic, record.offset, decoded)
        works = [self.works[p] for p in sorted(touched)]
        # Partitions are independent: while one waits for the database, another computes.
        dead_letters: dict[int, DeadLetters] = {work.owned.partition: [] for work in works}
        async with asyncio.TaskGroup() as group:
            for work in works:
                group.create_task(self._engine.advance(work, dead_letters[work.owned.partition]))
        for rejected in dead_letters.values():
            dead_letter += rejected
        await self._engine.dead_letter(dead_letter)
        await self._engine.save_behind(works)  # written while the next batch is applied
        self._backpressure()
        for tp, records in batch.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None and records:
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(
                    highwater - records[-1].offset - 1
                )

    def _backpressure(self) -> None:
        """Pause a partition whose records wait for the other topic's pulse, so that the fetcher
        brings that pulse instead of more of the same (a backlog on one topic would otherwise
        fill memory and starve the other); resume it once its queue has drained."""
        paused = self._consumer.paused()
        for partition, work in self.works.items():
            for topic, stream in work.streams.items():
                tp = TopicPartition(topic, partition)
                if len(stream.queue) >= MAX_QUEUED and tp not in paused:
                    self._consumer.pause(tp)
                elif len(stream.queue) < MAX_QUEUED // 2 and tp in paused:
                    self._consumer.resume(tp)

    async def _publish_leftovers(self) -> None:
        """Findings saved by a run that stopped before publishing them (at least once)."""
        while leftovers := await self._store.unpublished():
            await self._engine.publish(leftovers)

    # --- rebalance ------------------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:  # the batch in hand is finished and saved first
            await self._engine.flush()
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
            ahead = await self._read_ahead(partitions)
            for work in await self._engine.claim(partitions, self.inputs, ahead):
                self.works[work.owned.partition] = work
            offsets = await self._store.offsets(self.inputs, partitions)
            for tp in assigned:
                offset = offsets.get((tp.topic, tp.partition))
                if offset is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, offset)
            _log.info("partitions assigned", extra={"partitions": partitions})

    async def _read_ahead(self, partitions: list[int]) -> StoredIds | None:
        """What the run read ahead, for its first assignment only (later ones read afresh);
        told what was assigned, it reads no more of the others."""
        if self._ahead is None:
            return None
        (ahead, reading), self._ahead = self._ahead, None
        ahead.wanted = set(partitions)
        try:
            await reading
        except Exception:  # the claim reads it all (and reports the database's error itself)
            _log.warning("reading the stored payments ahead failed", exc_info=True)
            return None
        return ahead

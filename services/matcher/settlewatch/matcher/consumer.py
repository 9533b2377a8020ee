"""The Kafka loop around the matcher core (SPEC §5).

Each partition number p of the transactions and settlements topics (co-partitioned by
merchant; the range assignor gives both to one instance) is one state. Records are queued per
topic; a clock tick to time C applies, in each topic, every record before its first pulse ≥ C,
then lets the core decide. C is the smaller of the two topics' next pulses, so no settlement
accepted before C can still be on its way when C passes, and the decisions depend only on the
log, never on how it was cut into batches: a replay decides exactly what the live run decided.

Payments are kept in the database; in memory is a working set: before records are applied, the
payments they refer to are read; before a tick, the payments due (the deadline index, in
bounded batches, earliest first) and those the tick judges. Ticks happen when the clock enters a
new multiple of SETTLEWATCH_TIMER_INTERVAL, again a function of the log.

A batch ends in one database transaction (state, findings outbox, offsets); then the findings
are published, keyed by merchant, and marked published. On assignment the state and the offsets
come from the database; on revocation the batch in hand is finished first.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TypeGuard

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from pydantic import ValidationError

from settlewatch.common.deadletter import Rejected, dead_letter
from settlewatch.common.events import (
    PulseRecord,
    Record,
    decode_events,
    encode_record,
    record_key,
)
from settlewatch.common.kafka import Topics, started_consumer
from settlewatch.common.publisher import Publisher
from settlewatch.matcher.core.deadlines import Window
from settlewatch.matcher.core.matcher import Matcher, UnknownMerchant, referenced
from settlewatch.matcher.core.model import Finding, PartitionState
from settlewatch.matcher.core.stall import StallWatch
from settlewatch.matcher.metrics import (
    BATCH_SECONDS,
    CALENDAR_FALLBACKS,
    CONSUMER_LAG,
    FINDINGS,
    SETTLEMENT_DELAY,
)
from settlewatch.matcher.store import (
    Fired,
    MatcherStore,
    OpenTotals,
    Owned,
    StoredFinding,
    TopOverdue,
)

__all__ = ["MatcherLoop", "PartitionWork", "Poison", "ticks"]

_log = logging.getLogger(__name__)
MAX_RECORDS = 5000
TIMER_BATCH = 10_000  # stored payments fired per round in the database, of each kind
WORKING_SET = 2_000  # payments kept in memory per partition between batches
MAX_QUEUED = 20_000  # records of one topic-partition waiting for a pulse before it is paused
DeadLetters = list[Rejected]


@dataclass(frozen=True)
class Poison:
    """A record that cannot be decoded: dead-lettered when its turn comes, so that it is sent
    once with the batch that saves its offset, not again each time it is fetched anew."""

    reason: str
    key: bytes | None
    value: bytes


@dataclass
class _Stream:
    queue: deque[tuple[int, Record | Poison]] = field(default_factory=deque)
    fetched: int | None = None  # next offset after the last record queued
    pulses: int = 0  # pulses in the queue
    applied: int | None = None  # next offset after the last applied record


@dataclass
class PartitionWork:
    """One owned partition: its core, per topic the records not yet applied, and the findings
    decided since the last save."""

    owned: Owned
    streams: dict[str, _Stream]
    findings: list[Finding] = field(default_factory=list)

    @property
    def matcher(self) -> Matcher:
        return Matcher(self.owned.state)

    def add(self, topic: str, offset: int, record: Record | Poison) -> None:
        stream = self.streams[topic]
        if stream.fetched is not None and offset < stream.fetched:
            return  # fetched again (a seek on assignment can deliver the start twice)
        stream.fetched = offset + 1
        stream.queue.append((offset, record))
        if _is_pulse(record):
            stream.pulses += 1

    def next_segment(self) -> tuple[datetime, list[tuple[str, int, Record | Poison]]] | None:
        """The records to apply before the next clock tick, and its time; None until every
        topic holds a pulse. C is the smaller of the topics' next pulses, so no event accepted
        before C can still be on its way when C passes."""
        if not all(stream.pulses for stream in self.streams.values()):
            return None
        clock = min(_first_pulse(stream) for stream in self.streams.values())
        segment: list[tuple[str, int, Record | Poison]] = []
        for topic, stream in self.streams.items():
            while stream.queue:
                offset, record = stream.queue[0]
                if _is_pulse(record):
                    if record["body"].at <= clock:
                        stream.queue.popleft()
                        stream.pulses -= 1
                        stream.applied = offset + 1
                    break
                stream.queue.popleft()
                stream.applied = offset + 1
                segment.append((topic, offset, record))
        return clock, segment

    def offsets(self) -> dict[tuple[str, int], int]:
        partition = self.owned.partition
        return {
            (topic, partition): stream.applied
            for topic, stream in self.streams.items()
            if stream.applied is not None
        }


def _invalid(error: ValidationError) -> str:
    """Why a record is not a valid record, one ``field: problem`` per error."""
    problems = [
        f"{'.'.join(str(part) for part in e['loc']) or 'record'}: {e['msg']}"
        for e in error.errors(include_url=False, include_input=False)
    ]
    return "invalid record: " + "; ".join(problems)[:2000]


def _is_pulse(record: Record | Poison) -> TypeGuard[PulseRecord]:
    return not isinstance(record, Poison) and record["kind"] == "pulse"


def _first_pulse(stream: _Stream) -> datetime:
    for _, record in stream.queue:
        if _is_pulse(record):
            return record["body"].at
    raise AssertionError("called only when the stream holds a pulse")


def _apply(matcher: Matcher, record: Record) -> None:
    if record["kind"] == "transaction":
        matcher.apply_transaction(record["body"])
    elif record["kind"] == "settlement":
        matcher.apply_settlement(record["body"])
    elif record["kind"] == "merchant":
        matcher.apply_merchant(record["body"])
    elif record["kind"] == "terminal":
        matcher.apply_terminal(record["body"])
    elif record["kind"] == "maintenance":
        matcher.apply_window(record["body"])
    elif record["kind"] == "calendar":
        matcher.apply_calendar(record["body"])


def ticks(previous: datetime | None, clock: datetime, interval: timedelta) -> bool:
    """Whether the clock moving from `previous` to `clock` checks deadlines: when it enters a
    new multiple of `interval` (a function of the log, so a replay ticks where the live run did)."""
    if previous is None:
        return True
    step = interval.total_seconds()
    return int(clock.timestamp() // step) > int(previous.timestamp() // step)


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
        self._publisher = publisher
        self._lock = asyncio.Lock()
        self._firing = asyncio.Semaphore(os.cpu_count() or 1)
        self._wall = wall
        self._stall = StallWatch(topics.prefix)
        self._timer_interval = timer_interval
        self._retention = retention
        self._swept_before: date | None = None
        self.open_totals: OpenTotals = {}
        self.top_overdue: TopOverdue = []
        self.works: dict[int, PartitionWork] = {}
        self._bootstrap_servers = bootstrap_servers
        self._session_timeout_ms = session_timeout_ms

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
        self._consumer = await started_consumer(self._new_consumer(), self._new_consumer)
        try:
            self._consumer.subscribe(list(self.inputs), listener=self)
            await self._publish_leftovers()
            async with asyncio.TaskGroup() as group:  # either failing stops both
                group.create_task(self._consume(), name="matcher-consume")
                group.create_task(self._watch_clock(), name="matcher-stall-watch")
        finally:
            await self._consumer.stop()

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
        refreshes the open-payment gauges and drops closed windows once a day."""
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
                    await self._publish(await self._store.save([], [finding], {}))
                if clock is not None:
                    await self._sweep((clock - self._retention).date())
                partitions = sorted(self.works)
            # A read of what is saved: no need to hold up the batches meanwhile.
            self.open_totals = await self._store.open_totals(partitions)
            self.top_overdue = await self._store.top_overdue(partitions)

    async def _sweep(self, before: date) -> None:
        """Drop the day tables whose window closed (once per day of matcher clock)."""
        if self._swept_before == before:
            return
        owned = [work.owned for work in self.works.values()]
        dropped = await self._store.drop_closed_windows(before, owned)
        if dropped:
            _log.info("closed windows dropped", extra={"days": [d.isoformat() for d in dropped]})
        self._swept_before = before

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
            for record, value, decoded in zip(records, values, decode_events(values), strict=True):
                if isinstance(decoded, ValidationError):
                    poison = Poison(_invalid(decoded), record.key, value)
                    work.add(tp.topic, record.offset, poison)
                else:
                    work.add(tp.topic, record.offset, decoded)
        works = [self.works[p] for p in sorted(touched)]
        # Partitions are independent: while one waits for the database, another computes.
        dead_letters: dict[int, DeadLetters] = {work.owned.partition: [] for work in works}
        async with asyncio.TaskGroup() as group:
            for work in works:
                group.create_task(self._advance(work, dead_letters[work.owned.partition]))
        for rejected in dead_letters.values():
            dead_letter += rejected
        await self._dead_letter(dead_letter)
        await self._save(works)
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

    async def _advance(self, work: PartitionWork, dead_letter: DeadLetters) -> None:
        """Apply and decide as far as the pulses of every topic allow."""
        matcher = work.matcher
        state = work.owned.state
        while (step := work.next_segment()) is not None:
            clock, segment = step
            records = [record for _, _, record in segment if not isinstance(record, Poison)]
            await self._load_for(work, records)
            partition = work.owned.partition
            for topic, offset, record in segment:
                if isinstance(record, Poison):
                    rejected = Rejected(
                        topic, partition, offset, record.key, record.value, record.reason
                    )
                    dead_letter.append(rejected)
                    continue
                try:
                    _apply(matcher, record)
                except UnknownMerchant as exc:
                    reason = f"unknown merchant {exc}"
                    key, value = record_key(record), encode_record(record)
                    dead_letter.append(Rejected(topic, partition, offset, key, value, reason))
                except Exception as exc:
                    # One record must not stop the partition. The core changes nothing before it
                    # raises, so the partition goes on as if the record had not been there.
                    reason = f"the matcher cannot apply it: {type(exc).__name__}: {exc}"
                    key, value = record_key(record), encode_record(record)
                    dead_letter.append(Rejected(topic, partition, offset, key, value, reason, exc))
            if ticks(state.clock, clock, self._timer_interval):
                await self._tick(work, clock, dead_letter)

    async def _load_for(self, work: PartitionWork, records: Sequence[Record]) -> None:
        """Bring into the working set every stored payment these records may touch."""
        owned = work.owned
        wanted = [t for record in records for t in referenced(record["kind"], record["body"])]
        loaded = await self._store.fetch(owned, wanted)
        for record in records:
            if record["kind"] == "maintenance":
                window = record["body"]
                stored = owned.state.windows.get(window.bank_code, {}).get(window.id)
                if stored != Window(window.starts_at, window.ends_at):
                    loaded += await self._store.pending_of_bank(
                        owned, window.bank_code, window.starts_at
                    )
            elif record["kind"] == "calendar":
                year = record["body"]
                calendar = owned.state.calendars.get(year.calendar)
                applied = calendar.loaded.get(year.year) if calendar else None
                if applied is None or applied.version < year.version:
                    loaded += await self._store.owed_across_year(owned, year.year)
        work.matcher.load(loaded)

    async def _tick(self, work: PartitionWork, clock: datetime, dead_letter: DeadLetters) -> None:
        """Decide at `clock`: the core decides its working set, the database the other stored
        payments due (timer_sql), after the working set is saved, in bounded rounds, each
        published while the next is decided; the tick is saved as unfinished until the last."""
        matcher = work.matcher
        matcher.load(await self._store.fetch(work.owned, matcher.needed_at_tick()))
        work.findings += matcher.tick(clock)
        if not await self._store.has_due(work.owned, clock):
            return
        work.owned.state.unfinished_tick = clock
        await self._dead_letter(dead_letter)
        await self._save([work])
        # The database decides the next round while the last one is published.
        publishing: asyncio.Task[None] | None = None
        try:
            while True:
                async with self._firing:  # one statement per core at a time
                    fired = await self._store.fire_due(work.owned, clock, TIMER_BATCH)
                if publishing is not None:
                    await publishing
                publishing = asyncio.create_task(self._publish_round(fired))
                if not fired.full:
                    break
        finally:
            if publishing is not None:
                await publishing

    async def _publish_round(self, fired: Fired) -> None:
        await self._send(fired.findings)
        await self._store.mark_round_published(fired)
        for kind, count in Counter(f.key.split(":", 1)[0] for f in fired.findings).items():
            FINDINGS.labels(kind, "open").inc(count)

    async def _save(self, works: Sequence[PartitionWork]) -> None:
        """Save state, findings and offsets of `works` in one transaction, then publish the new
        findings and shrink the working sets."""
        findings = [finding for work in works for finding in work.findings]
        offsets = {key: offset for work in works for key, offset in work.offsets().items()}
        new = await self._store.save([w.owned for w in works], findings, offsets)
        await self._publish(new)
        for (kind, state), count in Counter((f.type, f.state) for f in findings).items():
            FINDINGS.labels(kind, state).inc(count)
        for work in works:
            work.findings.clear()
            self._observe(work.owned.state)
            work.matcher.evict(WORKING_SET)

    @staticmethod
    def _observe(state: PartitionState) -> None:
        """Drain what the core noted for metrics."""
        for bank_code, seconds in state.settlement_delays:
            SETTLEMENT_DELAY.labels(bank_code).observe(seconds)
        state.settlement_delays.clear()
        if state.calendar_fallbacks:
            CALENDAR_FALLBACKS.inc(state.calendar_fallbacks)
            _log.warning(
                "deadlines estimated on weekdays: the calendar has no data for a year they cross",
                extra={"deadlines": state.calendar_fallbacks},
            )
            state.calendar_fallbacks = 0

    async def _dead_letter(self, dead: DeadLetters) -> None:
        """Poison records go to the dead-letter topic with the reason, before their offsets are
        saved as consumed: never silently dropped."""
        if not dead:
            return
        records = [dead_letter(poison, service="matcher", now=self._wall()) for poison in dead]
        for poison in dead:
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
        dead.clear()

    async def _publish(self, findings: Sequence[StoredFinding]) -> None:
        await self._send(findings)
        await self._store.mark_published(findings)

    async def _send(self, findings: Sequence[StoredFinding]) -> None:
        if findings:
            await self._publisher.publish(
                self._topics.findings,
                [((f.merchant_id or "").encode(), f.value) for f in findings],
            )

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
            for owned in await self._store.claim(partitions) if partitions else []:
                work = PartitionWork(owned, {t: _Stream() for t in self.inputs})
                self.works[owned.partition] = work
                if (unfinished := owned.state.unfinished_tick) is not None:
                    await self._tick(work, unfinished, [])
                    await self._save([work])
            offsets = await self._store.offsets(self.inputs, partitions)
            for tp in assigned:
                offset = offsets.get((tp.topic, tp.partition))
                if offset is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, offset)
            _log.info("partitions assigned", extra={"partitions": partitions})

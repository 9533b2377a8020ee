"""The matcher's engine: a partition's log applied to the core and its decisions saved.

Each partition number p of the transactions and settlements topics (co-partitioned by
merchant) is one state. Records are queued per topic; a clock tick to time C applies, in each
topic, every record before its first pulse ≥ C, then lets the core decide. C is the smaller of
the two topics' next pulses, so no settlement accepted before C can still be on its way when C
passes, and the decisions depend only on the log, never on how it was cut into batches: a replay
decides exactly what the live run decided.

Payments are kept in the database; in memory is a working set: before records are applied, the
payments they refer to are read; at a tick the core decides the working set and the database
the other payments due (timer_sql). Ticks happen when the clock enters a new multiple of
SETTLEWATCH_TIMER_INTERVAL, again a function of the log.

A batch ends in one database transaction (state, findings outbox, offsets); then the findings go
to the sink (the findings topic live, a list in a replay) and are marked published. The engine
knows nothing of Kafka: the live loop (consumer.py) and `settlewatch replay` feed it records.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeGuard

from pydantic import ValidationError

from settlewatch.common.deadletter import DeadLetter
from settlewatch.common.events import (
    PulseRecord,
    TopicRecord,
    decode_events,
    encode_record,
    record_key,
)
from settlewatch.matcher.core.deadlines import Window
from settlewatch.matcher.core.matcher import Matcher, UnknownMerchant, referenced
from settlewatch.matcher.core.model import Finding, PartitionState
from settlewatch.matcher.metrics import CALENDAR_FALLBACKS, FINDINGS, SETTLEMENT_DELAY
from settlewatch.matcher.store import (
    Batch,
    Fired,
    MatcherStore,
    Owned,
    StoredFinding,
    StoredIds,
)

__all__ = [
    "Collected",
    "DeadLetters",
    "Engine",
    "PartitionWork",
    "Poison",
    "Sink",
    "decode",
    "ticks",
]

_log = logging.getLogger(__name__)
TIMER_BATCH = 10_000  # stored payments fired per round in the database, of each kind
WORKING_SET = 2_000  # payments kept in memory per partition between batches
# Records applied between two turns of the event loop. Applying is CPU without an await; the
# previous batch is written meanwhile (save_behind) but each of its statements waits for a turn
# of the loop: without these turns, writing and applying took turns instead of overlapping.
YIELD_EVERY = 100
DeadLetters = list[DeadLetter]


class Sink(Protocol):
    """Where decisions go: the findings saved as new, and the records that cannot be applied."""

    async def findings(self, findings: Sequence[StoredFinding]) -> None: ...

    async def dead_letters(self, rejected: Sequence[DeadLetter]) -> None: ...


class Collected:
    """A sink that keeps what it is sent (a replay publishes nothing)."""

    def __init__(self) -> None:
        self.sent: list[StoredFinding] = []
        self.rejected: list[DeadLetter] = []

    async def findings(self, findings: Sequence[StoredFinding]) -> None:
        self.sent += findings

    async def dead_letters(self, rejected: Sequence[DeadLetter]) -> None:
        self.rejected += rejected


@dataclass(frozen=True)
class Poison:
    """A record that cannot be decoded: dead-lettered when its turn comes, so that it is sent
    once with the batch that saves its offset, not again each time it is fetched anew."""

    reason: str
    key: bytes | None
    value: bytes


@dataclass
class _Stream:
    queue: deque[tuple[int, TopicRecord | Poison]] = field(default_factory=deque)
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

    def add(self, topic: str, offset: int, record: TopicRecord | Poison) -> None:
        stream = self.streams[topic]
        if stream.fetched is not None and offset < stream.fetched:
            return  # fetched again (a seek on assignment can deliver the start twice)
        stream.fetched = offset + 1
        stream.queue.append((offset, record))
        if _is_pulse(record):
            stream.pulses += 1

    def next_segment(self) -> tuple[datetime, list[tuple[str, int, TopicRecord | Poison]]] | None:
        """The records to apply before the next clock tick, and its time; None until every
        topic holds a pulse. C is the smaller of the topics' next pulses, so no event accepted
        before C can still be on its way when C passes."""
        if not all(stream.pulses for stream in self.streams.values()):
            return None
        clock = min(_first_pulse(stream) for stream in self.streams.values())
        segment: list[tuple[str, int, TopicRecord | Poison]] = []
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


def decode(values: Sequence[bytes], keys: Sequence[bytes | None]) -> list[TopicRecord | Poison]:
    """TopicRecord values as records (validated a batch at once); one that is not a valid record
    becomes a Poison with the reason, to be dead-lettered when its turn comes."""
    return [
        Poison(_invalid(decoded), key, value) if isinstance(decoded, ValidationError) else decoded
        for key, value, decoded in zip(keys, values, decode_events(values), strict=True)
    ]


def _is_pulse(record: TopicRecord | Poison) -> TypeGuard[PulseRecord]:
    return not isinstance(record, Poison) and record["kind"] == "pulse"


def _first_pulse(stream: _Stream) -> datetime:
    for _, record in stream.queue:
        if _is_pulse(record):
            return record["body"].at
    raise AssertionError("called only when the stream holds a pulse")


def _apply(matcher: Matcher, record: TopicRecord) -> None:
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


class Engine:
    """Applies partitions' records to the core, decides at ticks and saves, with `store` as
    the state and `sink` for the findings and dead letters."""

    def __init__(
        self, store: MatcherStore, sink: Sink, timer_interval: timedelta = timedelta(seconds=1)
    ) -> None:
        self._store = store
        self._sink = sink
        self._timer_interval = timer_interval
        self._firing = asyncio.Semaphore(os.cpu_count() or 1)
        self._writing: asyncio.Task[None] | None = None  # save_behind's batch

    async def claim(
        self, partitions: Sequence[int], topics: Sequence[str], ahead: StoredIds | None = None
    ) -> list[PartitionWork]:
        """Own `partitions`: their state from the store (MatcherStore.claim), a tick left
        unfinished finished."""
        works = []
        for owned in await self._store.claim(partitions, ahead) if partitions else []:
            work = PartitionWork(owned, {t: _Stream() for t in topics})
            if (unfinished := owned.state.unfinished_tick) is not None:
                await self.tick(work, unfinished, [])
                await self.save([work])
            works.append(work)
        return works

    async def advance(self, work: PartitionWork, dead_letter: DeadLetters) -> None:
        """Apply and decide as far as the pulses of every topic allow."""
        matcher = work.matcher
        state = work.owned.state
        while (step := work.next_segment()) is not None:
            clock, segment = step
            records = [record for _, _, record in segment if not isinstance(record, Poison)]
            await self._load_for(work, records)
            partition = work.owned.partition
            for i, (topic, offset, record) in enumerate(segment):
                if i % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)  # the batch being written sends its next statement
                if isinstance(record, Poison):
                    rejected = DeadLetter(
                        topic, partition, offset, record.key, record.value, record.reason
                    )
                    dead_letter.append(rejected)
                    continue
                try:
                    _apply(matcher, record)
                except UnknownMerchant as exc:
                    reason = f"unknown merchant {exc}"
                    key, value = record_key(record), encode_record(record)
                    dead_letter.append(DeadLetter(topic, partition, offset, key, value, reason))
                except Exception as exc:
                    # One record must not stop the partition. The core changes nothing before it
                    # raises, so the partition goes on as if the record had not been there.
                    reason = f"the matcher cannot apply it: {type(exc).__name__}: {exc}"
                    key, value = record_key(record), encode_record(record)
                    dead_letter.append(
                        DeadLetter(topic, partition, offset, key, value, reason, exc)
                    )
            if ticks(state.clock, clock, self._timer_interval):
                await self.tick(work, clock, dead_letter)

    async def _load_for(self, work: PartitionWork, records: Sequence[TopicRecord]) -> None:
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

    async def tick(self, work: PartitionWork, clock: datetime, dead_letter: DeadLetters) -> None:
        """Decide at `clock`: the core decides its working set, the database the other stored
        payments due (timer_sql), after the working set is saved, in bounded rounds, each
        published while the next is decided; the tick is saved as unfinished until the last."""
        matcher = work.matcher
        matcher.load(await self._store.fetch(work.owned, matcher.needed_at_tick()))
        matcher.load(await self._store.at_times(work.owned, matcher.times_at_tick()))
        work.findings += matcher.tick(clock)
        # Nothing in memory is due now; is anything stored out of it? (Asked only once the clock
        # reaches the earliest such payment it knows of.)
        owned = work.owned
        if owned.due_floor is None or owned.due_floor <= clock:
            owned.due_floor = await self._store.next_due(owned, matcher.state.payments)
        if owned.due_floor > clock:
            return
        owned.due_floor = None  # known again after the rounds
        owned.state.unfinished_tick = clock
        await self.dead_letter(dead_letter)
        await self.save([work])
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
        await self._sink.findings(fired.findings)
        await self._store.mark_published(fired.findings)
        for kind, count in Counter(f.key.split(":", 1)[0] for f in fired.findings).items():
            FINDINGS.labels(kind, "open").inc(count)

    async def save(self, works: Sequence[PartitionWork]) -> None:
        """Save state, findings and offsets of `works` in one transaction, publish the new
        findings and shrink the working sets; return when all that is done."""
        batch = self._take(works)
        await self.flush()
        await self._write(batch)
        self._evict(works, None)

    async def save_behind(self, works: Sequence[PartitionWork]) -> None:
        """Save `works` as `save` does, but return once the batch is taken from the state: it
        is written and published by a task while the caller applies the next batch (the
        matcher's CPU no longer idles while PostgreSQL writes). One write at a time, in order:
        this waits for the previous one, and `flush` for this one."""
        batch = self._take(works)
        await self.flush()
        self._evict(works, batch)  # all is written but this batch: its payments stay
        self._writing = asyncio.create_task(self._write(batch), name="matcher-save")

    async def flush(self) -> None:
        """Wait for the write in flight: every batch taken is then saved. Its failure is raised
        (once: the consumer then starts again from the store); a caller cancelled meanwhile
        leaves it running, for the next flush."""
        writing = self._writing
        if writing is None:
            return
        try:
            await asyncio.shield(writing)
        except Exception:
            if self._writing is writing:
                self._writing = None
            raise

    def _take(self, works: Sequence[PartitionWork]) -> Batch:
        findings: dict[int | None, list[Finding]] = {
            work.owned.partition: list(work.findings) for work in works
        }
        offsets = {key: offset for work in works for key, offset in work.offsets().items()}
        batch = self._store.take([w.owned for w in works], findings, offsets)
        decided = [finding for work in works for finding in work.findings]
        for (kind, state), count in Counter((f.type, f.state) for f in decided).items():
            FINDINGS.labels(kind, state).inc(count)
        for work in works:
            work.findings.clear()
            self._observe(work.owned.state)
        return batch

    async def _write(self, batch: Batch) -> None:
        await self.publish(await self._store.write(batch))

    @staticmethod
    def _evict(works: Sequence[PartitionWork], writing: Batch | None) -> None:
        """Shrink the working sets to what is saved, but the payments of the batch `writing`
        (a later read from the store could miss their changes)."""
        for work in works:
            partition = work.owned.partition
            pinned = writing.changed.get(partition, set()) if writing is not None else set()
            evicted = work.matcher.evict(WORKING_SET, pinned)
            floor = work.owned.due_floor
            if evicted is not None and floor is not None and evicted < floor:
                work.owned.due_floor = evicted

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

    async def dead_letter(self, dead: DeadLetters) -> None:
        """Poison records go to the sink before their offsets are saved as consumed: never
        silently dropped."""
        if dead:
            await self._sink.dead_letters(dead)
            dead.clear()

    async def publish(self, findings: Sequence[StoredFinding]) -> None:
        await self._sink.findings(findings)
        await self._store.mark_published(findings)

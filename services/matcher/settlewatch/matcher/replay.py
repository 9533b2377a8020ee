"""Replay (SPEC §13): a recorded period through a fresh matcher, with no side effects.

The record is the broker's retained log of the transactions and settlements topics (the
archive is Kafka itself: keep `retention.ms` at least the state retention plus the periods to
replay, or use tiered storage for longer; docs/scaling.md). The replay reads every retained
record from the start of the log, so that the state the period's decisions depend on (profiles,
calendars, payments made before it) is rebuilt as the live matcher built it, through the same
engine (engine.py) and its store in a scratch database created for the run and dropped after
it: nothing is published, no live table is written. It stops at the first pulse after the
period in every partition (or at the end of the log as it was when the replay began) and keeps
the findings decided within the period, by the matcher clock.

`terms` replaces merchant profiles wherever the log sets them (what-if); `against_live` compares
the findings with those the live matcher recorded in its outbox for the same period.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlalchemy.engine import make_url

from settlewatch.common.config import MatcherSettings
from settlewatch.common.db import create_engine
from settlewatch.common.deadletter import DeadLetter
from settlewatch.common.events import MerchantChanged, MerchantProfile, TopicRecord
from settlewatch.common.kafka import Topics
from settlewatch.matcher.engine import Collected, Engine, PartitionWork, Poison, decode
from settlewatch.matcher.store import MatcherStore
from settlewatch.schema import migrate

__all__ = ["Differences", "Replayed", "compare", "live_findings", "replay"]

# Decided by the wall clock (the matcher's stall watch), not by the log.
NOT_FROM_THE_LOG = ("pipeline.stalled",)


@dataclass
class Replayed:
    """What the replay decided within the period (finding bodies), and what it read."""

    findings: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0
    rejected: list[DeadLetter] = field(default_factory=list)

    @property
    def keys(self) -> set[str]:
        return {f"{f['id']}#{f['state']}" for f in self.findings}


def _with_terms(record: TopicRecord, terms: Mapping[str, MerchantProfile]) -> TopicRecord:
    if record["kind"] == "merchant" and (profile := terms.get(record["body"].merchant_id)):
        body = MerchantChanged(merchant_id=record["body"].merchant_id, profile=profile)
        return {"v": record["v"], "kind": "merchant", "body": body}
    return record


async def replay(
    settings: MatcherSettings,
    start: datetime,
    end: datetime,
    terms: Mapping[str, MerchantProfile] | None = None,
) -> Replayed:
    """The findings a fresh matcher, configured as the live one by `settings`, decides from the
    retained log within [start, end]."""
    scratch = f"settlewatch_replay_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_dsn(settings.database_url))
    try:
        await admin.execute(f'CREATE DATABASE "{scratch}"')
        try:
            url = make_url(settings.database_url).set(database=scratch)
            await asyncio.to_thread(migrate, url.render_as_string(hide_password=False))
            db = create_engine(url.render_as_string(hide_password=False))
            try:
                store = MatcherStore(db, settings.region_jump_window)
                return await _run(settings, store, start, end, terms or {})
            finally:
                await db.dispose()
        finally:
            await admin.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')
    finally:
        await admin.close()


async def _run(
    settings: MatcherSettings,
    store: MatcherStore,
    start: datetime,
    end: datetime,
    terms: Mapping[str, MerchantProfile],
) -> Replayed:
    topics = Topics(settings.topic_prefix)
    inputs = (topics.transactions, topics.settlements)
    collected = Collected()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = sorted(consumer.partitions_for_topic(topics.transactions) or ())
        assigned = [TopicPartition(t, p) for t in inputs for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)  # the log as it is now
        engine = Engine(store, collected, settings.timer_interval)
        works = {w.owned.partition: w for w in await engine.claim(partitions, inputs)}
        done = {tp for tp in assigned if ends[tp] == 0}
        records = 0
        while len(done) < len(assigned):
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, fetched in batch.items():
                if tp not in done:
                    fed, over = _feed(works[tp.partition], tp, fetched, ends[tp], end, terms)
                    records += fed
                    if over:  # the period is over in this partition of this topic
                        done.add(tp)
                        consumer.pause(tp)
            await _advance(engine, [works[p] for p in sorted({tp.partition for tp in batch})])
    finally:
        await consumer.stop()
    findings = [orjson.loads(f.value) for f in collected.sent]
    within = [f for f in findings if start <= datetime.fromisoformat(f["at"]) <= end]
    return Replayed(within, records, collected.rejected)


def _feed(
    work: PartitionWork,
    tp: TopicPartition,
    fetched: Sequence[ConsumerRecord[bytes, bytes]],
    stop_at: int,
    end: datetime,
    terms: Mapping[str, MerchantProfile],
) -> tuple[int, bool]:
    """Queue the fetched records up to the first pulse after `end` or offset `stop_at`;
    return how many were queued and whether the topic-partition is over."""
    records = decode([r.value or b"" for r in fetched], [r.key for r in fetched])
    for fed, (r, record) in enumerate(zip(fetched, records, strict=True)):
        if r.offset >= stop_at or _past(record, end):
            return fed, True
        if not isinstance(record, Poison):
            record = _with_terms(record, terms)
        work.add(tp.topic, r.offset, record)
    return len(fetched), fetched[-1].offset + 1 >= stop_at


def _past(record: TopicRecord | Poison, end: datetime) -> bool:
    return not isinstance(record, Poison) and record["kind"] == "pulse" and record["body"].at > end


async def _advance(engine: Engine, works: Sequence[PartitionWork]) -> None:
    dead: list[DeadLetter] = []
    for work in works:
        await engine.advance(work, dead)
    await engine.dead_letter(dead)
    await engine.save(works)


@dataclass(frozen=True)
class Differences:
    only_live: list[str]
    only_replayed: list[str]

    def __bool__(self) -> bool:
        return bool(self.only_live or self.only_replayed)


async def live_findings(database_url: str, start: datetime, end: datetime) -> set[str]:
    """The finding keys the live matcher recorded with a clock within [start, end]."""
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT key FROM matcher_outbox WHERE (body ->> 'at')::timestamptz BETWEEN $1 AND $2 "
            "AND body ->> 'type' <> ALL($3::text[])",
            start,
            end,
            list(NOT_FROM_THE_LOG),
        )
    finally:
        await conn.close()
    return {row[0] for row in rows}


def compare(live: set[str], replayed: Replayed) -> Differences:
    ours = {k for k in replayed.keys if k.split(":", 1)[0] not in NOT_FROM_THE_LOG}
    return Differences(sorted(live - ours), sorted(ours - live))


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

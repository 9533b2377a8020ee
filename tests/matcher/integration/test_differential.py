"""Differential: the engine on the real store (a working set, the deadline fast path in SQL,
batches cut anywhere, restarts from what was saved, records of the two topics arriving at their
own pace) decides exactly what the pure core decides with everything in memory — the same
statuses, the same finding ids — over generated logs of transactions, settlements, voids,
maintenance windows, terminals and calendar loads, duplicated and reordered within ticks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlewatch.common.db import create_engine
from settlewatch.common.deadletter import DeadLetter
from settlewatch.common.events import (
    CalendarYearLoaded,
    MaintenanceWindow,
    MerchantChanged,
    Pulse,
    TerminalChanged,
    TopicRecord,
)
from settlewatch.matcher import engine as engine_module
from settlewatch.matcher.codec import PAYMENT_SELECT, PAYMENTS_FROM, payment_from_row
from settlewatch.matcher.engine import Collected, Engine, PartitionWork
from settlewatch.matcher.store import MatcherStore
from tests.matcher.unit.scenario import Event, Run, merchant
from tests.matcher.unit.test_order_independence import scenarios
from tests.support.urls import asyncpg_dsn

TOPICS = ("transactions", "settlements")


def record(event: Event) -> tuple[str, TopicRecord]:
    kinds = {
        MerchantChanged: "merchant",
        TerminalChanged: "terminal",
        MaintenanceWindow: "maintenance",
        CalendarYearLoaded: "calendar",
    }
    if (kind := kinds.get(type(event))) is None:
        kind = "settlement" if "settlement_id" in event else "transaction"  # type: ignore[operator]
    topic = "settlements" if kind == "settlement" else "transactions"
    return topic, {"v": 1, "kind": kind, "body": event}  # type: ignore[return-value]


def topic_logs(
    ticks: list[datetime], placed: list[tuple[int, Event]]
) -> dict[str, list[TopicRecord]]:
    """Each topic's records in log order: the events of each interval, then a pulse in both."""
    logs: dict[str, list[TopicRecord]] = {topic: [] for topic in TOPICS}
    for event in (merchant("M1"), merchant("M2", settlement_cycle="D0")):
        topic, rec = record(event)
        logs[topic].append(rec)
    for index, now in enumerate(ticks):
        for event in (event for i, event in placed if i == index):
            topic, rec = record(event)
            logs[topic].append(rec)
        for topic in TOPICS:
            pulse = Pulse(at=now, source="test")
            logs[topic].append({"v": 1, "kind": "pulse", "body": pulse})  # type: ignore[typeddict-item]
    return logs


async def through_the_engine(
    database_url: str,
    logs: dict[str, list[TopicRecord]],
    steps: list[tuple[int, int, bool]],
    behind: bool = False,
) -> tuple[dict[str, Any], set[str]]:
    """Feed the logs in steps (so many records of each topic, then a batch ends; a restart
    after it when asked), as the Kafka loop would (`behind`: each batch written while the next
    is applied); return the stored payments and the findings the sink received."""
    sink = Collected()
    db = create_engine(database_url)
    try:
        engine = Engine(MatcherStore(db), sink)
        [work] = await engine.claim([0], TOPICS)
        fed = dict.fromkeys(TOPICS, 0)
        for more_t, more_s, restart in [*steps, (10**6, 10**6, False)]:
            for topic, more in zip(TOPICS, (more_t, more_s), strict=True):
                for offset in range(fed[topic], min(fed[topic] + more, len(logs[topic]))):
                    work.add(topic, offset, logs[topic][offset])
                    fed[topic] = offset + 1
            await batch(engine, work, behind)
            if restart:  # a new process: the state and the offsets saved, nothing else
                await engine.flush()
                engine = Engine(MatcherStore(db), sink)
                [work] = await engine.claim([0], TOPICS)
                saved = await MatcherStore(db).offsets(TOPICS, [0])
                fed = {topic: saved.get((topic, 0), 0) for topic in TOPICS}
        await engine.flush()
        assert sink.rejected == []
    finally:
        await db.dispose()
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(f"SELECT {PAYMENT_SELECT} FROM {PAYMENTS_FROM}")
        keys = {r[0] for r in await conn.fetch("SELECT key FROM matcher_outbox")}
    finally:
        await conn.close()
    assert keys == {f.key for f in sink.sent}  # all published
    stored = map(payment_from_row, rows)
    return {p.txn_id: orjson.loads(orjson.dumps(p)) for p in stored}, keys


def in_memory(
    ticks: list[datetime], placed: list[tuple[int, Event]]
) -> tuple[dict[str, Any], set[str]]:
    """The reference: the pure core holding every payment, ticked at every pulse, applying an
    interval's records as the engine does, the transactions topic's first (the order within an
    interval changes no status nor finding, but it is the order of a payment's history)."""
    reference = Run().feed(merchant("M1"), merchant("M2", settlement_cycle="D0"))
    for index, now in enumerate(ticks):
        events = [event for i, event in placed if i == index]
        for topic in TOPICS:
            reference.feed(*(event for event in events if record(event)[0] == topic))
        reference.tick(now)
    payments = reference.matcher.state.payments
    documents = {t: orjson.loads(orjson.dumps(p)) for t, p in payments.items()}
    return documents, {finding.key for finding in reference.findings}


async def batch(engine: Engine, work: PartitionWork, behind: bool = False) -> None:
    dead: list[DeadLetter] = []
    await engine.advance(work, dead)
    await engine.dead_letter(dead)
    await (engine.save_behind if behind else engine.save)([work])


async def empty(database_url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(
            "TRUNCATE matcher_payments, matcher_payment_states, matcher_partitions, "
            "matcher_offsets, matcher_outbox"
        )
    finally:
        await conn.close()


steps = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 6), st.booleans()), max_size=6)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenarios(), steps, st.integers(0, 1), st.booleans(), st.data())
def test_the_engine_on_the_store_decides_what_the_core_decides_in_memory(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    scenario: tuple[list[datetime], list[tuple[int, Event]]],
    cut: list[tuple[int, int, bool]],
    keep: int,
    behind: bool,
    data: st.DataObject,
) -> None:
    # Tiny rounds and working sets: nearly every decision goes through the store and the SQL;
    # the payments compared whole, as saved (status, history, flags, settlements).
    monkeypatch.setattr(engine_module, "TIMER_BATCH", 2)
    monkeypatch.setattr(engine_module, "WORKING_SET", keep)
    # Pulses as ingest writes them (UTC: a restarted partition's clock is read back in UTC).
    ticks, placed = [t.astimezone(UTC) for t in scenario[0]], list(scenario[1])
    # Redelivered records, in the same interval or a later one.
    for i, event in data.draw(st.lists(st.sampled_from(placed), max_size=4)) if placed else []:
        placed.append((data.draw(st.integers(i, len(ticks) - 1)), event))
    reference = in_memory(ticks, placed)

    async def check() -> Any:
        await empty(database_url)
        return await through_the_engine(database_url, topic_logs(ticks, placed), cut, behind)

    assert asyncio.run(check()) == reference

"""Property: within the same pulses, any order and duplication of the same events gives the same
final statuses and the same findings (SPEC §5: a replay reproduces the live run)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from settlewatch.common.events import MaintenanceWindow
from settlewatch.matcher.codec import (
    partition_from_json,
    partition_to_json,
    payment_from_json,
    payment_to_json,
)
from settlewatch.matcher.core.matcher import Matcher
from tests.unit.matcher.scenario import Event, Run, merchant, sale, settlement, void

START = datetime.fromisoformat("2025-11-20T00:00+08:00")
TXN_IDS = [f"T{i}" for i in range(8)]


def minutes(n: int) -> datetime:
    return START + timedelta(minutes=n)


@st.composite
def transactions(draw: st.DrawFn) -> dict[str, Event]:
    """One fixed content per txn_id (a different content would be a conflict, tested apart)."""
    chosen: dict[str, Event] = {}
    for txn_id in draw(st.lists(st.sampled_from(TXN_IDS), min_size=1, max_size=8, unique=True)):
        when = minutes(draw(st.integers(0, 3 * 24 * 60)))
        kind = draw(st.sampled_from(["sale", "sale", "sale", "refund"]))
        chosen[txn_id] = sale(
            txn_id,
            when.isoformat(),
            type=kind,
            merchant_id=draw(st.sampled_from(["M1", "M2"])),
            amount_minor=draw(st.sampled_from([12800, 5000])),
            card_fingerprint=draw(st.sampled_from(["fp-a", "fp-b"])),
            **({"original_txn_id": "T-orig"} if kind == "refund" else {}),
        )
    return chosen


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[datetime], list[tuple[int, Event]]]:
    """Ticks over six weeks, and events each assigned to the interval before one of them."""
    ticks = sorted(set(draw(st.lists(st.integers(1, 45 * 24 * 60), min_size=1, max_size=12))))
    tick_times = [minutes(t) for t in ticks]
    events: list[Event] = list(draw(transactions()).values())
    for n in range(draw(st.integers(0, 3))):
        events.append(void(f"V{n}", draw(st.sampled_from(TXN_IDS))))
    for n in range(draw(st.integers(0, 5))):
        line_txn = draw(st.sampled_from(TXN_IDS))
        gross = draw(st.sampled_from([12800, 5000, -5000]))
        events.append(
            settlement(
                f"S{n}",
                [(line_txn, gross, 30, gross - 30)],
                status=draw(st.sampled_from(["settled", "settled", "failed", "returned"])),
                occurred=minutes(draw(st.integers(0, 6 * 24 * 60))).isoformat(),
            )
        )
    if draw(st.booleans()):
        start = draw(st.integers(0, 5 * 24 * 60))
        events.append(
            MaintenanceWindow(
                id="mw",
                bank_code="ICBC",
                starts_at=minutes(start),
                ends_at=minutes(start + 600),
                reason="x",
            )
        )
    placed = [(draw(st.integers(0, len(tick_times) - 1)), event) for event in events]
    return tick_times, placed


def run(ticks: list[datetime], placed: list[tuple[int, Event]]) -> tuple[dict[str, str], set[str]]:
    matcher_run = Run().feed(merchant("M1"), merchant("M2", settlement_cycle="D0"))
    for index, now in enumerate(ticks):
        matcher_run.feed(*(event for i, event in placed if i == index))
        matcher_run.tick(now)
    statuses = {txn_id: matcher_run.status(txn_id) for txn_id in TXN_IDS}
    return statuses, {finding.key for finding in matcher_run.findings}


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False), st.data())
def test_order_and_duplication_within_a_tick_change_nothing(
    scenario: tuple[list[datetime], list[tuple[int, Event]]], rng: Any, data: st.DataObject
) -> None:
    ticks, placed = scenario
    reference = run(ticks, placed)
    shuffled = list(placed)
    rng.shuffle(shuffled)
    duplicated = (
        shuffled + data.draw(st.lists(st.sampled_from(placed), max_size=5)) if placed else shuffled
    )
    rng.shuffle(duplicated)
    assert run(ticks, duplicated) == reference


def run_with_restart(
    ticks: list[datetime], placed: list[tuple[int, Event]], restart_after: int
) -> tuple[dict[str, str], set[str]]:
    """The same run, but the state goes through the store's JSON form after tick `restart_after`,
    as when a matcher restarts or a partition moves to another instance."""
    matcher_run = Run().feed(merchant("M1"), merchant("M2", settlement_cycle="D0"))
    for index, now in enumerate(ticks):
        matcher_run.feed(*(event for i, event in placed if i == index))
        matcher_run.tick(now)
        if index == restart_after:
            state = matcher_run.matcher.state
            payments = [
                payment_from_json(orjson.loads(payment_to_json(p))) for p in state.payments.values()
            ]
            blob = orjson.loads(orjson.dumps(partition_to_json(state)))
            matcher_run.matcher = Matcher(partition_from_json(blob, state.clock, payments))
    statuses = {txn_id: matcher_run.status(txn_id) for txn_id in TXN_IDS}
    return statuses, {finding.key for finding in matcher_run.findings}


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.data())
def test_a_state_saved_and_loaded_between_ticks_continues_exactly(
    scenario: tuple[list[datetime], list[tuple[int, Event]]], data: st.DataObject
) -> None:
    ticks, placed = scenario
    restart_after = data.draw(st.integers(0, len(ticks) - 1))
    assert run_with_restart(ticks, placed, restart_after) == run(ticks, placed)

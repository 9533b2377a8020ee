"""Properties: within the same pulses, any order and duplication of the same events gives the
same final statuses and the same findings (SPEC §5: a replay reproduces the live run); and a
matcher that keeps only a working set in memory, reading the rest from its store, or restarts
from the store, decides exactly what one holding everything in memory decides."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from settlewatch.common.events import (
    CalendarYearLoaded,
    MaintenanceWindow,
    MerchantChanged,
    TerminalChanged,
)
from settlewatch.matcher.codec import (
    partition_from_json,
    partition_to_json,
    payment_from_row,
    payment_row,
    reference_to_json,
)
from settlewatch.matcher.core.matcher import Matcher, fires_at, referenced
from settlewatch.matcher.core.model import OWED, PartitionState, Payment, RegionSeen
from tests.matcher.unit.scenario import (
    Event,
    Run,
    apply,
    merchant,
    sale,
    settlement,
    terminal,
    void,
)
from tests.support.examples import examples

START = datetime.fromisoformat("2025-11-20T00:00+08:00")
TXN_IDS = [f"T{i}" for i in range(8)]
TERMINALS = ["POS-1", "POS-2"]
REGIONS = ["北京", "上海", None]


def minutes(n: int) -> datetime:
    return START + timedelta(minutes=n)


@st.composite
def transactions(draw: st.DrawFn) -> dict[str, Event]:
    """One fixed content per txn_id (a different content would be a conflict, tested apart)."""
    chosen: dict[str, Event] = {}
    for txn_id in draw(st.lists(st.sampled_from(TXN_IDS), min_size=1, max_size=8, unique=True)):
        when = minutes(draw(st.integers(0, 3 * 24 * 60)))
        kind = draw(st.sampled_from(["sale", "sale", "sale", "refund", "refund", "chargeback"]))
        chosen[txn_id] = sale(
            txn_id,
            when.isoformat(),
            type=kind,
            merchant_id=draw(st.sampled_from(["M1", "M2"])),
            amount_minor=draw(st.sampled_from([12800, 5000, 9000])),
            card_fingerprint=draw(st.sampled_from(["fp-a", "fp-b"])),
            terminal_id=draw(st.sampled_from(TERMINALS)),
            region=draw(st.sampled_from(REGIONS)),
            # Refunds of the scenario's sales (they may add up to more than one) or of one never
            # seen; a chargeback names its sale too.
            **(
                {"original_txn_id": draw(st.sampled_from([*TXN_IDS, "T-orig"]))}
                if kind != "sale"
                else {}
            ),
        )
    return chosen


@st.composite
def calendar_loads(draw: st.DrawFn, version: int) -> CalendarYearLoaded:
    """A load of 2025 for CN (overriding chinesecalendar's) with other holidays and working
    weekends in the weeks the scenarios cover: deadlines move both ways, overdue un-fires."""
    days = [START.date() + timedelta(days=n) for n in range(42)]
    days = [d for d in days if d.year == 2025]
    weekdays = [d for d in days if d.weekday() < 5]
    weekends = [d for d in days if d.weekday() >= 5]
    return CalendarYearLoaded(
        calendar="CN",
        year=2025,
        version=version,
        holidays=draw(st.lists(st.sampled_from(weekdays), max_size=8, unique=True)),
        workdays=draw(st.lists(st.sampled_from(weekends), max_size=3, unique=True)),
        source=f"test v{version}",
    )


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
        paid = settlement(
            f"S{n}",
            [(line_txn, gross, 30, gross - 30)],
            status=draw(st.sampled_from(["settled", "settled", "failed", "returned"])),
            occurred=minutes(draw(st.integers(0, 6 * 24 * 60))).isoformat(),
        )
        if booked_under := draw(st.sampled_from([None, *TERMINALS])):  # the bank's books
            paid["items"][0]["terminal_id"] = booked_under
        events.append(paid)
    # Terminals registered (where they stand; a migration from POS-1 to POS-2), in any tick.
    for terminal_id in draw(st.lists(st.sampled_from(TERMINALS), max_size=2, unique=True)):
        replaces = draw(st.sampled_from([None, "POS-1"])) if terminal_id == "POS-2" else None
        events.append(
            terminal(terminal_id, region=draw(st.sampled_from(REGIONS)), replaces=replaces)
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
    for version in range(1, draw(st.integers(0, 2)) + 1):
        events.append(draw(calendar_loads(version)))
    placed = [(draw(st.integers(0, len(tick_times) - 1)), event) for event in events]
    return tick_times, placed


def run(ticks: list[datetime], placed: list[tuple[int, Event]]) -> tuple[dict[str, str], set[str]]:
    matcher_run = Run().feed(merchant("M1"), merchant("M2", settlement_cycle="D0"))
    for index, now in enumerate(ticks):
        matcher_run.feed(*(event for i, event in placed if i == index))
        matcher_run.tick(now)
    statuses = {txn_id: matcher_run.status(txn_id) for txn_id in TXN_IDS}
    return statuses, {finding.key for finding in matcher_run.findings}


@settings(max_examples=examples(300), deadline=None)
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


class Shelf:
    """The store's contract, in memory: payments as saved rows, read back by txn_id, by the
    time a sale or refund occurred, by deadline (bounded, earliest first) and by bank; the
    partition document as saved."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[Any, ...]] = {}

    def save(self, state: PartitionState) -> None:
        for txn_id in state.changed:
            if txn_id in state.payments:
                self.rows[txn_id] = payment_row(state.payments[txn_id], 0)
        state.changed.clear()

    def stored(self) -> list[Payment]:
        return [payment_from_row(row) for row in self.rows.values()]

    def fetch(self, state: PartitionState, txn_ids: Iterable[str]) -> list[Payment]:
        wanted = set(txn_ids) - set(state.payments)
        return [p for p in self.stored() if p.txn_id in wanted]

    def at_times(self, state: PartitionState, times: Iterable[datetime]) -> list[Payment]:
        wanted = set(times)
        return [
            p
            for p in self.stored()
            if p.kind in ("sale", "refund")
            and p.occurred_at in wanted
            and p.txn_id not in state.payments
        ]

    def due(self, now: datetime, limit: int) -> list[Payment]:
        due = [(at, p.txn_id, p) for p in self.stored() if (at := fires_at(p)) and at <= now]
        return [p for _, _, p in sorted(due)[:limit]]

    def pending_of_bank(self, bank_code: str, since: datetime) -> list[Payment]:
        return [
            p
            for p in self.stored()
            if p.status == "pending" and p.bank_code == bank_code and p.due_at >= since
        ]

    def owed_across_year(self, year: int) -> list[Payment]:
        eve = datetime(year - 1, 12, 30, tzinfo=UTC)
        return [
            p
            for p in self.stored()
            if p.status in OWED and p.business_date <= date(year, 12, 31) and p.due_at >= eve
        ]

    def reload(self, state: PartitionState) -> PartitionState:
        """The partition as a restarted matcher reads it: its documents, its recent sales and
        its terminals' recent regions (MatcherStore.claim)."""
        self.save(state)
        sales = [
            (
                (p.merchant_id, p.card_fingerprint, p.amount_minor, p.currency),
                p.txn_id,
                p.occurred_at,
            )
            for p in sorted(self.stored(), key=lambda p: (p.occurred_at, p.txn_id))
            if p.kind == "sale"
        ]
        regions = [
            RegionSeen(
                p.merchant_id,
                p.evidence["terminal_id"],
                p.txn_id,
                p.occurred_at,
                p.evidence["region"],
            )
            for p in sorted(self.stored(), key=lambda p: (p.occurred_at, p.txn_id))
            if p.kind in ("sale", "refund") and p.evidence.get("region")
        ]
        reference = orjson.loads(orjson.dumps(reference_to_json(state)))
        document = orjson.loads(orjson.dumps(partition_to_json(state)))
        return partition_from_json(reference, document, state.clock, sales, regions)


def run_from_store(
    ticks: list[datetime],
    placed: list[tuple[int, Event]],
    keep: int,
    restart_before: int | None = None,
) -> tuple[dict[str, str], set[str]]:
    """The same run as the matcher service does it: a working set of at most `keep` payments
    between ticks, payments read before the events that concern them, due ones read two at a
    time, and optionally a restart from the saved state just before tick `restart_before`."""
    shelf = Shelf()
    matcher = Matcher(PartitionState())
    findings = []
    for event in (merchant("M1"), merchant("M2", settlement_cycle="D0")):
        apply(matcher, event)
    for index, now in enumerate(ticks):
        events = [event for i, event in placed if i == index]
        for event in events:
            if isinstance(event, MaintenanceWindow):
                matcher.load(shelf.pending_of_bank(event.bank_code, event.starts_at))
            elif isinstance(event, CalendarYearLoaded):
                matcher.load(shelf.owed_across_year(event.year))
            elif not isinstance(event, MerchantChanged | TerminalChanged):
                kind = "settlement" if "settlement_id" in event else "transaction"
                matcher.load(shelf.fetch(matcher.state, referenced(kind, event)))
            apply(matcher, event)
        shelf.save(matcher.state)  # a batch ended before the pulse came
        matcher.evict(keep)
        if index == restart_before:
            matcher = Matcher(shelf.reload(matcher.state))
        matcher.load(shelf.fetch(matcher.state, matcher.needed_at_tick()))
        matcher.load(shelf.at_times(matcher.state, matcher.times_at_tick()))
        while True:
            due = shelf.due(now, limit=2)
            matcher.load(due)
            findings += matcher.tick(now)
            if len(due) < 2:
                break
            shelf.save(matcher.state)
            matcher.evict(keep)
        shelf.save(matcher.state)
        matcher.evict(keep)
    shelf.save(matcher.state)
    statuses = dict.fromkeys(TXN_IDS, "gone")
    statuses |= {p.txn_id: p.status for p in shelf.stored()}
    return statuses, {finding.key for finding in findings}


@settings(max_examples=examples(200), deadline=None)
@given(scenarios(), st.integers(0, 3), st.data())
def test_a_working_set_read_from_the_store_decides_exactly_as_all_in_memory(
    scenario: tuple[list[datetime], list[tuple[int, Event]]], keep: int, data: st.DataObject
) -> None:
    ticks, placed = scenario
    restart_before = data.draw(st.none() | st.integers(0, len(ticks) - 1))
    assert run_from_store(ticks, placed, keep, restart_before) == run(ticks, placed)

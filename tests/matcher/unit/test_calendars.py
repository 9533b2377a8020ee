"""Loaded calendars in the matcher core (SPEC §10): deadlines across New Year and the Spring
Festival of 2027 with the year loaded and without it (estimated, calendar.missing), a load that
moves deadlines and resolves an overdue it made premature, and — as properties — loads that
decide the same whatever the order of the events around them, read from a store or not."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from settlewatch.common.events import CalendarYearLoaded
from settlewatch.matcher.core.deadlines import Schedule, deadline
from settlewatch.matcher.core.matcher import Matcher
from settlewatch.matcher.core.model import PartitionState
from tests.matcher.unit.scenario import Event, Run, at, merchant, paid, sale, settlement, void
from tests.matcher.unit.test_order_independence import (
    TXN_IDS,
    minutes,
    run,
    run_from_store,
)
from tests.support.examples import examples

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "calendars"


def cn_2027(version: int = 1, **changes: Any) -> CalendarYearLoaded:
    body = json.loads((FIXTURE / "cn_2027_synthetic.json").read_text()) | changes
    return CalendarYearLoaded.model_validate_json(
        json.dumps({"calendar": "CN", "year": 2027, "version": version} | body)
    )


def due(occurred: str, loaded: CalendarYearLoaded | None = None) -> tuple[datetime, str]:
    run_ = Run().feed(merchant("M1"))
    if loaded is not None:
        run_.feed(loaded)
    run_.feed(sale("T1", occurred))
    payment = run_.matcher.state.payments["T1"]
    return payment.due_at, payment.deadline_basis


# (what, occurred_at, due_at without 2027, due_at with the 2027 table)
CASES = [
    (
        "T1 on New Year's Eve",
        "2026-12-31T10:00+08:00",
        "2027-01-02T00:00+08:00",
        "2027-01-05T00:00+08:00",
    ),
    (
        "T1 after the cutoff on 31 Dec",
        "2026-12-31T23:30+08:00",
        "2027-01-05T00:00+08:00",
        "2027-01-05T00:00+08:00",
    ),
    (
        "T1 into Spring Festival",
        "2027-02-04T10:00+08:00",
        "2027-02-06T00:00+08:00",
        "2027-02-16T00:00+08:00",
    ),
    (
        "T1 to the working Saturday",
        "2027-02-19T10:00+08:00",
        "2027-02-23T00:00+08:00",
        "2027-02-21T00:00+08:00",
    ),
]


def test_deadlines_across_new_year_and_spring_festival_with_and_without_2027() -> None:
    for what, occurred, without, loaded in CASES:
        assert due(occurred) == (at(without), "estimated"), what
        assert due(occurred, cn_2027()) == (at(loaded), "calendar"), what


def test_a_deadline_inside_a_known_year_is_not_estimated() -> None:
    assert due("2026-11-19T10:00+08:00") == (at("2026-11-21T00:00+08:00"), "calendar")
    profile = merchant("M1", calendar="weekdays").profile
    later = deadline(at("2031-02-04T10:00+08:00"), Schedule.of(profile))
    assert later.basis == "calendar"  # weekdays is a calendar, not a guess


def test_one_calendar_missing_per_year_from_60_days_before_until_it_is_loaded() -> None:
    run_ = Run().feed(merchant("M1"), merchant("M2", calendar="weekdays"))
    assert run_.tick("2026-11-01T00:00+08:00") == []  # 2027 is 61 days away
    opened = run_.tick("2026-11-27T10:00+08:00")
    assert [(f.id, f.state, f.merchant_id) for f in opened] == [
        ("calendar.missing:CN:2027", "open", None)
    ]
    assert opened[0].evidence == {"calendar": "CN", "year": 2027, "deadline_basis": "estimated"}
    assert run_.tick("2026-12-20T10:00+08:00") == []  # once
    run_.feed(cn_2027())
    resolved = run_.tick("2026-12-20T10:01+08:00")
    assert [(f.id, f.state) for f in resolved] == [("calendar.missing:CN:2027", "resolved")]


def test_no_calendar_missing_without_a_merchant_on_business_days_of_that_calendar() -> None:
    run_ = Run().feed(merchant("M1", calendar="weekdays"), merchant("M2", settlement_cycle="D1"))
    assert run_.tick("2026-11-27T10:00+08:00") == []


def test_a_load_moves_a_premature_overdue_and_resolves_it_as_deadline_moved() -> None:
    run_ = Run().feed(merchant("M1"), sale("T1", "2027-02-04T10:00+08:00"))
    run_.tick("2027-02-04T10:01+08:00")
    fired = run_.tick("2027-02-06T00:00+08:00")  # estimated: Friday is a working day
    assert ("settlement.overdue:T1", "open") in [(f.id, f.state) for f in fired]
    assert fired[-1].evidence["deadline_basis"] == "estimated"
    run_.feed(cn_2027())
    assert run_.status("T1") == "pending"
    after = run_.tick("2027-02-06T09:00+08:00")
    resolved = [f for f in after if f.type == "settlement.overdue"]
    assert [(f.id, f.state) for f in resolved] == [("settlement.overdue:T1", "resolved")]
    assert resolved[0].evidence["resolution"].startswith("deadline_moved: now due 2027-02-16")
    payment = run_.matcher.state.payments["T1"]
    assert payment.due_at == at("2027-02-16T00:00+08:00")
    assert payment.deadline_basis == "calendar"
    moved = {"due_at": "2027-02-16T00:00:00+08:00", "calendar": "CN", "year": 2027, "version": 1}
    assert (at("2027-02-06T00:00+08:00"), "moved_by_calendar", moved) in payment.history
    # Still unpaid at the real deadline: a new overdue (the first stays resolved).
    again = run_.tick("2027-02-16T00:00+08:00")
    assert [(f.id, f.state) for f in again] == [("settlement.overdue:T1:2", "open")]
    # Paid afterwards: the second one resolves; it was late against the real deadline.
    run_.feed(paid("T1", occurred="2027-02-16T09:00+08:00"))
    kinds = [(f.id, f.state) for f in run_.tick("2027-02-16T09:01+08:00")]
    assert ("settlement.overdue:T1:2", "resolved") in kinds
    assert run_.status("T1") == "settled_late"


def test_paid_before_the_moved_deadline_is_on_time() -> None:
    run_ = Run().feed(merchant("M1"), sale("T1", "2027-02-04T10:00+08:00"))
    run_.tick("2027-02-06T00:00+08:00")
    run_.feed(paid("T1", occurred="2027-02-15T09:00+08:00"), cn_2027())  # in the same tick
    kinds = [(f.type, f.state) for f in run_.tick("2027-02-15T09:01+08:00")]
    assert kinds == [("settlement.overdue", "resolved"), ("calendar.missing", "resolved")]
    assert run_.status("T1") == "settled"


def test_a_load_that_keeps_a_deadline_in_the_past_does_not_unfire() -> None:
    run_ = Run().feed(merchant("M1"), sale("T1", "2027-01-25T10:00+08:00"))
    run_.tick("2027-01-27T10:00+08:00")  # due 2027-01-27T00:00 either way
    run_.feed(cn_2027())
    assert [f.type for f in run_.tick("2027-01-27T10:01+08:00")] == ["calendar.missing"]
    assert run_.status("T1") == "overdue"
    assert run_.matcher.state.payments["T1"].deadline_basis == "calendar"


def test_the_same_load_twice_or_an_older_version_after_a_newer_changes_nothing() -> None:
    state = PartitionState()
    matcher = Matcher(state)
    for event in (merchant("M1"), sale("T1", "2027-02-04T10:00+08:00")):
        Run(matcher).feed(event)
    newer = cn_2027(2, holidays=["2027-02-05"])
    Run(matcher).feed(newer)
    snapshot = (
        state.calendars["CN"],
        state.payments["T1"].due_at,
        len(state.payments["T1"].history),
    )
    Run(matcher).feed(newer, cn_2027(1))
    assert (
        state.calendars["CN"],
        state.payments["T1"].due_at,
        len(state.payments["T1"].history),
    ) == snapshot
    assert state.payments["T1"].due_at == at("2027-02-09T00:00+08:00")


@st.composite
def calendar_scenarios(draw: st.DrawFn) -> tuple[list[datetime], list[tuple[int, Event]]]:
    """Two weeks of frequent ticks; T1 sales in the first three days; settlements, voids and one
    or two loads of the scenarios' year (2025, overriding chinesecalendar) with holidays and
    working weekends in those weeks: deadlines move both ways, overdues fire and un-fire."""
    ticks = sorted(set(draw(st.lists(st.integers(1, 14 * 24 * 60), min_size=3, max_size=16))))
    tick_times = [minutes(t) for t in ticks]
    events: list[Event] = []
    for txn_id in draw(st.lists(st.sampled_from(TXN_IDS), min_size=1, max_size=6, unique=True)):
        when = minutes(draw(st.integers(0, 3 * 24 * 60)))
        events.append(sale(txn_id, when.isoformat(), card_fingerprint=f"fp-{txn_id}"))
    for n in range(draw(st.integers(0, 2))):
        events.append(void(f"V{n}", draw(st.sampled_from(TXN_IDS))))
    for n in range(draw(st.integers(0, 4))):
        txn_id = draw(st.sampled_from(TXN_IDS))
        events.append(
            settlement(
                f"S{n}",
                [(txn_id, 12800, 77, 12723)],
                status=draw(st.sampled_from(["settled", "settled", "failed"])),
                occurred=minutes(draw(st.integers(0, 14 * 24 * 60))).isoformat(),
            )
        )
    days = [minutes(0).date() + timedelta(days=n) for n in range(14)]
    for version in range(1, draw(st.integers(1, 2)) + 1):
        events.append(
            CalendarYearLoaded(
                calendar="CN",
                year=2025,
                version=version,
                holidays=draw(
                    st.lists(st.sampled_from([d for d in days if d.weekday() < 5]), max_size=6)
                ),
                workdays=draw(
                    st.lists(st.sampled_from([d for d in days if d.weekday() >= 5]), max_size=2)
                ),
                source=f"v{version}",
            )
        )
    placed = [(draw(st.integers(0, len(tick_times) - 1)), event) for event in events]
    return tick_times, placed


@settings(max_examples=examples(300), deadline=None)
@given(calendar_scenarios(), st.randoms(use_true_random=False), st.integers(0, 3), st.data())
def test_a_load_decides_the_same_in_any_order_and_from_the_store(
    scenario: tuple[list[datetime], list[tuple[int, Event]]],
    rng: Any,
    keep: int,
    data: st.DataObject,
) -> None:
    ticks, placed = scenario
    reference = run(ticks, placed)
    shuffled = placed + data.draw(st.lists(st.sampled_from(placed), max_size=3))
    rng.shuffle(shuffled)
    assert run(ticks, shuffled) == reference
    restart_before = data.draw(st.none() | st.integers(0, len(ticks) - 1))
    assert run_from_store(ticks, shuffled, keep, restart_before) == reference


def test_an_overdue_resolved_by_a_moved_deadline_is_saved_so_a_move_back_raises_it_again() -> None:
    """Found by the property test above: the tick that resolved an overdue because a load moved
    its deadline past the clock changed the payment without marking it changed; evicted, it came
    back from the store as still overdue, and a second load moving the deadline back raised
    nothing (the merchant was told "resolved", never "overdue again")."""
    ticks = [minutes(2 * 24 * 60), minutes(2 * 24 * 60 + 1), minutes(2 * 24 * 60 + 2)]
    holiday = minutes(24 * 60).date()  # the day after the sale: its T1 deadline moves past it

    def load(version: int, holidays: list[Any]) -> CalendarYearLoaded:
        return CalendarYearLoaded(
            calendar="CN", year=2025, version=version, holidays=holidays, source=f"v{version}"
        )

    placed: list[tuple[int, Event]] = [
        (0, sale("T1", minutes(0).isoformat(), card_fingerprint="fp-T1")),  # overdue at tick 0
        (1, load(1, [holiday])),  # due later: resolved
        (2, load(2, [])),  # due again as before: overdue again
    ]
    statuses, findings = run(ticks, placed)
    assert "settlement.overdue:T1:2#open" in findings and statuses["T1"] == "overdue"
    assert run_from_store(ticks, placed, keep=0) == (statuses, findings)

"""Calendar-exact deadlines (SPEC §5), table-driven with explicit timestamps."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from settlewatch.common.calendar import BusinessCalendar, LoadedYear, built_in, next_business_day
from settlewatch.common.events import MerchantProfile
from settlewatch.matcher.core.deadlines import Schedule, Window, deadline, due_from

SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def schedule(cycle: str, **changes: object) -> Schedule:
    profile = {"name": "m", "settlement_bank": "ICBC", "settlement_cycle": cycle} | changes
    return Schedule.of(MerchantProfile.model_validate_json(json.dumps(profile)))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


CASES = [
    # (what, occurred_at, cycle, business date, due_at)
    ("T1 over Golden Week", "2025-09-30T10:00+08:00", "T1", "2025-09-30", "2025-10-10T00:00+08:00"),
    (
        "T1 to an adjusted Sunday working day",
        "2025-09-27T10:00+08:00",
        "T1",
        "2025-09-27",
        "2025-09-29T00:00+08:00",
    ),
    (
        "just before the cutoff",
        "2025-11-20T22:59:59+08:00",
        "T1",
        "2025-11-20",
        "2025-11-22T00:00+08:00",
    ),
    ("at the cutoff", "2025-11-20T23:00+08:00", "T1", "2025-11-21", "2025-11-25T00:00+08:00"),
    (
        "UTC input, local date already tomorrow",
        "2025-11-20T16:30:00Z",
        "T1",
        "2025-11-21",
        "2025-11-25T00:00+08:00",
    ),
    (
        "UTC input, local time after the cutoff",
        "2025-11-20T15:30:00Z",
        "T1",
        "2025-11-21",
        "2025-11-25T00:00+08:00",
    ),
    ("D1 over a weekend", "2025-11-21T10:00+08:00", "D1", "2025-11-21", "2025-11-23T00:00+08:00"),
    (
        "D0 is the business date itself",
        "2025-11-22T10:00+08:00",
        "D0",
        "2025-11-22",
        "2025-11-23T00:00+08:00",
    ),
    ("T0 on a Saturday", "2025-11-22T10:00+08:00", "T0", "2025-11-22", "2025-11-25T00:00+08:00"),
    ("T0 on a working day", "2025-11-20T10:00+08:00", "T0", "2025-11-20", "2025-11-21T00:00+08:00"),
    (
        "T2 over New Year 2026",
        "2025-12-31T10:00+08:00",
        "T2",
        "2025-12-31",
        "2026-01-06T00:00+08:00",
    ),
    (
        "T1 into Spring Festival 2026",
        "2026-02-13T12:00+08:00",
        "T1",
        "2026-02-13",
        "2026-02-15T00:00+08:00",
    ),
]


@pytest.mark.parametrize(
    ("occurred", "cycle", "business", "due"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_deadlines_in_shanghai_on_the_cn_calendar(
    occurred: str, cycle: str, business: str, due: str
) -> None:
    result = deadline(at(occurred), schedule(cycle))
    assert result.business_date == date.fromisoformat(business)
    assert result.due_at == at(due)
    assert result.due_at.utcoffset() == timedelta(hours=8)
    assert not result.estimated


def test_spring_festival_2026_per_the_package() -> None:
    # 2026-02-14 (Sat) is an adjusted working day; the holiday starts 2026-02-15.
    calendar = built_in("CN")
    assert calendar.is_business_day(date(2026, 2, 14))
    assert not calendar.is_business_day(date(2026, 2, 16))


def test_weekdays_calendar_ignores_chinese_holidays() -> None:
    result = deadline(at("2025-09-30T10:00+08:00"), schedule("T1", calendar="weekdays"))
    assert result.due_at == at("2025-10-02T00:00+08:00")


def test_due_time_and_cutoff_are_local_times() -> None:
    sched = schedule("T1", cutoff_time="18:00", due_time="12:00")
    assert deadline(at("2025-11-20T18:00+08:00"), sched).due_at == at("2025-11-24T12:00+08:00")
    assert deadline(at("2025-11-20T17:59+08:00"), sched).due_at == at("2025-11-21T12:00+08:00")


def test_another_time_zone_with_daylight_saving() -> None:
    sched = schedule("T1", timezone="Europe/Berlin", calendar="weekdays")
    # Friday 2025-10-24 in Berlin; T+1 is Monday 2025-10-27, after the switch to CET (UTC+1).
    result = deadline(at("2025-10-24T12:00+02:00"), sched)
    assert result.due_at == datetime(2025, 10, 28, tzinfo=ZoneInfo("Europe/Berlin"))
    assert result.due_at.utcoffset() == timedelta(hours=1)


def test_instant_is_occurred_at_plus_the_sla() -> None:
    result = deadline(at("2025-11-22T03:00+08:00"), schedule("instant", instant_sla="PT2H"))
    assert result.due_at == at("2025-11-22T05:00+08:00")


def test_a_deadline_inside_maintenance_moves_to_its_end_plus_two_hours() -> None:
    window = Window(at("2025-11-21T22:00+08:00"), at("2025-11-22T06:00+08:00"))
    result = deadline(at("2025-11-20T10:00+08:00"), schedule("T1"), [window])
    assert result.due_at == at("2025-11-22T08:00+08:00")


def test_back_to_back_windows_move_the_deadline_past_both() -> None:
    windows = [
        Window(at("2025-11-22T07:00+08:00"), at("2025-11-22T09:00+08:00")),
        Window(at("2025-11-21T22:00+08:00"), at("2025-11-22T06:00+08:00")),
    ]
    result = deadline(at("2025-11-20T10:00+08:00"), schedule("T1"), windows)
    assert result.due_at == at("2025-11-22T11:00+08:00")


def test_windows_that_do_not_contain_the_deadline_change_nothing() -> None:
    windows = [
        Window(at("2025-11-22T00:00:01+08:00"), at("2025-11-22T06:00+08:00")),  # starts after
        Window(at("2025-11-21T20:00+08:00"), at("2025-11-22T00:00+08:00")),  # ends at due_at
    ]
    result = deadline(at("2025-11-20T10:00+08:00"), schedule("T1"), windows)
    assert result.due_at == at("2025-11-22T00:00+08:00")


def test_a_year_the_calendar_does_not_know_falls_back_to_weekdays_and_says_so() -> None:
    result = deadline(at("2031-09-30T10:00+08:00"), schedule("T1"))
    assert result.due_at == at("2031-10-02T00:00+08:00")  # Wednesday: no Golden Week known
    assert result.estimated


def test_next_working_day_of_every_day_of_2026_matches_the_reference_table() -> None:
    with (SHARED_DATA / "_derived" / "cn_business_days_2026.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 365
    calendar = built_in("CN")
    compared = 0
    for row in rows:
        day = date.fromisoformat(row["date"])
        assert calendar.is_business_day(day) == (row["is_workday"] == "1"), day
        if not row["first_workday_strictly_after"]:
            continue  # the reference leaves the last days of the year open (2027 unannounced)
        expected = date.fromisoformat(row["first_workday_strictly_after"])
        assert next_business_day(calendar, day) == expected, day
        # and through the whole deadline path: T1 of a morning sale is due at the end of that day
        due = deadline(datetime.combine(day, time(10), tzinfo=SHANGHAI), schedule("T1")).due_at
        assert due == datetime.combine(expected + timedelta(days=1), time(0), tzinfo=SHANGHAI)
        compared += 1
    assert compared >= 350


def test_a_memoised_deadline_follows_the_calendar_it_is_asked_with() -> None:
    """Deadlines are memoised per (business date, schedule, calendar): a calendar with a year
    loaded is another calendar, equal calendars built apart share their answers."""
    t1 = schedule("T1")
    friday = date(2027, 3, 5)  # 2027 is beyond the built-in data: weekdays
    weekdays = built_in("CN")
    assert due_from(friday, t1, weekdays).due_at == at("2027-03-09T00:00+08:00")  # Monday 8th

    monday_off = LoadedYear(1, frozenset({date(2027, 3, 8)}), frozenset(), "test")
    loaded = weekdays.with_year(2027, monday_off)
    assert due_from(friday, t1, loaded).due_at == at("2027-03-10T00:00+08:00")  # Tuesday 9th
    assert due_from(friday, t1, weekdays).due_at == at("2027-03-09T00:00+08:00")  # unchanged

    again = BusinessCalendar("CN", {2027: monday_off})
    assert again == loaded and hash(again) == hash(loaded)
    assert due_from(friday, t1, again) == due_from(friday, t1, loaded)
    assert hash(weekdays.with_year(2027, LoadedYear(2, frozenset(), frozenset(), "v2"))) != hash(
        loaded
    )

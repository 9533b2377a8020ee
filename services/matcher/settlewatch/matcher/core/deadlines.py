"""When a payment must be settled (SPEC §5).

- Business date: the local date (merchant time zone) of ``occurred_at``; at or after
  ``cutoff_time`` it is the next calendar day.
- ``TN`` (N ≥ 1): the N-th business day after the business date. ``T0``: the business date if it
  is a business day, else the next one. ``DN``: business date + N calendar days.
  ``due_at`` = due date at ``due_time`` local (``24:00`` = the end of the due day).
- ``instant``: ``occurred_at + instant_sla``.
- The business days are those of the merchant's calendar as the log has loaded it (SPEC §10); a
  year it does not know is judged by weekdays and the deadline is ``estimated``.
- A ``due_at`` inside an announced maintenance window of the settlement bank moves to the
  window's end + 2 h (again, if that lands inside another window).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from settlewatch.common.calendar import (
    BusinessCalendar,
    CalendarName,
    built_in,
    next_business_day,
)
from settlewatch.common.events import MerchantProfile

__all__ = [
    "MAINTENANCE_GRACE",
    "Deadline",
    "DeadlineBasis",
    "Schedule",
    "Window",
    "after_maintenance",
    "deadline",
    "due_from",
]

MAINTENANCE_GRACE = timedelta(hours=2)
DeadlineBasis = Literal["calendar", "estimated"]


@dataclass(frozen=True)
class Window:
    """An announced maintenance window of a bank, [starts_at, ends_at)."""

    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Schedule:
    """The parts of a merchant profile that decide deadlines."""

    timezone: ZoneInfo
    calendar: CalendarName
    cycle: str
    cutoff: time
    due_time: str  # "HH:MM" or "24:00"
    instant_sla: timedelta | None = None

    @classmethod
    def of(cls, profile: MerchantProfile) -> Schedule:
        hours, minutes = map(int, profile.cutoff_time.split(":"))
        return cls(
            timezone=ZoneInfo(profile.timezone),
            calendar=profile.calendar,
            cycle=profile.settlement_cycle,
            cutoff=time(hours, minutes),
            due_time=profile.due_time,
            instant_sla=profile.instant_sla,
        )


@dataclass(frozen=True)
class Deadline:
    business_date: date
    due_at: datetime
    # True when a year involved is not covered by the calendar (weekdays were assumed).
    estimated: bool = False

    @property
    def basis(self) -> DeadlineBasis:
        return "estimated" if self.estimated else "calendar"


def _business_date(occurred_at: datetime, schedule: Schedule) -> date:
    local = occurred_at.astimezone(schedule.timezone)
    return local.date() + timedelta(days=1) if local.time() >= schedule.cutoff else local.date()


def _at_local(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    if hhmm == "24:00":
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    hours, minutes = map(int, hhmm.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=tz)


def _due_date(business_date: date, schedule: Schedule, calendar: BusinessCalendar) -> date:
    kind, n = schedule.cycle[0], int(schedule.cycle[1:])
    if kind == "D":
        return business_date + timedelta(days=n)
    if n == 0:  # T0
        if calendar.is_business_day(business_date):
            return business_date
        return next_business_day(calendar, business_date)
    day = business_date
    for _ in range(n):
        day = next_business_day(calendar, day)
    return day


def after_maintenance(due_at: datetime, windows: Iterable[Window]) -> datetime:
    """`due_at`, moved past every announced window it falls in (end + 2 h)."""
    ordered = sorted(windows, key=lambda w: w.starts_at)
    moved = True
    while moved:
        moved = False
        for window in ordered:
            if window.starts_at <= due_at < window.ends_at:
                due_at = window.ends_at + MAINTENANCE_GRACE
                moved = True
    return due_at


# A pure function of few distinct arguments (a schedule is shared by many merchants, a business
# date by a day's payments): memoised, it is a lookup for nearly every payment opened.
@functools.lru_cache(maxsize=4096)
def due_from(
    business_date: date, schedule: Schedule, calendar: BusinessCalendar | None = None
) -> Deadline:
    """The deadline of a payment of `business_date` (before maintenance windows) in a T or D
    cycle; `calendar` is the schedule's calendar as the log has loaded it (default: built in)."""
    calendar = calendar or built_in(schedule.calendar)
    due_date = _due_date(business_date, schedule, calendar)
    due_at = _at_local(due_date, schedule.due_time, schedule.timezone)
    years = range(business_date.year, due_date.year + 1)
    estimated = schedule.cycle[0] == "T" and not all(calendar.covers(y) for y in years)
    return Deadline(business_date, due_at, estimated)


def deadline(
    occurred_at: datetime,
    schedule: Schedule,
    windows: Iterable[Window] = (),
    *,
    calendar: BusinessCalendar | None = None,
) -> Deadline:
    """The business date and ``due_at`` of a payment made at `occurred_at`."""
    business_date = _business_date(occurred_at, schedule)
    if schedule.cycle == "instant":
        assert schedule.instant_sla is not None, "validated at ingest"
        due_at = occurred_at + schedule.instant_sla
        return Deadline(business_date, after_maintenance(due_at, windows))
    due = due_from(business_date, schedule, calendar)
    return Deadline(business_date, after_maintenance(due.due_at, windows), due.estimated)

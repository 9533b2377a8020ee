"""Business-day calendars (SPEC §5, §10): ``CN`` (PRC public holidays and adjusted working days
调休) and ``weekdays`` (Monday–Friday).

``CN`` knows the years of the chinesecalendar package (built in, authoritative) and any year an
operator loaded (SPEC §10), which overrides the package's. A year known to neither is judged by
weekdays: :meth:`BusinessCalendar.covers` tells callers so that they can say the deadline is
estimated and ask for the year to be loaded.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import chinese_calendar

__all__ = [
    "BUILT_IN_SOURCE",
    "CalendarName",
    "BusinessCalendar",
    "LoadedYear",
    "built_in",
    "built_in_years",
    "next_business_day",
]

CalendarName = Literal["CN", "weekdays"]
BUILT_IN_SOURCE = f"chinesecalendar {chinese_calendar.__version__}"


@dataclass(frozen=True)
class LoadedYear:
    """A year an operator loaded: its holidays (days off that would be weekdays) and its
    workdays (weekend days declared working days, 调休); ``version`` counts the loads."""

    version: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    source: str

    def is_business_day(self, day: date) -> bool:
        return day in self.workdays or (day.weekday() < 5 and day not in self.holidays)


@functools.cache
def _package_is_workday(day: date) -> bool | None:
    """chinesecalendar's answer (remembered: it validates its input on every call), None for a
    year it does not know."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


@functools.cache  # asked for every deadline computed (covers): the package's data is fixed
def built_in_years(name: str) -> range:
    """The years a calendar knows without any load."""
    if name != "CN":
        return range(0)
    years = [day.year for day in chinese_calendar.holidays]
    return range(min(years), max(years) + 1)


@dataclass(frozen=True)
class BusinessCalendar:
    """A named calendar: its built-in years, overridden by the `loaded` ones."""

    name: str
    loaded: Mapping[int, LoadedYear] = field(default_factory=dict)

    def is_business_day(self, day: date) -> bool:
        if (year := self.loaded.get(day.year)) is not None:
            return year.is_business_day(day)
        if self.name == "CN" and (answer := _package_is_workday(day)) is not None:
            return answer
        return day.weekday() < 5

    def covers(self, year: int) -> bool:
        """False when days of `year` are judged by the weekday fallback, not the calendar."""
        return self.name == "weekdays" or year in self.loaded or year in built_in_years(self.name)

    def with_year(self, year: int, loaded: LoadedYear) -> BusinessCalendar:
        return BusinessCalendar(self.name, {**self.loaded, year: loaded})

    # Hashable by value, as deadlines are memoised per calendar; computed once (it never changes).
    @functools.cached_property
    def _hash(self) -> int:
        return hash((self.name, tuple(sorted(self.loaded.items()))))

    def __hash__(self) -> int:
        return self._hash


@functools.cache
def built_in(name: str) -> BusinessCalendar:
    """A calendar as it is before any load."""
    return BusinessCalendar(name)


def next_business_day(calendar: BusinessCalendar, day: date) -> date:
    """The first business day strictly after `day`.

    (Not chinesecalendar's ``find_workday``, which counts from the first workday on or after.)
    """
    day += timedelta(days=1)
    while not calendar.is_business_day(day):
        day += timedelta(days=1)
    return day

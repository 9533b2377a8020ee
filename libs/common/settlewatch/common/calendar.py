"""Business-day calendars (SPEC §5): ``CN`` (PRC public holidays and adjusted working days 调休,
from the chinesecalendar package) and ``weekdays`` (Monday–Friday).

chinesecalendar only knows the years the State Council has announced. For any other year ``CN``
falls back to weekdays; :meth:`BusinessCalendar.covers` tells callers so they can surface it.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta
from typing import Literal, Protocol

import chinese_calendar

__all__ = ["CALENDARS", "BusinessCalendar", "CalendarName", "next_business_day"]

CalendarName = Literal["CN", "weekdays"]


class BusinessCalendar(Protocol):
    def is_business_day(self, day: date) -> bool: ...

    def covers(self, year: int) -> bool:
        """False when days of `year` are judged by a fallback rule, not the real calendar."""
        ...


class Weekdays:
    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5

    def covers(self, year: int) -> bool:
        return True


class ChinaCalendar:
    # The package validates its input on every call (slow); its answers never change: remember.
    @staticmethod
    @functools.cache
    def _is_business_day(day: date) -> bool:
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:  # a year not yet announced
            return day.weekday() < 5

    @staticmethod
    @functools.cache
    def _covers(year: int) -> bool:
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
        except NotImplementedError:
            return False
        return True

    def is_business_day(self, day: date) -> bool:
        return self._is_business_day(day)

    def covers(self, year: int) -> bool:
        return self._covers(year)


CALENDARS: dict[CalendarName, BusinessCalendar] = {"CN": ChinaCalendar(), "weekdays": Weekdays()}


def next_business_day(calendar: BusinessCalendar, day: date) -> date:
    """The first business day strictly after `day`.

    (Not chinesecalendar's ``find_workday``, which counts from the first workday on or after.)
    """
    day += timedelta(days=1)
    while not calendar.is_business_day(day):
        day += timedelta(days=1)
    return day

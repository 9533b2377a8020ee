"""The CN calendar as the payout reconciler uses it: chinesecalendar's years overridden by the
loaded ones in force (SPEC §10), read at the start of each round."""

from __future__ import annotations

from typing import Any

from settlewatch.common.calendar import BusinessCalendar, LoadedYear

__all__ = ["in_force"]

_IN_FORCE = """
SELECT year, version, holidays, workdays, source FROM ingest_read_calendars WHERE calendar = $1
"""


async def in_force(driver: Any, name: str) -> BusinessCalendar:
    rows = await driver.fetch(_IN_FORCE, name)
    loaded = {
        r["year"]: LoadedYear(
            r["version"], frozenset(r["holidays"]), frozenset(r["workdays"]), r["source"]
        )
        for r in rows
    }
    return BusinessCalendar(name, loaded)

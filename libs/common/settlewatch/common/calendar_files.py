"""A year of a business calendar read from a file (SPEC §10), as the body of ingest's
``PUT /v1/calendars/{calendar}/{year}``: the JSON of that body, or a CSV with one row per day
(``date`` and ``is_workday`` columns: 1 working, 0 not; other columns are ignored, so a table
such as chinesecalendar's export loads as it is). Read by ``settlewatch calendar load`` and by
the console's Calendars page; ingest checks the body as it checks any."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Any

from settlewatch.common.errors import BadInput

__all__ = ["MAX_CALENDAR_BYTES", "CalendarFileError", "read_year"]

# A year is 366 rows of a few columns (≈ 20 KB as CSV); a file far larger is not a calendar.
MAX_CALENDAR_BYTES = 1024 * 1024


class CalendarFileError(BadInput):
    """The file cannot be read as a calendar year; the message names the file and the line."""


def _days(values: list[Any], where: str) -> list[date]:
    try:
        return [date.fromisoformat(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise CalendarFileError(f"{where}: {exc}") from None


def _from_csv(text: str, name: str) -> dict[str, Any]:
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if not rows or not {"date", "is_workday"} <= set(rows[0]):
        raise CalendarFileError(f"{name}: a CSV needs the columns date and is_workday")
    holidays: list[str] = []
    workdays: list[str] = []
    for line, row in enumerate(rows, start=2):
        day = _days([row["date"]], f"{name}:{line}")[0]
        if (row["is_workday"] or "").strip() not in ("0", "1"):
            raise CalendarFileError(f"{name}:{line}: is_workday must be 0 or 1")
        working = row["is_workday"].strip() == "1"
        if not working and day.weekday() < 5:
            holidays.append(day.isoformat())
        elif working and day.weekday() >= 5:
            workdays.append(day.isoformat())
    return {"holidays": holidays, "workdays": workdays, "source": name}


def read_year(content: bytes, name: str, year: int | None = None) -> tuple[int, dict[str, Any]]:
    """The year and the API body the file `name` holds. The year is `year`, else the JSON's
    "year", else the year of its days (they must then all be of one year)."""
    if len(content) > MAX_CALENDAR_BYTES:
        raise CalendarFileError(f"{name}: larger than {MAX_CALENDAR_BYTES} bytes: not a year")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CalendarFileError(f"{name}: not UTF-8: {exc}") from None
    if name.lower().endswith(".csv"):
        body = _from_csv(text, name)
    else:
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise CalendarFileError(f"{name}: not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise CalendarFileError(f"{name}: expected a JSON object with holidays and workdays")
        year = year or body.pop("year", None)
        body.pop("calendar", None)
        body.setdefault("source", name)
    if year is None:
        days = list(body.get("holidays") or []) + list(body.get("workdays") or [])
        years = {d.year for d in _days(days, name)}
        if len(years) != 1:
            raise CalendarFileError(f"{name}: its days span {sorted(years)}: give the year")
        year = years.pop()
    if not isinstance(year, int):
        raise CalendarFileError(f"{name}: the year must be a number")
    return year, body

"""``settlewatch calendar load FILE``: a year of a business calendar loaded through ingest's API
(``PUT /v1/calendars/{calendar}/{year}``, SPEC §10), from the JSON body of that call or from a
CSV with one row per day (``date`` and ``is_workday`` columns: 1 working, 0 not; other columns
are ignored, so a table such as chinesecalendar's export loads as it is).

Exit 0 loaded (or already loaded exactly so), 1 refused.
"""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from settlewatch.common.errors import UsageError

__all__ = ["CalendarFileError", "put_year", "read_year", "render"]


class CalendarFileError(UsageError):
    """The file cannot be read as a calendar year, or ingest cannot be reached."""


def _days(values: list[str], where: str) -> list[date]:
    try:
        return [date.fromisoformat(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise CalendarFileError(f"{where}: {exc}") from None


def _from_csv(path: Path) -> dict[str, Any]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        rows = list(csv.DictReader(file))
    if not rows or not {"date", "is_workday"} <= set(rows[0]):
        raise CalendarFileError(f"{path}: a CSV needs the columns date and is_workday")
    holidays: list[str] = []
    workdays: list[str] = []
    for line, row in enumerate(rows, start=2):
        day = _days([row["date"]], f"{path}:{line}")[0]
        if row["is_workday"].strip() not in ("0", "1"):
            raise CalendarFileError(f"{path}:{line}: is_workday must be 0 or 1")
        working = row["is_workday"].strip() == "1"
        if not working and day.weekday() < 5:
            holidays.append(day.isoformat())
        elif working and day.weekday() >= 5:
            workdays.append(day.isoformat())
    return {"holidays": holidays, "workdays": workdays, "source": path.name}


def read_year(path: Path, year: int | None = None) -> tuple[int, dict[str, Any]]:
    """The year and the API body a file describes. The year is `year`, else the JSON's "year",
    else the year of its days (they must then all be of one year)."""
    if not path.is_file():
        raise CalendarFileError(f"no such file: {path}")
    if path.suffix.lower() == ".csv":
        body = _from_csv(path)
    else:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CalendarFileError(f"{path}: not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise CalendarFileError(f"{path}: expected a JSON object with holidays and workdays")
        year = year or body.pop("year", None)
        body.pop("calendar", None)
        body.setdefault("source", path.name)
    if year is None:
        days = body.get("holidays", []) + body.get("workdays", [])
        years = {d.year for d in _days(days, str(path))}
        if len(years) != 1:
            raise CalendarFileError(f"{path}: its days span {sorted(years)}: give --year")
        year = years.pop()
    return year, body


def put_year(
    url: str, token: str, calendar: str, year: int, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    try:
        response = httpx.put(
            f"{url}/v1/calendars/{calendar}/{year}",
            json=body,
            headers={"authorization": f"Bearer {token}"},
            timeout=30.0,
        )
    except httpx.TransportError as exc:
        raise CalendarFileError(f"ingest not reachable at {url}: {exc}") from None
    if response.status_code in (401, 403):
        raise CalendarFileError(f"the token was refused ({response.status_code})")
    return response.status_code, response.json()


def render(status: int, body: dict[str, Any]) -> str:
    if status not in (200, 201):
        lines = [f"refused: {body.get('detail', body.get('title'))}"]
        lines += [f"  {'/'.join(map(str, e['loc']))}: {e['msg']}" for e in body.get("errors", [])]
        return "\n".join(lines)
    head = "loaded" if status == 201 else "already loaded, unchanged"
    version = body["versions"][0]["version"]
    return (
        f"{head}: {body['calendar']} {body['year']} version {version} ({body['source']}): "
        f"{len(body['holidays'])} holidays, {len(body['workdays'])} working weekend days"
    )

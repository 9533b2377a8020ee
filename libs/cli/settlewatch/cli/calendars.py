"""``settlewatch calendar load FILE``: a year of a business calendar loaded through ingest's API
(``PUT /v1/calendars/{calendar}/{year}``, SPEC §10), from the JSON body of that call or from a
CSV with one row per day (common.calendar_files reads either).

Exit 0 loaded (or already loaded exactly so), 1 refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from settlewatch.common.calendar_files import MAX_CALENDAR_BYTES, CalendarFileError, read_year
from settlewatch.common.errors import UsageError

__all__ = ["CalendarLoadFailed", "put_year", "read_file", "render"]


class CalendarLoadFailed(UsageError):
    """The file cannot be read as a calendar year, or ingest cannot be reached."""


def read_file(path: Path, year: int | None = None) -> tuple[int, dict[str, Any]]:
    """The year and the API body the file at `path` holds (common.calendar_files)."""
    if not path.is_file():
        raise CalendarLoadFailed(f"no such file: {path}")
    with path.open("rb") as file:
        content = file.read(MAX_CALENDAR_BYTES + 1)
    try:
        return read_year(content, path.name, year)
    except CalendarFileError as exc:
        raise CalendarLoadFailed(str(exc)) from None


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
        raise CalendarLoadFailed(f"ingest not reachable at {url}: {exc}") from None
    if response.status_code in (401, 403):
        raise CalendarLoadFailed(f"the token was refused ({response.status_code})")
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

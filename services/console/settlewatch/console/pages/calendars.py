"""Calendars (SPEC §15): each business calendar's years — built in, loaded (by whom, when, which
version), and the coming ones it has no data for, where deadlines are estimated on weekdays — a
year's holidays and working weekend days, and a year loaded from a file (JSON or CSV, read by
common.calendar_files; ingest checks it as any load and moves the deadlines it changes)."""

from __future__ import annotations

from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from settlewatch.common.calendar import CalendarName
from settlewatch.common.calendar_files import MAX_CALENDAR_BYTES, CalendarFileError, read_year
from settlewatch.console.clients import ApiRefused
from settlewatch.console.context import Console, Desk
from settlewatch.console.session import check_csrf

router = APIRouter()

CALENDARS: tuple[str, ...] = get_args(CalendarName)
FORM_OVERHEAD = 16 * 1024  # the form's other fields and its multipart framing
Calendar = Annotated[CalendarName, Query()]


@router.get("/calendars")
async def calendars(
    request: Request, desk: Desk, calendar: Calendar = "CN", loaded: Annotated[int, Query()] = 0
) -> Response:
    return await _page(request, desk, calendar, loaded=loaded)


async def _page(
    request: Request,
    desk: Desk,
    calendar: str,
    *,
    loaded: int = 0,
    problem: str = "",
    fields: list[tuple[str, str]] | None = None,
    status: int = 200,
) -> Response:
    console: Console = request.app.state.console
    context = {
        "session": desk.session,
        "calendar": calendar,
        "calendars": CALENDARS,
        "years": await desk.clients.ingest.calendar(calendar),
        "loaded": loaded,
        "problem": problem,
        "fields": fields or [],
    }
    return console.pages.render(request, "calendars.html", context, status)


@router.get("/calendars/{calendar}/{year}")
async def year(
    request: Request,
    desk: Desk,
    calendar: CalendarName,
    year: Annotated[int, Path(ge=2000, le=2099)],
) -> Response:
    console: Console = request.app.state.console
    found = await desk.clients.ingest.calendar_year(calendar, year)
    return console.pages.render(
        request, "calendar_year.html", {"session": desk.session, "year": found}
    )


@router.post("/calendars")
async def load(request: Request, desk: Desk) -> Response:
    """A year from the file uploaded; its errors shown on the page, with the file's line."""
    declared = int(request.headers.get("content-length") or 0)
    if not 0 < declared <= MAX_CALENDAR_BYTES + FORM_OVERHEAD:
        return await _page(request, desk, "CN", problem="size", status=413)
    async with request.form(max_files=1, max_fields=5) as form:
        check_csrf(desk.session.csrf, str(form.get("csrf") or ""))
        calendar = str(form.get("calendar") or "")
        if calendar not in CALENDARS:
            return await _page(request, desk, "CN", problem="calendar", status=422)
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.size:
            return await _page(request, desk, calendar, problem="empty", status=422)
        content = await upload.read(MAX_CALENDAR_BYTES + 1)
        name = upload.filename or "upload"
        typed = str(form.get("year") or "").strip()
    if typed and not typed.isdigit():
        return await _page(request, desk, calendar, problem=f"{typed!r}: not a year", status=422)
    try:
        of_file, body = read_year(content, name, int(typed) if typed else None)
        loaded: dict[str, Any] = await desk.clients.ingest.load_year(calendar, of_file, body)
    except CalendarFileError as exc:
        return await _page(request, desk, calendar, problem=str(exc), status=422)
    except ApiRefused as refused:
        if refused.status in (401, 403):
            raise
        return await _page(
            request, desk, calendar, problem=refused.detail, fields=refused.fields, status=422
        )
    query = urlencode({"calendar": calendar, "loaded": loaded["year"]})
    return RedirectResponse(f"/calendars?{query}", status_code=303)

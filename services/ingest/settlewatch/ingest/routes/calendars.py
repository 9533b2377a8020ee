"""PUT/GET /v1/calendars (SPEC §10): business-calendar years an operator loads.

Each load that changes a year is kept as a new version (who, what, when); the highest is in
force and overrides chinesecalendar's year. It is published into every partition of the
transactions topic, like a maintenance window, so each matcher partition moves the deadlines
it changes at the same point of its log, and a replay of the log decides the same. Loading a
year exactly as it is in force changes nothing (200, no new version, nothing published).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import func, select, text

from settlewatch.common.auth import AcquirerOnly, Authenticated
from settlewatch.common.calendar import (
    BUILT_IN_SOURCE,
    CalendarName,
    built_in,
    built_in_years,
)
from settlewatch.common.db import transaction
from settlewatch.common.events import CalendarYearIn, CalendarYearLoaded, encode_event
from settlewatch.common.openapi import json_body
from settlewatch.common.problems import ProblemError
from settlewatch.common.publisher import BrokerUnavailable
from settlewatch.common.responses import ERRORS
from settlewatch.common.validation import parse_body, reject
from settlewatch.ingest import examples
from settlewatch.ingest.context import IngestDep
from settlewatch.ingest.metrics import EVENTS
from settlewatch.schema.reference import calendar_years as years

router = APIRouter(tags=["calendars"])

_IN = TypeAdapter(CalendarYearIn)
_LOADED = TypeAdapter(CalendarYearLoaded)
Year = Annotated[int, Path(ge=2000, le=2099)]


class Load(BaseModel):
    version: int
    source: str
    published_at: datetime | None
    loaded_by: str
    loaded_at: datetime


class CalendarYear(BaseModel):
    """A year as it is in force: loaded (its latest version) or built in (versions empty)."""

    calendar: str
    year: int
    source: str
    authoritative: bool
    holidays: list[date]
    workdays: list[date]
    versions: list[Load]


class YearSummary(BaseModel):
    year: int
    source: str | None  # None: no data, deadlines are estimated on weekdays
    authoritative: bool
    version: int | None = None
    loaded_by: str | None = None
    loaded_at: datetime | None = None


class Calendar(BaseModel):
    calendar: str
    years: list[YearSummary]


def _loads(calendar: str, year: int | None = None) -> Any:
    query = select(years).where(years.c.calendar == calendar)
    if year is not None:
        query = query.where(years.c.year == year)
    return query.order_by(years.c.year, years.c.version.desc())


@router.put(
    "/v1/calendars/{calendar}/{year}",
    status_code=201,
    summary="Load a year of a business calendar (201 new version, 200 unchanged).",
    openapi_extra=json_body(CalendarYearIn, examples.CALENDAR_YEAR),
    responses=ERRORS | {200: {"description": "The year was already loaded exactly so."}},
)
async def put_calendar_year(
    request: Request,
    response: Response,
    calendar: CalendarName,
    year: Year,
    principal: AcquirerOnly,
    ingest: IngestDep,
) -> CalendarYear:
    try:
        if calendar == "weekdays":
            msg = "weekdays is Monday to Friday every year and cannot be loaded; load CN"
            reject([{"loc": ["path", "calendar"], "msg": msg}])
        body = parse_body(await request.body(), _IN).valid
        reject(body.problems(year))
    except ProblemError:
        EVENTS.labels("calendar", "rejected").inc()
        raise
    holidays, workdays = sorted(set(body.holidays)), sorted(set(body.workdays))
    try:
        async with transaction(ingest.engine) as conn:
            # One load of a year at a time, so versions follow the order of the log.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"calendar:{calendar}:{year}"},
            )
            loads = list((await conn.execute(_loads(calendar, year))).mappings())
            current = loads[0] if loads else None
            if current is not None and (
                current["holidays"] == holidays
                and current["workdays"] == workdays
                and current["source"] == body.source
                and current["published_at"] == body.published_at
            ):
                response.status_code = 200
                return _year_out(calendar, year, loads)
            loaded = CalendarYearLoaded(
                calendar="CN",
                year=year,
                version=current["version"] + 1 if current else 1,
                holidays=holidays,
                workdays=workdays,
                source=body.source,
                published_at=body.published_at,
            )
            row = (
                (
                    await conn.execute(
                        years.insert()
                        .values(
                            **loaded.model_dump(exclude={"calendar"}),
                            calendar=calendar,
                            loaded_by=principal.scope,
                            loaded_at=func.now(),
                        )
                        .returning(years)
                    )
                )
                .mappings()
                .one()
            )
            await ingest.publisher.publish_everywhere(
                ingest.topics.transactions, encode_event("calendar", _LOADED.dump_json(loaded))
            )
    except BrokerUnavailable:
        EVENTS.labels("calendar", "unavailable").inc()
        raise  # answered 503 with Retry-After (common.problems)
    EVENTS.labels("calendar", "accepted").inc()
    return _year_out(calendar, year, [row, *loads])


def _year_out(calendar: str, year: int, loads: list[Any]) -> CalendarYear:
    """`loads` newest first."""
    current = loads[0]
    return CalendarYear(
        calendar=calendar,
        year=year,
        source=current["source"],
        authoritative=True,
        holidays=current["holidays"],
        workdays=current["workdays"],
        versions=[Load.model_validate(dict(load)) for load in loads],
    )


@router.get(
    "/v1/calendars/{calendar}",
    summary="A calendar's years: built in, loaded, and the coming ones without data.",
    responses={401: ERRORS[401]},
)
async def get_calendar(calendar: CalendarName, _: Authenticated, ingest: IngestDep) -> Calendar:
    found: dict[int, YearSummary] = {
        year: YearSummary(year=year, source=BUILT_IN_SOURCE, authoritative=True)
        for year in built_in_years(calendar)
    }
    async with ingest.engine.connect() as conn:
        for load in (await conn.execute(_loads(calendar))).mappings():
            if load["year"] not in found or found[load["year"]].version is None:
                found[load["year"]] = YearSummary(
                    year=load["year"],
                    source=load["source"],
                    authoritative=True,
                    version=load["version"],
                    loaded_by=load["loaded_by"],
                    loaded_at=load["loaded_at"],
                )
    if calendar != "weekdays":
        this_year = ingest.clock().year
        for year in (this_year, this_year + 1):
            found.setdefault(year, YearSummary(year=year, source=None, authoritative=False))
    return Calendar(calendar=calendar, years=[found[year] for year in sorted(found)])


@router.get(
    "/v1/calendars/{calendar}/{year}",
    summary="A year's holidays and working weekend days as in force, with every load of it.",
    responses={401: ERRORS[401], 404: {"description": "The calendar has no data for the year."}},
)
async def get_calendar_year(
    calendar: CalendarName, year: Year, _: Authenticated, ingest: IngestDep
) -> CalendarYear:
    async with ingest.engine.connect() as conn:
        loads = list((await conn.execute(_loads(calendar, year))).mappings())
    if loads:
        return _year_out(calendar, year, loads)
    if year not in built_in_years(calendar):
        raise ProblemError(404, f"calendar {calendar} has no data for {year}")
    package = built_in(calendar)
    days = [
        date.fromordinal(n)
        for n in range(date(year, 1, 1).toordinal(), date(year + 1, 1, 1).toordinal())
    ]
    return CalendarYear(
        calendar=calendar,
        year=year,
        source=BUILT_IN_SOURCE,
        authoritative=True,
        holidays=[d for d in days if d.weekday() < 5 and not package.is_business_day(d)],
        workdays=[d for d in days if d.weekday() >= 5 and package.is_business_day(d)],
        versions=[],
    )

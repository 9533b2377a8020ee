"""Audit (SPEC §15): who changed what through the APIs (the console's changes included, made as
the signed-in token), newest first, by token and time; and its export."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from settlewatch.console.clients import ApiRefused
from settlewatch.console.context import Console, Desk
from settlewatch.console.exports import Column, export
from settlewatch.console.listing import Cursor, Filters, TimeText, desk_time, named_fields

router = APIRouter()

PAGE_SIZE = 100
EXPORT_PAGE = 1000


def audit_filters(
    actor: Annotated[str, Query(max_length=16)] = "",
    from_: Annotated[str, Query(alias="from", max_length=40)] = "",
    to: TimeText = "",
) -> Filters:
    return {"actor": actor.strip(), "from": from_.strip(), "to": to.strip()}


AuditFilters = Annotated[Filters, Depends(audit_filters)]


def _asked(filters: Filters) -> dict[str, Any]:
    """The API's query; ValueError naming the field whose time is not one."""
    asked: dict[str, Any] = {"actor": filters["actor"]}
    for field in ("from", "to"):
        try:
            asked[field] = desk_time(filters[field])
        except ValueError:
            raise ValueError(field) from None
    return asked


@router.get("/audit")
async def audit(
    request: Request, desk: Desk, filters: AuditFilters, cursor: Cursor = ""
) -> Response:
    console: Console = request.app.state.console
    wrong: dict[str, str] = {}
    page: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        page = dict(
            await desk.clients.ingest.audit(
                _asked(filters) | {"limit": PAGE_SIZE, "cursor": cursor}
            )
        )
    except ValueError as bad:
        wrong = {str(bad): "not a time"}
    except ApiRefused as refused:
        if refused.status != 422:
            raise
        wrong = named_fields(refused)
    context = {
        "session": desk.session,
        "filters": filters,
        "wrong": wrong,
        "items": page["items"],
        "next_cursor": page["next_cursor"],
    }
    return console.pages.render(request, "audit.html", context, 422 if wrong else 200)


@router.get("/audit/export.{fmt}")
async def export_audit(
    request: Request, desk: Desk, fmt: Literal["csv", "xlsx"], filters: AuditFilters
) -> Response:
    """Every entry of the log the filter matches."""
    console: Console = request.app.state.console
    _ = console.pages.gettext(request)
    try:
        asked = _asked(filters) | {"limit": EXPORT_PAGE}
    except ValueError as bad:
        raise HTTPException(422, f"{bad}: not a time") from None

    async def fetch(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        page = await desk.clients.ingest.audit(asked | {"cursor": cursor})
        return page["items"], page["next_cursor"]

    columns = [
        Column(_("When"), lambda e: datetime.fromisoformat(e["at"])),
        Column(_("Token"), lambda e: e["actor"]),
        Column(_("Scope"), lambda e: e["scope"]),
        Column(_("Service"), lambda e: e["service"]),
        Column(_("Action"), lambda e: e["action"]),
        Column(_("Path"), lambda e: e["target"]),
        Column(_("Answer"), lambda e: e["status"]),
        Column(
            _("Details"),
            lambda e: json.dumps(e["details"], ensure_ascii=False) if e["details"] else None,
        ),
    ]
    return await export(fmt, "audit", columns, fetch)

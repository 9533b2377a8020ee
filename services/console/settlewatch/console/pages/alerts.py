"""Alerts (SPEC §15): what the merchants were told and on-call paged, filtered by type, status and
merchant; an alert's page with its evidence and notes, acknowledged with a note or resolved; the
webhook deliveries with every attempt."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from settlewatch.common.findings import KINDS
from settlewatch.console.clients import ApiRefused
from settlewatch.console.context import Console, Desk
from settlewatch.console.session import check_csrf

router = APIRouter()

PAGE_SIZE = 50
Text = Annotated[str, Query(max_length=64)]


@router.get("/alerts")
async def alerts(
    request: Request,
    desk: Desk,
    type: Text = "",  # noqa: A002 — the API's name
    status: Text = "open",
    merchant_id: Text = "",
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    console: Console = request.app.state.console
    filters = {"type": type, "status": status, "merchant_id": merchant_id}
    page = await desk.clients.alerts.alerts(filters | {"limit": PAGE_SIZE, "cursor": cursor})
    context = {
        "session": desk.session,
        "filters": filters,
        "items": page["items"],
        "next_cursor": page["next_cursor"],
        "types": sorted(KINDS),
    }
    return console.pages.render(request, "alerts.html", context)


@router.get("/alerts/deliveries")
async def deliveries(
    request: Request,
    desk: Desk,
    status: Text = "",
    merchant_id: Text = "",
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    console: Console = request.app.state.console
    filters = {"status": status, "merchant_id": merchant_id}
    page = await desk.clients.alerts.deliveries(filters | {"limit": PAGE_SIZE, "cursor": cursor})
    context = {
        "session": desk.session,
        "filters": filters,
        "items": page["items"],
        "next_cursor": page["next_cursor"],
    }
    return console.pages.render(request, "deliveries.html", context)


@router.get("/alerts/{alert_id}")
async def alert(request: Request, desk: Desk, alert_id: str) -> Response:
    return await _page(request, desk, alert_id)


async def _page(request: Request, desk: Desk, alert_id: str, problem: str = "") -> Response:
    console: Console = request.app.state.console
    found = await desk.clients.alerts.alert(alert_id)
    context = {"session": desk.session, "alert": found, "problem": problem}
    return console.pages.render(request, "alert.html", context, 409 if problem else 200)


@router.post("/alerts/{alert_id}/{action}")
async def act(
    request: Request,
    desk: Desk,
    alert_id: str,
    action: Literal["ack", "resolve"],
    note: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(desk.session.csrf, csrf)
    try:
        await desk.clients.alerts.act(alert_id, action, note.strip())
    except ApiRefused as refused:
        if refused.status != 409:
            raise
        return await _page(request, desk, alert_id, problem=refused.detail)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)

"""Alerts (SPEC §15): what the merchants were told and on-call paged, filtered by type, status and
merchant, and exported; an alert's page with its evidence and notes, acknowledged with a note or
resolved; the webhook deliveries with every attempt, and exported."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from settlewatch.common import catalogue
from settlewatch.common.findings import KINDS
from settlewatch.console.clients import ApiRefused
from settlewatch.console.context import Console, Desk
from settlewatch.console.exports import Column, export
from settlewatch.console.i18n import choose_locale
from settlewatch.console.listing import Cursor, Filters, Text
from settlewatch.console.session import check_csrf

router = APIRouter()

PAGE_SIZE = 50
EXPORT_PAGE = 1000


def alert_filters(type: Text = "", status: Text = "open", merchant_id: Text = "") -> Filters:  # noqa: A002 — the API's name
    return {"type": type.strip(), "status": status.strip(), "merchant_id": merchant_id.strip()}


def delivery_filters(status: Text = "", merchant_id: Text = "") -> Filters:
    return {"status": status.strip(), "merchant_id": merchant_id.strip()}


AlertFilters = Annotated[Filters, Depends(alert_filters)]
DeliveryFilters = Annotated[Filters, Depends(delivery_filters)]


@router.get("/alerts")
async def alerts(
    request: Request, desk: Desk, filters: AlertFilters, cursor: Cursor = ""
) -> Response:
    console: Console = request.app.state.console
    page = await desk.clients.alerts.alerts(filters | {"limit": PAGE_SIZE, "cursor": cursor})
    context = {
        "session": desk.session,
        "filters": filters,
        "items": page["items"],
        "next_cursor": page["next_cursor"],
        "types": sorted(KINDS),
    }
    return console.pages.render(request, "alerts.html", context)


@router.get("/alerts/export.{fmt}")
async def export_alerts(
    request: Request, desk: Desk, fmt: Literal["csv", "xlsx"], filters: AlertFilters
) -> Response:
    """Every alert the filter matches, with its summary in the merchant's words."""
    console: Console = request.app.state.console
    _ = console.pages.gettext(request)
    locale = choose_locale(request)

    async def fetch(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        page = await desk.clients.alerts.alerts(filters | {"limit": EXPORT_PAGE, "cursor": cursor})
        return page["items"], page["next_cursor"]

    columns = [
        Column(_("Raised"), lambda a: datetime.fromisoformat(a["created_at"])),
        Column(_("Alert"), lambda a: a["alert_id"]),
        Column(_("Type"), lambda a: catalogue.webhook_type(a["type"], locale)),
        Column(_("Status"), lambda a: catalogue.say(catalogue.ALERT_STATUSES, a["status"], locale)),
        Column(_("Merchant"), lambda a: a["merchant_id"]),
        Column(_("Transaction"), lambda a: a["txn_id"]),
        Column(_("Bank"), lambda a: a["bank_code"]),
        Column(_("Summary"), lambda a: a["summary"]),
    ]
    return await export(fmt, "alerts", columns, fetch)


@router.get("/alerts/deliveries")
async def deliveries(
    request: Request, desk: Desk, filters: DeliveryFilters, cursor: Cursor = ""
) -> Response:
    console: Console = request.app.state.console
    page = await desk.clients.alerts.deliveries(filters | {"limit": PAGE_SIZE, "cursor": cursor})
    context = {
        "session": desk.session,
        "filters": filters,
        "items": page["items"],
        "next_cursor": page["next_cursor"],
    }
    return console.pages.render(request, "deliveries.html", context)


@router.get("/alerts/deliveries/export.{fmt}")
async def export_deliveries(
    request: Request, desk: Desk, fmt: Literal["csv", "xlsx"], filters: DeliveryFilters
) -> Response:
    """Every delivery the filter matches: one row each, its last attempt's answer."""
    console: Console = request.app.state.console
    _ = console.pages.gettext(request)
    locale = choose_locale(request)
    states = {"pending": _("sending"), "delivered": _("delivered"), "failed": _("failed")}

    async def fetch(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        page = await desk.clients.alerts.deliveries(
            filters | {"limit": EXPORT_PAGE, "cursor": cursor}
        )
        return page["items"], page["next_cursor"]

    def last(d: dict[str, Any], field: str) -> Any:
        return d["attempts"][-1][field] if d["attempts"] else None

    columns = [
        Column(_("When"), lambda d: datetime.fromisoformat(d["created_at"])),
        Column(_("Delivery"), lambda d: d["delivery_id"]),
        Column(_("Merchant"), lambda d: d["merchant_id"]),
        Column(_("Type"), lambda d: catalogue.webhook_type(d["type"], locale)),
        Column(_("Status"), lambda d: states.get(d["status"], d["status"])),
        Column(_("Alerts"), lambda d: len(d["alert_ids"])),
        Column(_("Attempts"), lambda d: len(d["attempts"])),
        Column(_("Answer"), lambda d: last(d, "status_code")),
        Column(_("Error"), lambda d: d["last_error"]),
    ]
    return await export(fmt, "deliveries", columns, fetch)


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

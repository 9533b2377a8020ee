"""Merchants (SPEC §15): the profiles, found by id or name and by settlement bank, and export; a
merchant's page with how and when it is paid, where its webhooks go, a test message sent to its
webhook and the deliveries to it, and links to its payments, alerts, exceptions and books."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from settlewatch.console.clients import ApiRefused
from settlewatch.console.context import Console, Desk
from settlewatch.console.exports import Column, export
from settlewatch.console.listing import Cursor, Filters, Text, named_fields
from settlewatch.console.session import check_csrf

router = APIRouter()

PAGE_SIZE = 50
EXPORT_PAGE = 1000
RECENT_DELIVERIES = 10


def merchant_filters(q: Text = "", settlement_bank: Text = "") -> Filters:
    return {"q": q.strip(), "settlement_bank": settlement_bank.strip()}


MerchantFilters = Annotated[Filters, Depends(merchant_filters)]


@router.get("/merchants")
async def merchants(
    request: Request, desk: Desk, filters: MerchantFilters, cursor: Cursor = ""
) -> Response:
    console: Console = request.app.state.console
    wrong: dict[str, str] = {}
    page: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        page = dict(
            await desk.clients.ingest.merchants(filters | {"limit": PAGE_SIZE, "cursor": cursor})
        )
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
    return console.pages.render(request, "merchants.html", context, 422 if wrong else 200)


@router.get("/merchants/export.{fmt}")
async def export_merchants(
    request: Request, desk: Desk, fmt: Literal["csv", "xlsx"], filters: MerchantFilters
) -> Response:
    """Every merchant the filter finds, as the list shows them."""
    console: Console = request.app.state.console
    _ = console.pages.gettext(request)

    async def fetch(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        page = await desk.clients.ingest.merchants(
            filters | {"limit": EXPORT_PAGE, "cursor": cursor}
        )
        return page["items"], page["next_cursor"]

    columns = [
        Column(_("Merchant"), lambda m: m["merchant_id"]),
        Column(_("Name"), lambda m: m["name"]),
        Column(_("Settlement bank"), lambda m: m["settlement_bank"]),
        Column(_("Settlement cycle"), lambda m: m["settlement_cycle"]),
        Column(_("Time zone"), lambda m: m["timezone"]),
        Column(_("Calendar"), lambda m: m["calendar"]),
        Column(_("Webhook"), lambda m: (m.get("webhook") or {}).get("url")),
        Column(_("Updated"), lambda m: m["updated_at"]),
    ]
    return await export(fmt, "merchants", columns, fetch)


@router.get("/merchants/{merchant_id}")
async def merchant(request: Request, desk: Desk, merchant_id: str, sent: Text = "") -> Response:
    console: Console = request.app.state.console
    found, deliveries = await asyncio.gather(
        desk.clients.ingest.merchant(merchant_id),
        desk.clients.alerts.deliveries({"merchant_id": merchant_id, "limit": RECENT_DELIVERIES}),
    )
    context = {
        "session": desk.session,
        "merchant": found,
        "deliveries": deliveries["items"],
        "sent": sent,
    }
    return console.pages.render(request, "merchant.html", context)


@router.post("/merchants/{merchant_id}/test")
async def send_test(
    request: Request,
    desk: Desk,
    merchant_id: str,
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """A test message to the merchant's webhook, sent and retried as any delivery."""
    check_csrf(desk.session.csrf, csrf)
    delivery_id = await desk.clients.alerts.send_test(merchant_id)
    return RedirectResponse(
        f"/merchants/{quote(merchant_id, safe='')}?sent={quote(delivery_id)}", status_code=303
    )

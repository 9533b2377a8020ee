"""Payouts (SPEC §15): what each report said the bank would pay and whether its credit came,
by status, merchant and value date, and exported; a payout's page with the credit it was paired
with and its lines, each with the payment it settled."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from settlewatch.common import catalogue
from settlewatch.common.money import major
from settlewatch.console.context import Console, Desk
from settlewatch.console.exports import Column, export
from settlewatch.console.i18n import choose_locale
from settlewatch.console.listing import Cursor, DateText, Filters, Text

router = APIRouter()

PAGE_SIZE = 50
EXPORT_PAGE = 500  # recon's largest page of payouts


def payout_filters(
    status: Text = "",
    merchant_id: Text = "",
    from_: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: DateText = "",
) -> Filters:
    given = {"status": status, "merchant_id": merchant_id, "from": from_, "to": to}
    return {name: value.strip() for name, value in given.items()}


PayoutFilters = Annotated[Filters, Depends(payout_filters)]


@router.get("/payouts")
async def payouts(
    request: Request, desk: Desk, filters: PayoutFilters, cursor: Cursor = ""
) -> Response:
    console: Console = request.app.state.console
    page = await desk.clients.recon.payouts(filters | {"limit": PAGE_SIZE, "cursor": cursor})
    context = {
        "session": desk.session,
        "filters": filters,
        "items": page["items"],
        "next_cursor": page["next_cursor"],
        "statuses": tuple(catalogue.PAYOUT_STATUSES),
    }
    return console.pages.render(request, "payouts.html", context)


@router.get("/payouts/export.{fmt}")
async def export_payouts(
    request: Request, desk: Desk, fmt: Literal["csv", "xlsx"], filters: PayoutFilters
) -> Response:
    """Every payout the filter matches."""
    console: Console = request.app.state.console
    _ = console.pages.gettext(request)
    locale = choose_locale(request)

    async def fetch(cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        page = await desk.clients.recon.payouts(filters | {"limit": EXPORT_PAGE, "cursor": cursor})
        return page["items"], page["next_cursor"]

    columns = [
        Column(_("Payout"), lambda p: p["payout_id"]),
        Column(
            _("Status"), lambda p: catalogue.say(catalogue.PAYOUT_STATUSES, p["status"], locale)
        ),
        Column(_("Merchant"), lambda p: p["merchant_id"]),
        Column(_("Amount"), lambda p: major(p["amount_minor"], p["currency"])),
        Column(_("Currency"), lambda p: p["currency"]),
        Column(
            _("Value date"),
            lambda p: date.fromisoformat(p["value_date"]) if p["value_date"] else None,
        ),
        Column(_("Reference"), lambda p: p["reference"]),
    ]
    return await export(fmt, "payouts", columns, fetch)


@router.get("/payouts/{payout_id}")
async def payout(request: Request, desk: Desk, payout_id: str) -> Response:
    console: Console = request.app.state.console
    found = await desk.clients.recon.payout(payout_id)
    return console.pages.render(request, "payout.html", {"session": desk.session, "payout": found})

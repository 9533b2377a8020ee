"""Payouts (SPEC §15): what each report said the bank would pay and whether its credit came,
by status, merchant and value date; a payout's page with the credit it was paired with and its
lines, each with the payment it settled."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from settlewatch.console.context import Console, Desk

router = APIRouter()

PAGE_SIZE = 50
Text = Annotated[str, Query(max_length=64)]


@router.get("/payouts")
async def payouts(
    request: Request,
    desk: Desk,
    status: Text = "",
    merchant_id: Text = "",
    from_: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: Annotated[str, Query(max_length=10)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    console: Console = request.app.state.console
    filters = {"status": status, "merchant_id": merchant_id, "from": from_, "to": to}
    page = await desk.clients.recon.payouts(filters | {"limit": PAGE_SIZE, "cursor": cursor})
    context = {
        "session": desk.session,
        "filters": filters,
        "items": page["items"],
        "next_cursor": page["next_cursor"],
        "statuses": ("expected", "arrived", "short", "missing", "unexpected"),
    }
    return console.pages.render(request, "payouts.html", context)


@router.get("/payouts/{payout_id}")
async def payout(request: Request, desk: Desk, payout_id: str) -> Response:
    console: Console = request.app.state.console
    found = await desk.clients.recon.payout(payout_id)
    return console.pages.render(request, "payout.html", {"session": desk.session, "payout": found})

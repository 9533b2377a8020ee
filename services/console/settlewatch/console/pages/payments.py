"""Payments (SPEC §15): search by every filter of §12 — the RRN on a POS slip first — page by
page, and export; a payment's page with its deadline and why, its timeline, its findings, how it
was matched, the report line and the payout that settled it, and its evidence PDF, its times in
the merchant's zone."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from settlewatch.common.catalogue import PAYMENT_KINDS, PAYMENT_STATUSES, say
from settlewatch.common.money import major
from settlewatch.console.clients import ApiRefused
from settlewatch.console.clients.matcher import Payment
from settlewatch.console.context import Console, Desk
from settlewatch.console.exports import Column, export
from settlewatch.console.i18n import choose_locale
from settlewatch.console.listing import Cursor, Filters, Text, TimeText, desk_time, named_fields

router = APIRouter()

PAGE_SIZE = 50
EXPORT_PAGE = 1000  # the API's largest page


def payment_filters(
    desk: Desk,
    merchant_id: Text = "",
    status: Text = "",
    from_: Annotated[str, Query(alias="from", max_length=40)] = "",
    to: TimeText = "",
    terminal_id: Text = "",
    rrn: Text = "",
    bank_code: Text = "",
) -> Filters:
    given = {"merchant_id": merchant_id, "status": status, "from": from_, "to": to}
    given |= {"terminal_id": terminal_id, "rrn": rrn, "bank_code": bank_code}
    shown = {name: value.strip() for name, value in given.items()}
    if desk.session.merchant_id:
        shown["merchant_id"] = desk.session.merchant_id
    return shown


PaymentFilters = Annotated[Filters, Depends(payment_filters)]


def _asked(filters: Filters) -> dict[str, Any]:
    """The API's query; ValueError naming the field whose time is not one."""
    asked: dict[str, Any] = dict(filters)
    for field in ("from", "to"):
        try:
            asked[field] = desk_time(filters[field])
        except ValueError:
            raise ValueError(field) from None
    return asked


@router.get("/payments")
async def payments(
    request: Request, desk: Desk, filters: PaymentFilters, cursor: Cursor = ""
) -> Response:
    console: Console = request.app.state.console
    wrong: dict[str, str] = {}
    page: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        asked = _asked(filters) | {"limit": PAGE_SIZE, "cursor": cursor}
        page = dict(await desk.clients.matcher.payments(asked))
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
        "searched": any(filters.values()) or bool(cursor),
    }
    return console.pages.render(request, "payments.html", context, 422 if wrong else 200)


@router.get("/payments/export.{fmt}")
async def export_payments(
    request: Request, desk: Desk, fmt: Literal["csv", "xlsx"], filters: PaymentFilters
) -> Response:
    """Every payment the filter matches, as the list shows them."""
    console: Console = request.app.state.console
    _ = console.pages.gettext(request)
    locale = choose_locale(request)
    try:
        asked = _asked(filters) | {"limit": EXPORT_PAGE}
    except ValueError as bad:
        raise HTTPException(422, f"{bad}: not a time") from None

    async def fetch(cursor: str | None) -> tuple[list[Payment], str | None]:
        page = await desk.clients.matcher.payments(asked | {"cursor": cursor})
        return page["items"], page["next_cursor"]

    columns = [
        Column(_("Time"), lambda p: datetime.fromisoformat(p["occurred_at"])),
        Column(_("Transaction"), lambda p: p["txn_id"]),
        Column(_("Merchant"), lambda p: p["merchant_id"]),
        Column(_("Kind"), lambda p: say(PAYMENT_KINDS, p["kind"], locale)),
        Column(_("Amount"), lambda p: major(p["amount_minor"], p["currency"])),
        Column(_("Currency"), lambda p: p["currency"]),
        Column(_("Status"), lambda p: say(PAYMENT_STATUSES, p["status"], locale)),
        Column(_("Due"), lambda p: datetime.fromisoformat(p["due_at"])),
        Column(_("Bank"), lambda p: p["bank_code"]),
        Column(_("Terminal"), lambda p: p["terminal_id"]),
        Column(_("RRN"), lambda p: p["rrn"]),
    ]
    return await export(fmt, "payments", columns, fetch)


@router.get("/payments/{txn_id}")
async def payment(request: Request, desk: Desk, txn_id: str) -> Response:
    console: Console = request.app.state.console
    found, evidence = await asyncio.gather(
        desk.clients.matcher.payment(txn_id),
        desk.clients.matcher.evidence(txn_id, choose_locale(request)),
    )
    moved = [e for e in found["history"] if e["code"].startswith("moved_by_")]
    context = {
        "session": desk.session,
        "payment": found,
        "evidence": evidence,
        "zone": evidence["timezone"],  # the merchant's: the page's times are its
        "moved": moved,
    }
    return console.pages.render(request, "payment.html", context)


@router.get("/payments/{txn_id}/evidence.pdf")
async def evidence(request: Request, desk: Desk, txn_id: str) -> Response:
    pdf = await desk.clients.matcher.evidence_pdf(txn_id, choose_locale(request))
    name = f"settlewatch-evidence-{txn_id}.pdf"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )

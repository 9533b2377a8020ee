"""Payments (SPEC §15): search by every filter of §12 — the RRN on a POS slip first — page by
page; a payment's page with its deadline and why, its timeline, how it was matched, and its
evidence PDF."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from settlewatch.common.catalogue import PAYMENT_KINDS, PAYMENT_STATUSES, say
from settlewatch.common.events import profile_default
from settlewatch.common.money import major
from settlewatch.console.clients import ApiRefused
from settlewatch.console.clients.matcher import Payment
from settlewatch.console.context import Console, Desk
from settlewatch.console.exports import Column, export
from settlewatch.console.i18n import choose_locale

router = APIRouter()

PAGE_SIZE = 50
EXPORT_PAGE = 1000  # the API's largest page
Text = Annotated[str, Query(max_length=64)]


def aware(value: str) -> str | None:
    """A time typed in the desk's zone (a browser's datetime-local has none) as ISO 8601."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(profile_default("timezone")))
    return moment.isoformat()


@router.get("/payments")
async def payments(
    request: Request,
    desk: Desk,
    merchant_id: Text = "",
    status: Text = "",
    from_: Annotated[str, Query(alias="from", max_length=40)] = "",
    to: Annotated[str, Query(max_length=40)] = "",
    terminal_id: Text = "",
    rrn: Text = "",
    bank_code: Text = "",
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    console: Console = request.app.state.console
    shown = {
        "merchant_id": desk.session.merchant_id or merchant_id.strip(),
        "status": status,
        "from": from_,
        "to": to,
        "terminal_id": terminal_id.strip(),
        "rrn": rrn.strip(),
        "bank_code": bank_code.strip(),
    }
    wrong: dict[str, str] = {}
    asked: dict[str, Any] = dict(shown)
    for field in ("from", "to"):
        try:
            asked[field] = aware(shown[field]) if shown[field] else None
        except ValueError:
            wrong[field] = "not a time"
    page: dict[str, Any] = {"items": [], "next_cursor": None}
    if not wrong:
        try:
            page = dict(
                await desk.clients.matcher.payments(asked | {"limit": PAGE_SIZE, "cursor": cursor})
            )
        except ApiRefused as refused:
            if refused.status != 422:
                raise
            wrong = {loc.rsplit(".", 1)[-1]: message for loc, message in refused.fields}
            wrong = wrong or {"cursor": refused.detail}
    context = {
        "session": desk.session,
        "filters": shown,
        "wrong": wrong,
        "items": page["items"],
        "next_cursor": page["next_cursor"],
        "searched": any(shown.values()) or bool(cursor),
    }
    return console.pages.render(request, "payments.html", context, 422 if wrong else 200)


@router.get("/payments/export.{fmt}")
async def export_payments(
    request: Request,
    desk: Desk,
    fmt: Literal["csv", "xlsx"],
    merchant_id: Text = "",
    status: Text = "",
    from_: Annotated[str, Query(alias="from", max_length=40)] = "",
    to: Annotated[str, Query(max_length=40)] = "",
    terminal_id: Text = "",
    rrn: Text = "",
    bank_code: Text = "",
) -> Response:
    """Every payment the filter matches, as the list shows them."""
    console: Console = request.app.state.console
    _ = console.pages.gettext(request)
    locale = choose_locale(request)
    asked: dict[str, Any] = {
        "merchant_id": desk.session.merchant_id or merchant_id.strip(),
        "status": status,
        "terminal_id": terminal_id.strip(),
        "rrn": rrn.strip(),
        "bank_code": bank_code.strip(),
        "limit": EXPORT_PAGE,
    }
    try:
        asked |= {"from": aware(from_) if from_ else None, "to": aware(to) if to else None}
    except ValueError:
        raise HTTPException(422, "from/to: not a time") from None

    async def fetch(cursor: str | None) -> tuple[list[Payment], str | None]:
        page = await desk.clients.matcher.payments(asked | {"cursor": cursor})
        return page["items"], page["next_cursor"]

    columns = [
        Column(_("Time"), lambda p: _local(p["occurred_at"])),
        Column(_("Transaction"), lambda p: p["txn_id"]),
        Column(_("Merchant"), lambda p: p["merchant_id"]),
        Column(_("Kind"), lambda p: say(PAYMENT_KINDS, p["kind"], locale)),
        Column(_("Amount"), lambda p: major(p["amount_minor"], p["currency"])),
        Column(_("Currency"), lambda p: p["currency"]),
        Column(_("Status"), lambda p: say(PAYMENT_STATUSES, p["status"], locale)),
        Column(_("Due"), lambda p: _local(p["due_at"])),
        Column(_("Bank"), lambda p: p["bank_code"]),
        Column(_("Terminal"), lambda p: p["terminal_id"]),
        Column(_("RRN"), lambda p: p["rrn"]),
    ]
    return await export(fmt, "payments", columns, fetch)


def _local(value: str | None) -> datetime | None:
    """An API time in the desk's zone (the lists' zone), for a spreadsheet's cell."""
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(ZoneInfo(profile_default("timezone")))


@router.get("/payments/{txn_id}")
async def payment(request: Request, desk: Desk, txn_id: str) -> Response:
    console: Console = request.app.state.console
    found = await desk.clients.matcher.payment(txn_id)
    moved = [e for e in found["history"] if e["code"].startswith("moved_by_")]
    context = {"session": desk.session, "payment": found, "moved": moved}
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

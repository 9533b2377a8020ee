"""The matcher's read API (SPEC §4, §12): one payment with its history and its evidence, the
payment search of the ops desk, and a merchant's summary."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from cachetools import LRUCache
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from settlewatch.common.auth import (
    AcquirerOnly,
    Authenticated,
    merchant_scope,
    not_found_unless_allowed,
)
from settlewatch.common.catalogue import HistoryArgs, history_text
from settlewatch.common.cursors import decode_cursor, encode_cursor
from settlewatch.common.events import ID_PATTERN, QueryTime
from settlewatch.common.money import Locale
from settlewatch.common.problems import ProblemError
from settlewatch.common.rate_limits import RateLimits
from settlewatch.matcher.codec import payment_from_row
from settlewatch.matcher.core.model import OWED, Payment, PaymentKind, Status
from settlewatch.matcher.evidence import Evidence, document, gather
from settlewatch.matcher.search import Filters, payments, search_query
from settlewatch.schema import matcher as tables

router = APIRouter(tags=["payments"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown bearer token."},
    404: {"description": "No such payment or merchant (or not yours)."},
}


class HistoryEntry(BaseModel):
    at: datetime
    event: str  # in English; `code` and `args` let a client word it in its own language
    code: str  # common.catalogue.HISTORY
    args: HistoryArgs


class PaymentOut(BaseModel):
    txn_id: str
    merchant_id: str
    kind: PaymentKind
    status: str
    amount_minor: int  # signed: refunds, chargebacks and debits are negative
    currency: str
    occurred_at: datetime
    bank_code: str
    # What a POS slip and a bank's report line show: how a person finds the payment again.
    terminal_id: str | None
    rrn: str | None
    stan: str | None
    auth_code: str | None
    business_date: str
    due_at: datetime
    # "estimated" when the merchant's calendar had no data for a year the deadline crosses:
    # business days were taken to be Monday–Friday (SPEC §10).
    deadline_basis: Literal["calendar", "estimated"]
    expected_net_minor: int | None  # None: no rule of the fee schedule fits the payment
    settled_at: datetime | None
    settlement_id: str | None
    matched_by: str | None  # for a settlement file's line: the rule that matched it (SPEC §9)
    settled_net_minor: int | None
    history: list[HistoryEntry]


class PaymentPage(BaseModel):
    items: list[PaymentOut]
    next_cursor: str | None  # None: this was the last page


Id = Annotated[str | None, Query(pattern=ID_PATTERN)]
Rrn = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9]{1,32}$")]


class Totals(BaseModel):
    currency: str
    count: int
    amount_minor: int


class MerchantSummary(BaseModel):
    merchant_id: str
    pending: list[Totals]
    overdue: list[Totals]
    oldest_pending_occurred_at: datetime | None


@router.get("/v1/payments/{txn_id}", summary="A payment's status and history.", responses=_ERRORS)
async def get_payment(txn_id: str, request: Request, principal: Authenticated) -> PaymentOut:
    async with request.app.state.resources.engine.connect() as conn:
        payment = await _payment(conn, txn_id)
    if payment is None:
        raise ProblemError(404, "payment not found")
    not_found_unless_allowed(principal, payment.merchant_id, "payment")
    return _out(payment)


@router.get(
    "/v1/payments",
    summary="Payments, newest first, by merchant, status, time, terminal, rrn or bank; a "
    "merchant token sees only its own (SPEC §12).",
    responses=_ERRORS | {422: {"description": "A bad filter or cursor, named."}},
)
async def search_payments(
    request: Request,
    principal: Authenticated,
    merchant_id: Id = None,
    status: Status | None = None,
    from_: Annotated[QueryTime | None, Query(alias="from")] = None,
    to: QueryTime | None = None,
    terminal_id: Id = None,
    rrn: Rrn = None,
    bank_code: Id = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> PaymentPage:
    after = decode_cursor(cursor)
    filters = Filters(
        merchant_id=merchant_scope(principal, merchant_id),
        status=status,
        since=from_,
        until=to,
        terminal_id=terminal_id,
        rrn=rrn,
        bank_code=bank_code,
    )
    async with request.app.state.resources.engine.connect() as conn:
        rows = (await conn.execute(search_query(filters, after, limit))).all()
    items = [_out(payment_from_row(row)) for row in rows]
    last = items[-1] if len(items) == limit else None
    return PaymentPage(
        items=items, next_cursor=encode_cursor(last.occurred_at, last.txn_id) if last else None
    )


PDF_COST = 500  # requests a PDF render counts as: ≈ 0.5 s of CPU, an ordinary request ≈ 1 ms
PDFS_KEPT = 64  # rendered PDFs kept by content, per process (≈ 100 KB each)


@router.get(
    "/v1/payments/{txn_id}/evidence",
    summary="What a merchant takes to the bank: the transaction, the receiving account (masked), "
    "expected and received amounts, the settlement lines and payout, the timeline and what to "
    "ask; JSON, or a PDF with format=pdf, in the merchant's locale unless `locale` says.",
    response_model=Evidence,
    responses=_ERRORS
    | {200: {"content": {"application/pdf": {}}, "description": "The evidence."}}
    | {503: {"description": "format=pdf and the PDF font is not installed."}},
)
async def payment_evidence(
    txn_id: str,
    request: Request,
    principal: Authenticated,
    format: Literal["json", "pdf"] = "json",  # noqa: A002 — the query parameter's name
    locale: Locale | None = None,
) -> Response:
    async with request.app.state.resources.engine.connect() as conn:
        payment = await _payment(conn, txn_id)
        if payment is None:
            raise ProblemError(404, "payment not found")
        gathered = await gather(conn, payment)
    not_found_unless_allowed(principal, gathered.payment.merchant_id, "payment")
    evidence = document(gathered, locale, datetime.now(UTC))
    if format == "json":
        return Response(evidence.model_dump_json(), media_type="application/json")
    font: Path = request.app.state.pdf_font
    if not font.is_file():
        raise ProblemError(
            503,
            f"the PDF font {font} is not installed: apt-get install fonts-noto-cjk, or set "
            "SETTLEWATCH_PDF_FONT",
        )
    # The same evidence renders the same PDF: kept by content (its generation time aside, so a
    # PDF shows when its content was first rendered); a render counts as PDF_COST requests.
    key = hashlib.sha256(
        f"{font}\0{evidence.model_dump_json(exclude={'generated_at'})}".encode()
    ).hexdigest()
    pdfs: LRUCache[str, bytes] = request.app.state.pdfs
    if (pdf := pdfs.get(key)) is None:
        limits: RateLimits = request.app.state.rate_limits
        limits.hit(principal.token_id, PDF_COST)
        # Imported at the first PDF, not at start: fpdf takes ≈ 0.4 s to import, which a
        # restarted matcher would add to the time before it takes its partitions back.
        from settlewatch.matcher.evidence_pdf import render

        pdf = await asyncio.to_thread(render, evidence, font)  # ≈ 0.5 s: not on the event loop
        pdfs[key] = pdf
    name = f"settlewatch-evidence-{txn_id}.pdf"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"content-disposition": f'inline; filename="{name}"'},
    )


async def _payment(conn: AsyncConnection, txn_id: str) -> Payment | None:
    query = payments().where(tables.payments.c.txn_id == txn_id)
    row = (await conn.execute(query)).first()
    return payment_from_row(row) if row is not None else None


def _out(payment: Payment) -> PaymentOut:
    latest = payment.latest_settlement
    settled = latest if latest is not None and latest.succeeded else None
    return PaymentOut(
        txn_id=payment.txn_id,
        merchant_id=payment.merchant_id,
        kind=payment.kind,
        status=payment.status,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        occurred_at=payment.occurred_at,
        bank_code=payment.bank_code,
        terminal_id=payment.evidence.get("terminal_id"),
        rrn=payment.evidence.get("rrn"),
        stan=payment.evidence.get("stan"),
        auth_code=payment.evidence.get("auth_code"),
        business_date=payment.business_date.isoformat(),
        due_at=payment.due_at,
        deadline_basis=payment.deadline_basis,
        expected_net_minor=payment.expected_net_minor,
        settled_at=settled.occurred_at if settled else None,
        settlement_id=latest.settlement_id if latest else None,
        matched_by=latest.matched_by if latest else None,
        settled_net_minor=settled.net_minor if settled else None,
        history=[
            HistoryEntry(at=at, event=history_text(code, args, "en"), code=code, args=args)
            for at, code, args in sorted(payment.history, key=lambda entry: entry[0])  # stable
        ],
    )


class BankTotals(Totals):
    bank_code: str
    status: Literal["pending", "overdue"]


class BankSummary(BaseModel):
    items: list[BankTotals]  # by bank, then status and currency


@router.get(
    "/v1/banks/summary",
    summary="Payments still owed by each bank: counts and amounts pending and overdue per "
    "currency (the ops desk's overview; every merchant's, so an acquirer token's only).",
    responses=_ERRORS | {403: {"description": "Not an acquirer token."}},
)
async def bank_summary(request: Request, _: AcquirerOnly) -> BankSummary:
    p = tables.payment_states.c
    totals = (
        select(
            p.bank_code,
            p.status,
            p.currency,
            func.count(),
            func.coalesce(func.sum(p.amount_minor), 0),
        )
        .where(p.status.in_(sorted(OWED)))
        .group_by(p.bank_code, p.status, p.currency)
        .order_by(p.bank_code, p.status, p.currency)
    )
    async with request.app.state.resources.engine.connect() as conn:
        rows = (await conn.execute(totals)).all()
    return BankSummary(
        items=[
            BankTotals(
                bank_code=bank, status=status, currency=currency, count=n, amount_minor=amount
            )
            for bank, status, currency, n, amount in rows
        ]
    )


@router.get(
    "/v1/merchants/{merchant_id}/summary",
    summary="Counts and amounts pending and overdue per currency.",
    responses=_ERRORS,
)
async def merchant_summary(
    merchant_id: str, request: Request, principal: Authenticated
) -> MerchantSummary:
    not_found_unless_allowed(principal, merchant_id, "merchant")
    p = tables.payment_states.c
    # Signed as the bank books them: a pending refund is money the merchant owes back.
    totals = (
        select(p.status, p.currency, func.count(), func.coalesce(func.sum(p.amount_minor), 0))
        .where(p.merchant_id == merchant_id, p.status.in_(sorted(OWED)))
        .group_by(p.status, p.currency)
        .order_by(p.currency)
    )
    f = tables.payments.c
    oldest = (  # from the merchant's pending states (its summary index) to their facts
        select(func.min(f.occurred_at))
        .select_from(
            tables.payment_states.join(
                tables.payments, and_(f.txn_id == p.txn_id, f.business_date == p.business_date)
            )
        )
        .where(p.merchant_id == merchant_id, p.status == "pending")
    )
    async with request.app.state.resources.engine.connect() as conn:
        rows = (await conn.execute(totals)).all()
        oldest_pending = await conn.scalar(oldest)
    by_status: dict[str, list[Totals]] = {"pending": [], "overdue": []}
    for status, currency, count, amount in rows:
        by_status[status].append(Totals(currency=currency, count=count, amount_minor=amount))
    return MerchantSummary(
        merchant_id=merchant_id,
        pending=by_status["pending"],
        overdue=by_status["overdue"],
        oldest_pending_occurred_at=oldest_pending,
    )

"""The matcher's read API (SPEC §4): one payment with its history, and a merchant's summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import func, select

from settlewatch.common.auth import Authenticated, not_found_unless_allowed
from settlewatch.common.problems import ProblemError
from settlewatch.matcher.codec import payment_from_json
from settlewatch.matcher.core.model import OWED, PaymentKind
from settlewatch.schema import matcher as tables

router = APIRouter(tags=["payments"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown bearer token."},
    404: {"description": "No such payment or merchant (or not yours)."},
}


class HistoryEntry(BaseModel):
    at: datetime
    event: str


class PaymentOut(BaseModel):
    txn_id: str
    merchant_id: str
    kind: PaymentKind
    status: str
    amount_minor: int  # signed: refunds, chargebacks and debits are negative
    currency: str
    occurred_at: datetime
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
        body = await conn.scalar(
            select(tables.payments.c.body).where(tables.payments.c.txn_id == txn_id)
        )
    if body is None:
        raise ProblemError(404, "payment not found")
    payment = payment_from_json(body)
    not_found_unless_allowed(principal, payment.merchant_id, "payment")
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
        business_date=payment.business_date.isoformat(),
        due_at=payment.due_at,
        deadline_basis=payment.deadline_basis,
        expected_net_minor=payment.expected_net_minor,
        settled_at=settled.occurred_at if settled else None,
        settlement_id=latest.settlement_id if latest else None,
        matched_by=latest.matched_by if latest else None,
        settled_net_minor=settled.net_minor if settled else None,
        history=[
            HistoryEntry(at=at, event=event)
            for at, event in sorted(payment.history, key=lambda entry: entry[0])  # stable
        ],
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
    p = tables.payments.c
    # Signed as the bank books them: a pending refund is money the merchant owes back.
    totals = (
        select(p.status, p.currency, func.count(), func.coalesce(func.sum(p.amount_minor), 0))
        .where(p.merchant_id == merchant_id, p.status.in_(sorted(OWED)))
        .group_by(p.status, p.currency)
        .order_by(p.currency)
    )
    oldest = select(func.min(p.occurred_at)).where(
        p.merchant_id == merchant_id, p.status == "pending"
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

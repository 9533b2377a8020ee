"""A payment's evidence (SPEC §12): what a merchant takes to the bank — the transaction, the
receiving account (masked), what was expected and what arrived, the bank's settlement lines
and payout, the timeline, the alerts raised, and what to ask the bank, in the merchant's
locale. ``gather`` reads it; ``document`` is pure (the PDF renders the same document)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from settlewatch.common.catalogue import history_text
from settlewatch.common.events import mask_account
from settlewatch.common.money import Locale, money
from settlewatch.matcher.core.model import Payment, SettlementFact

__all__ = [
    "Evidence",
    "Gathered",
    "document",
    "gather",
]


class Account(BaseModel):
    holder: str
    bank_name: str
    number: str  # masked: 6222 **** **** 1234


class Transaction(BaseModel):
    txn_id: str
    kind: str
    amount_minor: int  # signed as the bank books it
    currency: str
    occurred_at: datetime
    business_date: str
    terminal_id: str | None
    rrn: str | None
    stan: str | None
    auth_code: str | None
    card_type: str | None
    bank_code: str
    settlement_cycle: str


class Amounts(BaseModel):
    gross_minor: int
    fee_minor: int | None
    net_minor: int | None


class SettlementLine(BaseModel):
    settlement_id: str
    status: str
    occurred_at: datetime
    gross_minor: int
    fee_minor: int
    net_minor: int
    failure_reason: str | None
    matched_by: str | None


class FileLine(BaseModel):
    file_id: str
    seq: int
    format: str
    received_at: datetime
    match_rule: str | None
    line: dict[str, Any]  # the report's line as parsed


class PayoutOut(BaseModel):
    payout_id: str
    amount_minor: int
    currency: str
    count: int
    value_date: date | None
    status: str  # expected, arrived, short, missing
    reference: str | None


class AlertRef(BaseModel):
    alert_id: str
    type: str
    status: str
    created_at: datetime


class Event(BaseModel):
    at: datetime
    event: str  # in the document's locale


class Evidence(BaseModel):
    locale: Locale
    timezone: str  # the merchant's: the document's times are local
    generated_at: datetime
    merchant_id: str
    merchant_name: str | None
    receiving_account: Account | None
    transaction: Transaction
    status: str
    due_at: datetime
    deadline_basis: str
    expected: Amounts
    received: Amounts | None  # the bank's latest successful settlement
    difference_minor: int | None  # received net − expected net
    settlements: list[SettlementLine]
    file_lines: list[FileLine]
    payouts: list[PayoutOut]
    timeline: list[Event]
    alerts: list[AlertRef]
    ask_the_bank: list[str]


@dataclass(frozen=True)
class Gathered:
    """What the database holds about one payment, for its evidence."""

    payment: Payment
    profile: dict[str, Any] | None
    file_lines: list[FileLine]
    payouts: list[PayoutOut]
    alerts: list[AlertRef]


# What the other services hold about the payment, through their read views (migration 0018).
_LINES = text("""
SELECT file_id, seq, format, received_at, match_rule, body FROM recon_read_report_lines
WHERE txn_id = :txn ORDER BY received_at, seq
""")
_PAYOUTS = text("""
SELECT payout_id, amount_minor, currency, count, value_date, status, reference
FROM recon_read_payouts WHERE txn_id = :txn ORDER BY payout_id
""")
# Through the merchant's alerts (index alerts_by_merchant): a pair's alert names both payments.
_ALERTS = text("""
SELECT alert_id, type, status, created_at FROM alerts_read_alerts
WHERE merchant_id = :merchant AND (txn_id = :txn OR txn_ids ? :txn) ORDER BY created_at, alert_id
""")


async def gather(conn: AsyncConnection, payment: Payment) -> Gathered:
    txn = {"txn": payment.txn_id}
    profile = await conn.scalar(
        text("SELECT profile FROM ingest_read_merchants WHERE merchant_id = :m"),
        {"m": payment.merchant_id},
    )
    lines = [FileLine(**row._mapping, line=row.body) for row in await conn.execute(_LINES, txn)]
    payouts = [PayoutOut(**row._mapping) for row in await conn.execute(_PAYOUTS, txn)]
    mine = txn | {"merchant": payment.merchant_id}
    alerts = [AlertRef(**row._mapping) for row in await conn.execute(_ALERTS, mine)]
    return Gathered(payment, profile, lines, payouts, alerts)


def document(gathered: Gathered, locale: Locale | None, now: datetime) -> Evidence:
    """The evidence in `locale` (default: the merchant's)."""
    payment, profile = gathered.payment, gathered.profile or {}
    locale = locale or profile.get("locale", "zh-CN")
    account = profile.get("receiving_account")
    latest = payment.latest_settlement
    settled = latest if latest is not None and latest.succeeded else None
    expected_net = payment.expected_net_minor
    received = (
        Amounts(
            gross_minor=settled.gross_minor,
            fee_minor=settled.fee_minor,
            net_minor=settled.net_minor,
        )
        if settled
        else None
    )
    e = payment.evidence
    return Evidence(
        locale=locale,
        timezone=profile.get("timezone", "Asia/Shanghai"),
        generated_at=now,
        merchant_id=payment.merchant_id,
        merchant_name=profile.get("name"),
        receiving_account=Account(**account | {"number": mask_account(account["number"])})
        if account
        else None,
        transaction=Transaction(
            txn_id=payment.txn_id,
            kind=payment.kind,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            occurred_at=payment.occurred_at,
            business_date=payment.business_date.isoformat(),
            terminal_id=e.get("terminal_id"),
            rrn=e.get("rrn"),
            stan=e.get("stan"),
            auth_code=e.get("auth_code"),
            card_type=e.get("card_type"),
            bank_code=payment.bank_code,
            settlement_cycle=payment.cycle,
        ),
        status=payment.status,
        due_at=payment.due_at,
        deadline_basis=payment.deadline_basis,
        expected=Amounts(
            gross_minor=payment.amount_minor,
            fee_minor=payment.amount_minor - expected_net if expected_net is not None else None,
            net_minor=expected_net,
        ),
        received=received,
        difference_minor=(
            settled.net_minor - expected_net if settled and expected_net is not None else None
        ),
        settlements=[
            SettlementLine(**vars(fact))
            for fact in sorted(payment.settlements.values(), key=lambda f: f.occurred_at)
        ],
        file_lines=gathered.file_lines,
        payouts=gathered.payouts,
        timeline=[
            Event(at=at, event=history_text(code, args, locale))
            for at, code, args in sorted(payment.history, key=lambda item: item[0])
        ],
        alerts=gathered.alerts,
        ask_the_bank=ask_the_bank(payment, settled, locale, profile.get("timezone")),
    )


def ask_the_bank(
    payment: Payment, settled: SettlementFact | None, locale: Locale, timezone: str | None
) -> list[str]:
    """What the merchant should ask the bank, given what is known (SPEC §12)."""
    zh = locale == "zh-CN"
    tz = ZoneInfo(timezone or "Asia/Shanghai")
    due = payment.due_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    e = payment.evidence
    ref = ", ".join(
        f"{name} {e[key]}" for key, name in (("rrn", "RRN"), ("terminal_id", "TID")) if e.get(key)
    )
    amount = money(abs(payment.amount_minor), payment.currency, locale)
    latest = payment.latest_settlement
    status = payment.status
    if status == "pending":
        return [
            f"款项尚未到期（应于 {due} 前到账），暂无需联系银行。"
            if zh
            else f"Not due yet (due by {due}): nothing to ask the bank."
        ]
    if status in ("overdue", "expired"):
        return [
            f"请向{payment.bank_code}查询该笔交易（{ref}，{amount}）的清算与入账状态：是否已清算、"
            f"入账日期、是否因系统维护或升级延迟。"
            if zh
            else f"Ask {payment.bank_code} whether this payment ({ref}, {amount}) was cleared and "
            "when it will be credited, and whether maintenance or an upgrade delayed it.",
            f"约定应于 {due} 前到账；请索取书面答复或入账凭证。"
            if zh
            else f"It was due by {due}; ask for a written answer or the credit's advice.",
        ]
    if status == "failed" and latest is not None:
        reason = latest.failure_reason or ("未说明" if zh else "not given")
        return [
            f"请向银行确认打款失败原因（{reason}）及重新打款日期，并核对收款账户的户名、开户行和账号。"
            if zh
            else f"Ask the bank why the payout failed ({reason}) and when it will be paid again; "
            "check the receiving account's holder, bank and number with them.",
        ]
    asks: list[str] = []
    if settled is not None and payment.expected_net_minor is not None:
        short = payment.expected_net_minor - settled.net_minor
        if short > 0:
            missing = money(short, payment.currency, locale)
            asks.append(
                f"实收比应收少 {missing}：请银行提供该笔的手续费明细，并与签约费率核对。"
                if zh
                else f"{missing} less than expected arrived: ask the bank for this payment's fee "
                "breakdown and compare it with the agreed rates."
            )
    if payment.cancelled and settled is not None:
        asks.append(
            "交易已撤销但银行仍已入账：请与银行核对是否需要退回。"
            if zh
            else "The payment was voided but the bank paid it: ask whether it will be clawed back."
        )
    if status == "settled_late":
        asks.append(
            f"款项已到账，但晚于约定时间（{due}）：如需，可请银行说明延迟原因。"
            if zh
            else f"The money arrived after it was due ({due}): you may ask the bank why."
        )
    return asks or [
        "款项已按约定足额到账，无需联系银行。"
        if zh
        else "Paid in full and on time: nothing to ask."
    ]

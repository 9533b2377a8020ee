"""The matcher's API as the console uses it: payments, one payment, its evidence PDF."""

from __future__ import annotations

from typing import Any, TypedDict
from urllib.parse import quote

from settlewatch.common.money import Locale
from settlewatch.console.clients.base import Params, ServiceClient

__all__ = ["BankTotals", "HistoryEntry", "MatcherClient", "Payment", "PaymentPage"]


class HistoryEntry(TypedDict):
    at: str
    event: str
    code: str
    args: dict[str, Any]


class Payment(TypedDict):
    txn_id: str
    merchant_id: str
    kind: str
    status: str
    amount_minor: int
    currency: str
    occurred_at: str
    bank_code: str
    terminal_id: str | None
    rrn: str | None
    stan: str | None
    auth_code: str | None
    business_date: str
    due_at: str
    deadline_basis: str
    expected_net_minor: int | None
    settled_at: str | None
    settlement_id: str | None
    matched_by: str | None
    settled_net_minor: int | None
    history: list[HistoryEntry]


class PaymentPage(TypedDict):
    items: list[Payment]
    next_cursor: str | None


class BankTotals(TypedDict):
    bank_code: str
    status: str
    currency: str
    count: int
    amount_minor: int


class MatcherClient(ServiceClient):
    service = "matcher"

    async def payments(self, filters: Params) -> PaymentPage:
        page: PaymentPage = await self.get_json("/v1/payments", filters)
        return page

    async def bank_totals(self) -> list[BankTotals]:
        """What each bank still owes, pending and overdue, per currency."""
        answer: dict[str, list[BankTotals]] = await self.get_json("/v1/banks/summary")
        return answer["items"]

    async def merchant_summary(self, merchant_id: str) -> dict[str, Any]:
        """What the merchant is still owed, pending and overdue, per currency."""
        path = f"/v1/merchants/{quote(merchant_id, safe='')}/summary"
        found: dict[str, Any] = await self.get_json(path)
        return found

    async def payment(self, txn_id: str) -> Payment:
        found: Payment = await self.get_json(f"/v1/payments/{quote(txn_id, safe='')}")
        return found

    async def evidence(self, txn_id: str, locale: Locale) -> dict[str, Any]:
        """What the evidence PDF shows, as data: the findings raised, the report lines and the
        payouts that settled it, what to ask the bank, the merchant's time zone."""
        path = f"/v1/payments/{quote(txn_id, safe='')}/evidence"
        found: dict[str, Any] = await self.get_json(path, {"locale": locale})
        return found

    async def evidence_pdf(self, txn_id: str, locale: Locale) -> bytes:
        path = f"/v1/payments/{quote(txn_id, safe='')}/evidence"
        return await self.request("GET", path, params={"format": "pdf", "locale": locale})

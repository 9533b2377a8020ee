"""The alerts service's API as the console uses it."""

from __future__ import annotations

from typing import Any, Literal, TypedDict
from urllib.parse import quote

from settlewatch.console.clients.base import Page, Params, ServiceClient

__all__ = ["Alert", "AlertsClient", "AlertsOverview", "Delivery"]


class Alert(TypedDict):
    alert_id: str
    type: str
    status: str
    merchant_id: str | None
    txn_id: str | None
    bank_code: str | None
    created_at: str
    updated_at: str
    probable_cause: str | None
    summary: str
    evidence: dict[str, Any]
    notes: list[dict[str, Any]]  # at, by, action, note
    delivery_id: str | None


class Delivery(TypedDict):
    delivery_id: str
    merchant_id: str
    type: str
    status: str
    alert_ids: list[str]
    created_at: str
    next_attempt_at: str | None
    delivered_at: str | None
    last_error: str | None
    attempts: list[dict[str, Any]]  # attempt, at, url, status_code, latency_ms, error


class TypeCount(TypedDict):
    type: str
    status: str
    count: int


class AlertsOverview(TypedDict):
    items: list[TypeCount]
    incidents: dict[str, int]


class AlertsClient(ServiceClient):
    service = "alerts"

    async def counts(self) -> AlertsOverview:
        answer: AlertsOverview = await self.get_json("/v1/alerts/counts")
        return answer

    async def alerts(self, filters: Params) -> Page:
        page: Page = await self.get_json("/v1/alerts", filters)
        return page

    async def alert(self, alert_id: str) -> Alert:
        found: Alert = await self.get_json(f"/v1/alerts/{quote(alert_id, safe='')}")
        return found

    async def act(self, alert_id: str, action: Literal["ack", "resolve"], note: str) -> None:
        await self.send_json(
            "POST", f"/v1/alerts/{quote(alert_id, safe='')}/{action}", {"note": note}
        )

    async def deliveries(self, filters: Params) -> Page:
        page: Page = await self.get_json("/v1/deliveries", filters)
        return page

    async def send_test(self, merchant_id: str) -> str:
        """A test message to the merchant's webhook; the id of its delivery."""
        sent = await self.send_json("POST", "/v1/deliveries/test", {"merchant_id": merchant_id})
        delivery_id: str = sent["delivery_id"]
        return delivery_id

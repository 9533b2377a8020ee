"""The alerts service's API as the console uses it."""

from __future__ import annotations

from typing import TypedDict

from settlewatch.console.clients.base import ServiceClient

__all__ = ["AlertsClient", "AlertsOverview"]


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

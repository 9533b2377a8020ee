"""Ingest's API as the console uses it: who the signed-in token is, a merchant's books for a
day per terminal, the audit log."""

from __future__ import annotations

from typing import Any, TypedDict
from urllib.parse import quote

from settlewatch.console.clients.base import Page, Params, ServiceClient

__all__ = ["CurrentToken", "IngestClient"]


class CurrentToken(TypedDict):
    scope: str
    token_id: str
    expires_at: str | None
    may_write: bool
    merchant_id: str | None


class IngestClient(ServiceClient):
    service = "ingest"

    async def current_token(self) -> CurrentToken:
        answer: CurrentToken = await self.get_json("/v1/tokens/current")
        return answer

    async def audit(self, filters: Params) -> Page:
        """A page of the audit log: who changed what through the APIs, newest first."""
        page: Page = await self.get_json("/v1/audit", filters)
        return page

    async def books(self, merchant_id: str, day: str) -> dict[str, Any]:
        """Per terminal and in total: sales, refunds, fees, expected and settled net."""
        path = f"/v1/merchants/{quote(merchant_id, safe='')}/books"
        found: dict[str, Any] = await self.get_json(path, {"date": day})
        return found

"""Ingest's API as the console uses it: who the signed-in token is, the merchants' profiles, a
merchant's books for a day per terminal, the business calendars, the audit log."""

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

    async def merchants(self, filters: Params) -> Page:
        """A page of merchant profiles by id (secrets and accounts masked)."""
        page: Page = await self.get_json("/v1/merchants", filters)
        return page

    async def merchant(self, merchant_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.get_json(f"/v1/merchants/{quote(merchant_id, safe='')}")
        return found

    async def calendar(self, calendar: str) -> list[dict[str, Any]]:
        """A calendar's years: built in, loaded, and the coming ones it has no data for."""
        found: dict[str, Any] = await self.get_json(f"/v1/calendars/{quote(calendar, safe='')}")
        years: list[dict[str, Any]] = found["years"]
        return years

    async def calendar_year(self, calendar: str, year: int) -> dict[str, Any]:
        """A year as in force: its holidays, working weekend days and every load of it."""
        path = f"/v1/calendars/{quote(calendar, safe='')}/{year}"
        found: dict[str, Any] = await self.get_json(path)
        return found

    async def load_year(self, calendar: str, year: int, body: dict[str, Any]) -> dict[str, Any]:
        """Load a year's holidays and working weekend days (201 new, 200 the same again)."""
        path = f"/v1/calendars/{quote(calendar, safe='')}/{year}"
        loaded: dict[str, Any] = await self.send_json("PUT", path, body)
        return loaded

    async def audit(self, filters: Params) -> Page:
        """A page of the audit log: who changed what through the APIs, newest first."""
        page: Page = await self.get_json("/v1/audit", filters)
        return page

    async def books(self, merchant_id: str, day: str) -> dict[str, Any]:
        """Per terminal and in total: sales, refunds, fees, expected and settled net."""
        path = f"/v1/merchants/{quote(merchant_id, safe='')}/books"
        found: dict[str, Any] = await self.get_json(path, {"date": day})
        return found

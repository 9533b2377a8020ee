"""Recon's API as the console uses it: the desk's exceptions, read and decided."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict
from urllib.parse import quote

from settlewatch.console.clients.base import Params, ServiceClient

__all__ = ["DeskEntry", "Exception_", "ExceptionPage", "MAX_BULK", "ReconClient"]

MAX_BULK = 500  # exceptions one bulk call decides (recon's limit), all or nothing


class DeskEntry(TypedDict):
    at: str
    by: str
    action: str
    note: str


class Exception_(TypedDict):  # noqa: N801 — the API's name; Python's Exception is taken
    exception_id: str
    kind: str
    status: str
    file_id: str | None
    seq: int | None
    payout_id: str | None
    merchant_id: str | None
    currency: str | None
    amount_minor: int | None
    finding_ids: list[str]
    evidence: dict[str, Any]
    history: list[DeskEntry]
    opened_at: str
    updated_at: str
    age_s: int


class ExceptionPage(TypedDict):
    items: list[Exception_]
    next_cursor: str | None


class ReconClient(ServiceClient):
    service = "recon"

    async def exceptions(self, filters: Params) -> ExceptionPage:
        page: ExceptionPage = await self.get_json("/v1/exceptions", filters)
        return page

    async def exception(self, exception_id: str) -> Exception_:
        found: Exception_ = await self.get_json(f"/v1/exceptions/{quote(exception_id, safe='')}")
        return found

    async def match(self, exception_id: str, txn_id: str, by: str, note: str | None) -> None:
        path = f"/v1/exceptions/{quote(exception_id, safe='')}/match"
        await self.send_json("POST", path, {"txn_id": txn_id, "by": by, "note": note or None})

    async def decide(self, action: str, exception_ids: Sequence[str], by: str, reason: str) -> None:
        """`action` ("write-off" or "reopen") of up to MAX_BULK exceptions, all or nothing."""
        body = {"exception_ids": list(exception_ids), "by": by, "reason": reason}
        await self.send_json("POST", f"/v1/exceptions/{action}", body)

"""Recon's API as the console uses it: settlement files imported and read, the desk's
exceptions read and decided."""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from typing import Any, TypedDict
from urllib.parse import quote

import orjson

from settlewatch.console.clients.base import Page, Params, ServiceClient

__all__ = [
    "MAX_BULK",
    "DeskEntry",
    "DeskSummary",
    "Exception_",
    "ExceptionPage",
    "File",
    "FilePage",
    "ReconClient",
]

MAX_BULK = 500  # exceptions one bulk call decides (recon's limit), all or nothing
# An import is parsed before recon answers (up to its SETTLEWATCH_PARSE_TIMEOUT, 5 min).
IMPORT_TIMEOUT_S = 600.0


class File(TypedDict):
    file_id: str
    status: str
    format: str
    size_bytes: int
    received_at: str
    counts: dict[str, int]
    totals: dict[str, dict[str, int]]
    warnings: list[dict[str, Any]]
    errors: Any  # a file's: its errors (loc, msg); an item of the list: how many


class FilePage(TypedDict):
    items: list[File]
    next_cursor: str | None


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
    assignee: str | None
    proposed_by: str | None  # the token id, while a write-off awaits approval
    finding_ids: list[str]
    evidence: dict[str, Any]
    history: list[DeskEntry]
    opened_at: str
    updated_at: str
    age_s: int


class ExceptionPage(TypedDict):
    items: list[Exception_]
    next_cursor: str | None


class DeskSummary(TypedDict):
    open: list[dict[str, Any]]  # kind, age ("0-1", "2-7", "8-30", ">30"), count
    payouts: list[dict[str, Any]]  # status, currency, count, amount_minor


class ReconClient(ServiceClient):
    service = "recon"

    async def payouts(self, filters: Params) -> Page:
        """A page of payouts (items as GET /v1/payouts answers them)."""
        page: Page = await self.get_json("/v1/payouts", filters)
        return page

    async def payout(self, payout_id: str) -> dict[str, Any]:
        """A payout with its credit and its report lines."""
        found: dict[str, Any] = await self.get_json(f"/v1/payouts/{quote(payout_id, safe='')}")
        return found

    async def desk_summary(self) -> DeskSummary:
        summary: DeskSummary = await self.get_json("/v1/exceptions/summary")
        return summary

    async def files(self, filters: Params) -> FilePage:
        page: FilePage = await self.get_json("/v1/settlement-files", filters)
        return page

    async def file(self, file_id: str) -> File:
        found: File = await self.get_json(f"/v1/settlement-files/{quote(file_id, safe='')}")
        return found

    async def import_file(self, body: AsyncIterable[bytes], size: int, fmt: str) -> File:
        """The file's bytes as they come; ApiRefused (422, with the file's id in its problem
        when it was recorded as rejected) when recon cannot read it."""
        answer = await self.request(
            "POST",
            "/v1/settlement-files",
            params={"format": fmt},
            content=body,
            headers={"content-length": str(size)},
            timeout=IMPORT_TIMEOUT_S,
        )
        imported: File = orjson.loads(answer)
        return imported

    async def exceptions(self, filters: Params) -> ExceptionPage:
        page: ExceptionPage = await self.get_json("/v1/exceptions", filters)
        return page

    async def exception(self, exception_id: str) -> Exception_:
        found: Exception_ = await self.get_json(f"/v1/exceptions/{quote(exception_id, safe='')}")
        return found

    async def match(self, exception_id: str, txn_id: str, by: str, note: str | None) -> None:
        path = f"/v1/exceptions/{quote(exception_id, safe='')}/match"
        await self.send_json("POST", path, {"txn_id": txn_id, "by": by, "note": note or None})

    async def decide(
        self, action: str, exception_ids: Sequence[str], by: str, reason: str
    ) -> list[str]:
        """`action` ("write-off", "reopen", "reject") of up to MAX_BULK exceptions, all or
        nothing; the write-offs that wait for another person's approval."""
        body = {"exception_ids": list(exception_ids), "by": by, "reason": reason}
        answer = await self.send_json("POST", f"/v1/exceptions/{action}", body)
        waiting: list[str] = (answer or {}).get("pending_approval", [])
        return waiting

    async def approve(self, exception_ids: Sequence[str], by: str, note: str) -> None:
        """Approve write-offs another token proposed, all or nothing."""
        body = {"exception_ids": list(exception_ids), "by": by, "note": note or None}
        await self.send_json("POST", "/v1/exceptions/approve", body)

    async def assign(self, exception_ids: Sequence[str], by: str, assignee: str | None) -> None:
        """Give up to MAX_BULK open exceptions to a person (None: to nobody), all or nothing."""
        body = {"exception_ids": list(exception_ids), "by": by, "assignee": assignee}
        await self.send_json("POST", "/v1/exceptions/assign", body)

"""Exceptions (SPEC §15): the desk's queue with Django-admin's changelist shape — filters beside
the list, an action over the rows selected or over everything matching the filter — and an
exception's page: the line beside its candidate payments, match, write off (a reason is
required), reopen, and its history. Every change goes through recon's API as the signed-in
token: a read-only token sees no control, and a forged form from it is refused by recon."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from settlewatch.common import catalogue
from settlewatch.common.catalogue import say
from settlewatch.common.money import major
from settlewatch.console.candidates import compare
from settlewatch.console.clients import ApiRefused
from settlewatch.console.clients.recon import MAX_BULK, Exception_
from settlewatch.console.context import Console, Desk
from settlewatch.console.exports import Column, export
from settlewatch.console.i18n import choose_locale
from settlewatch.console.listing import Cursor, DateText, Filters, Text, named_fields
from settlewatch.console.session import check_csrf

router = APIRouter()

PAGE_SIZE = 50
# "All matching this filter" decides at most this many at once (MAX_BULK per call to recon).
MAX_MATCHING = 10_000
Decision = Literal["write-off", "reopen", "reject"]  # with a reason
Action = Decision | Literal["approve", "assign"]
# Which exceptions an action applies to: recon refuses the others (409).
APPLIES_TO: dict[str, str] = {
    "write-off": "open",
    "reopen": "written_off",
    "assign": "open",
    "approve": "pending_approval",
    "reject": "pending_approval",
}
NO_REASON = ("assign", "approve")  # the others need one


def exception_filters(
    desk: Desk,
    kind: Text = "",
    status: Text = "open",
    merchant_id: Text = "",
    file_id: Text = "",
    from_: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: DateText = "",
    age: Text = "",
    assignee: Annotated[str, Query(max_length=100)] = "",
    approvable: Annotated[str, Query(max_length=5)] = "",
) -> Filters:
    """The list's filters: of the page, of its exports, and of the action over "all matching
    this filter" (its form is sent to the page's own query)."""
    given = {"kind": kind, "status": status, "merchant_id": merchant_id, "file_id": file_id}
    given |= {"from": from_, "to": to, "age": age, "assignee": assignee}
    given |= {"approvable": approvable}  # "true": the write-offs this token may approve
    shown = {name: value.strip() for name, value in given.items()}
    if desk.session.merchant_id:
        shown["merchant_id"] = desk.session.merchant_id
    return shown


ExceptionFilters = Annotated[Filters, Depends(exception_filters)]


@router.get("/exceptions")
async def exceptions(
    request: Request,
    desk: Desk,
    filters: ExceptionFilters,
    cursor: Cursor = "",
    done: Annotated[int, Query(ge=0)] = 0,
    waiting: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    return await _list(request, desk, filters, cursor, done=done, waiting=waiting)


async def _list(
    request: Request,
    desk: Desk,
    shown: dict[str, str],
    cursor: str = "",
    *,
    done: int = 0,
    waiting: int = 0,
    problem: str = "",
    status: int = 200,
) -> Response:
    console: Console = request.app.state.console
    wrong: dict[str, str] = {}
    page: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        asked: dict[str, str | int] = {**shown, "limit": PAGE_SIZE, "cursor": cursor}
        page = dict(await desk.clients.recon.exceptions(asked))
    except ApiRefused as refused:
        if refused.status != 422:
            raise
        wrong = named_fields(refused)
        status = 422
    context = {
        "session": desk.session,
        "filters": shown,
        "wrong": wrong,
        "items": page["items"],
        "next_cursor": page["next_cursor"],
        "done": done,
        "waiting": waiting,
        "problem": problem,
        "kinds": tuple(catalogue.DESK_KINDS),
        "statuses": tuple(catalogue.DESK_STATUSES),
        "ages": catalogue.DESK_AGES,
        "max_matching": MAX_MATCHING,
    }
    return console.pages.render(request, "exceptions.html", context, status)


@router.post("/exceptions/decide")
async def decide_many(
    request: Request,
    desk: Desk,
    shown: ExceptionFilters,
    action: Annotated[Action, Form()],
    reason: Annotated[str, Form(max_length=500)] = "",
    assignee: Annotated[str, Form(max_length=100)] = "",
    selected: Annotated[list[str], Form(max_length=PAGE_SIZE)] = [],  # noqa: B006 — FastAPI's
    everything: Annotated[bool, Form()] = False,
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """The rows selected, or every exception matching the filter (as many as MAX_MATCHING):
    written off or reopened with a reason, or given to a person (nobody, when none is named)."""
    check_csrf(desk.session.csrf, csrf)
    if action not in NO_REASON and not reason.strip():
        return await _list(request, desk, shown, problem="reason", status=422)
    ids = await _matching(desk, shown, action) if everything else list(dict.fromkeys(selected))
    if not ids:
        return await _list(request, desk, shown, problem="nothing", status=422)
    decided, waiting = 0, 0
    for start in range(0, len(ids), MAX_BULK):  # each call all or nothing
        chunk = ids[start : start + MAX_BULK]
        try:
            if action == "assign":
                await desk.clients.recon.assign(chunk, desk.session.by, assignee.strip() or None)
            elif action == "approve":
                await desk.clients.recon.approve(chunk, desk.session.by, reason.strip())
            else:
                waiting += len(
                    await desk.clients.recon.decide(action, chunk, desk.session.by, reason.strip())
                )
        except ApiRefused as refused:
            if refused.status in (401, 403):
                raise
            problem = f"{decided}:{refused.detail}"
            return await _list(request, desk, shown, problem=problem, status=refused.status)
        decided += len(chunk)
    done = {"done": decided - waiting} | ({"waiting": waiting} if waiting else {})
    query = urlencode({k: v for k, v in shown.items() if v} | done)
    return RedirectResponse(f"/exceptions?{query}", status_code=303)


async def _matching(desk: Desk, shown: dict[str, str], action: str) -> list[str]:
    """The ids of every exception the filter shows to which `action` applies."""
    if shown["status"] and shown["status"] != APPLIES_TO[action]:
        return []
    asked: dict[str, Any] = shown | {"status": APPLIES_TO[action], "limit": MAX_BULK}
    if action == "approve":  # not the proposals of this token: recon would refuse them all
        asked["approvable"] = "true"
    ids: list[str] = []
    while len(ids) < MAX_MATCHING:
        page = await desk.clients.recon.exceptions(asked)
        ids += [item["exception_id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        asked["cursor"] = page["next_cursor"]
    return ids[:MAX_MATCHING]


@router.get("/exceptions/export.{fmt}")
async def export_exceptions(
    request: Request, desk: Desk, fmt: Literal["csv", "xlsx"], filters: ExceptionFilters
) -> Response:
    """Every exception the filter matches."""
    console: Console = request.app.state.console
    _ = console.pages.gettext(request)
    locale = choose_locale(request)
    asked: dict[str, Any] = filters | {"limit": MAX_BULK}

    async def fetch(cursor: str | None) -> tuple[list[Exception_], str | None]:
        page = await desk.clients.recon.exceptions(asked | {"cursor": cursor})
        return page["items"], page["next_cursor"]

    def amount(e: Exception_) -> Decimal | None:
        known = e["amount_minor"] is not None and e["currency"]
        return major(e["amount_minor"] or 0, e["currency"] or "") if known else None

    columns = [
        Column(_("Exception"), lambda e: e["exception_id"]),
        Column(_("Kind"), lambda e: say(catalogue.DESK_KINDS, e["kind"], locale)),
        Column(_("Status"), lambda e: say(catalogue.DESK_STATUSES, e["status"], locale)),
        Column(_("Merchant"), lambda e: e["merchant_id"]),
        Column(_("Amount"), amount),
        Column(_("Currency"), lambda e: e["currency"]),
        Column(_("Opened"), lambda e: datetime.fromisoformat(e["opened_at"])),
        Column(_("Age (days)"), lambda e: e["age_s"] // 86400),
        Column(_("File"), lambda e: e["file_id"]),
        Column(_("Assignee"), lambda e: e["assignee"]),
    ]
    return await export(fmt, "exceptions", columns, fetch)


@router.get("/exceptions/{exception_id}")
async def exception(request: Request, desk: Desk, exception_id: str, done: Text = "") -> Response:
    return await _page(request, desk, exception_id, done=done)


async def _page(
    request: Request, desk: Desk, exception_id: str, *, done: str = "", problem: str = ""
) -> Response:
    console: Console = request.app.state.console
    found = await desk.clients.recon.exception(exception_id)
    evidence = found["evidence"]
    named = evidence.get("txn_ids", []) if found["kind"] == "ambiguous_line" else []
    payments = await asyncio.gather(
        *(desk.clients.matcher.payment(txn_id) for txn_id in named[:10]),
        return_exceptions=True,
    )
    candidates = [
        (payment, compare(evidence, payment))
        for payment in payments
        if not isinstance(payment, BaseException)
    ]
    context = {
        "session": desk.session,
        "item": found,
        "evidence": evidence,
        "candidates": candidates,
        "done": done,
        "problem": problem,
    }
    return console.pages.render(request, "exception.html", context, 422 if problem else 200)


@router.post("/exceptions/{exception_id}/match")
async def match(
    request: Request,
    desk: Desk,
    exception_id: str,
    txn_id: Annotated[str, Form(max_length=64)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(desk.session.csrf, csrf)
    try:
        await desk.clients.recon.match(exception_id, txn_id.strip(), desk.session.by, note.strip())
    except ApiRefused as refused:
        if refused.status in (401, 403, 404):
            raise
        return await _page(request, desk, exception_id, problem=refused.detail)
    return RedirectResponse(f"/exceptions/{exception_id}?done=match", status_code=303)


@router.post("/exceptions/{exception_id}/decide")
async def decide_one(
    request: Request,
    desk: Desk,
    exception_id: str,
    action: Annotated[Decision, Form()],
    reason: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(desk.session.csrf, csrf)
    if not reason.strip():
        return await _page(request, desk, exception_id, problem="reason")
    try:
        waiting = await desk.clients.recon.decide(
            action, [exception_id], desk.session.by, reason.strip()
        )
    except ApiRefused as refused:
        if refused.status in (401, 403, 404):
            raise
        return await _page(request, desk, exception_id, problem=refused.detail)
    done = "propose" if waiting else action
    return RedirectResponse(f"/exceptions/{exception_id}?done={done}", status_code=303)


@router.post("/exceptions/{exception_id}/approve")
async def approve_one(
    request: Request,
    desk: Desk,
    exception_id: str,
    note: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Approve the write-off another person proposed (recon refuses the proposer's own)."""
    check_csrf(desk.session.csrf, csrf)
    try:
        await desk.clients.recon.approve([exception_id], desk.session.by, note.strip())
    except ApiRefused as refused:
        if refused.status in (401, 404):
            raise
        return await _page(request, desk, exception_id, problem=refused.detail)
    return RedirectResponse(f"/exceptions/{exception_id}?done=approve", status_code=303)


@router.post("/exceptions/{exception_id}/assign")
async def assign_one(
    request: Request,
    desk: Desk,
    exception_id: str,
    assignee: Annotated[str, Form(max_length=100)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Give the exception to a person; to nobody when none is named."""
    check_csrf(desk.session.csrf, csrf)
    try:
        await desk.clients.recon.assign([exception_id], desk.session.by, assignee.strip() or None)
    except ApiRefused as refused:
        if refused.status in (401, 403, 404):
            raise
        return await _page(request, desk, exception_id, problem=refused.detail)
    return RedirectResponse(f"/exceptions/{exception_id}?done=assign", status_code=303)

"""The exception queue of the settlement files (SPEC §9): list and read them, match by hand,
write off, reopen — singly or in bulk (up to 500 at once, all-or-nothing)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from sqlalchemy import and_, func, select

from settlewatch.common.auth import AcquirerOnly, Authenticated, not_found_unless_allowed
from settlewatch.common.events import ID_PATTERN, Id, QueryDay, Searchable, Storable, Text
from settlewatch.common.openapi import json_body
from settlewatch.common.problems import ProblemError
from settlewatch.common.responses import ERRORS
from settlewatch.common.validation import check_path_id, parse_body
from settlewatch.recon.context import ReconDep
from settlewatch.recon.desk import HandMatch
from settlewatch.recon.desk_items import AGES, Age, Kind, Status, age_of
from settlewatch.schema.settlement_files import file_exceptions, payouts

__all__ = ["BODIES", "router"]

router = APIRouter(tags=["exceptions"])
MAX_BULK = 500
_DONE = {204: {"description": "Done."}, 404: ERRORS[422] | {"description": "No such exception."}}
_ACTION_ERRORS = _DONE | {
    409: ERRORS[422] | {"description": "The exception's status or kind does not allow it."},
    **ERRORS,
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatchTarget(_Body):
    """Name the payment (for a report line) or the payout (for a missing payout: the credit
    reported unexpected; for an unexpected credit: the payout it is)."""

    txn_id: Id | None = None
    payout_id: Annotated[str | None, Field(pattern=ID_PATTERN)] = None

    @model_validator(mode="after")
    def _one(self) -> MatchTarget:
        if (self.txn_id is None) == (self.payout_id is None):
            raise ValueError("name exactly one of txn_id and payout_id")
        return self


class Match(MatchTarget):
    by: Text  # who did it, kept in the history
    note: Text | None = None


class BulkMatchItem(MatchTarget):
    exception_id: Id


class BulkMatch(_Body):
    by: Text
    note: Text | None = None
    items: Annotated[list[BulkMatchItem], Field(min_length=1, max_length=MAX_BULK)]


class Decision(_Body):
    """A write-off or a reopen: who, and why."""

    by: Text
    reason: Text


class BulkDecision(Decision):
    exception_ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_BULK)]


class Approval(_Body):
    """Who approves a proposed write-off (another token than the proposer's), and a note."""

    by: Text
    note: Text | None = None


class BulkApproval(Approval):
    exception_ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_BULK)]


class Assignment(_Body):
    """Who gives the exception to whom: a person's name, free text; null gives it to nobody."""

    by: Text
    assignee: Annotated[str, StringConstraints(min_length=1, max_length=100), Storable] | None


class BulkAssignment(Assignment):
    exception_ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_BULK)]


BODIES = (
    Match,
    BulkMatch,
    Decision,
    BulkDecision,
    Approval,
    BulkApproval,
    Assignment,
    BulkAssignment,
)
_MATCH = TypeAdapter(Match)
_BULK_MATCH = TypeAdapter(BulkMatch)
_DECISION = TypeAdapter(Decision)
_BULK_DECISION = TypeAdapter(BulkDecision)
_APPROVAL = TypeAdapter(Approval)
_BULK_APPROVAL = TypeAdapter(BulkApproval)
_ASSIGNMENT = TypeAdapter(Assignment)
_BULK_ASSIGNMENT = TypeAdapter(BulkAssignment)
_EXAMPLE_MATCH = {"txn_id": "T123", "by": "ops:li.wei", "note": "merchant confirmed the RRN"}
_EXAMPLE_DECISION = {"by": "ops:li.wei", "reason": "bank fee agreed with the merchant"}


_WRITE_OFF_ERRORS = _ACTION_ERRORS | {
    202: {
        "description": "Above the approval limit: waiting for another token to approve "
        "(`pending_approval` names them; the others were written off)."
    },
}
_APPROVAL_ERRORS = _ACTION_ERRORS | {
    403: {"description": "The token that proposed the write-off, or not an acquirer's."},
}


def _written_off(waiting: list[str]) -> Response:
    if not waiting:
        return Response(status_code=204)
    return JSONResponse({"pending_approval": waiting}, status_code=202)


def _json(row: Any, now: datetime) -> dict[str, Any]:
    return {
        "exception_id": row.exception_id,
        "kind": row.kind,
        "status": row.status,
        "file_id": row.file_id,
        "seq": row.seq,
        "payout_id": row.payout_id,
        "merchant_id": row.merchant_id,
        "currency": row.currency,
        "amount_minor": row.amount_minor,
        "assignee": row.assignee,
        "proposed_by": row.proposed_by,  # the token id, while a write-off awaits approval
        "finding_ids": row.finding_ids,
        "evidence": row.evidence,
        "history": row.history,
        "opened_at": row.opened_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "age_s": int((now - row.opened_at).total_seconds()),
    }


def _day(value: date) -> datetime:
    return datetime.combine(value, time(), UTC)


def _aged(age: Age, now: datetime) -> list[Any]:
    """Opened `age` whole days ago, as the summary counts them (on opened_at, so its index
    serves)."""
    _, low, high = next(bucket for bucket in AGES if bucket[0] == age)
    opened = file_exceptions.c.opened_at
    conditions = [opened <= now - timedelta(days=low)]
    if high is not None:
        conditions.append(opened > now - timedelta(days=high + 1))
    return conditions


@router.get(
    "/v1/exceptions",
    summary="The exception queue: what the files' matching could not decide, with its age.",
    description=f"kind: {', '.join(get_args(Kind))}. status: {', '.join(get_args(Status))} "
    "(resolved: the evidence arrived). from/to: the day it was opened (UTC), inclusive. age: "
    "whole days open, as /v1/exceptions/summary counts them. assignee: the person it was given "
    "to, exactly.",
    responses={401: ERRORS[401], 422: ERRORS[422]},
)
async def list_exceptions(
    principal: Authenticated,
    recon: ReconDep,
    kind: Kind | None = None,
    status: Status | None = None,
    merchant_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    file_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    from_: Annotated[QueryDay | None, Query(alias="from")] = None,
    to: QueryDay | None = None,
    age: Age | None = None,
    assignee: Annotated[str | None, Query(min_length=1, max_length=100), Searchable] = None,
    approvable: Annotated[
        bool, Query(description="only write-offs this token may approve (another's proposals)")
    ] = False,
    cursor: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    now = recon.clock()
    if not principal.is_acquirer:  # a merchant token sees its own exceptions only
        merchant_id = principal.merchant_id
    table = file_exceptions.c
    conditions = []
    if kind is not None:
        conditions.append(table.kind == kind)
    if status is not None:
        conditions.append(table.status == status)
    if merchant_id is not None:
        conditions.append(table.merchant_id == merchant_id)
    if file_id is not None:
        conditions.append(table.file_id == file_id)
    if from_ is not None:
        conditions.append(table.opened_at >= _day(from_))
    if to is not None and to < date.max:  # date.max: no bound (and no day after it)
        conditions.append(table.opened_at < _day(to + timedelta(days=1)))
    if age is not None:
        conditions += _aged(age, now)
    if assignee is not None:
        conditions.append(table.assignee == assignee)
    if approvable:
        conditions.append(table.status == "pending_approval")
        conditions.append(table.proposed_by != principal.token_id)
    if cursor is not None:
        conditions.append(table.exception_id > cursor)
    query = select(file_exceptions).where(and_(True, *conditions)).order_by(table.exception_id)
    async with recon.engine.connect() as conn:
        rows = (await conn.execute(query.limit(limit + 1))).all()
    items = [_json(row, now) for row in rows[:limit]]
    next_cursor = items[-1]["exception_id"] if len(rows) > limit else None
    return JSONResponse({"items": items, "next_cursor": next_cursor})


@router.get(
    "/v1/exceptions/summary",
    summary="Open exceptions by kind and age (0–1, 2–7, 8–30, > 30 days), and payouts by "
    "status: the ops desk's overview (an acquirer token's only).",
    responses={401: ERRORS[401], 403: ERRORS[403]},
)
async def desk_summary(_: AcquirerOnly, recon: ReconDep) -> JSONResponse:
    table = file_exceptions.c
    days = func.floor(func.extract("epoch", recon.clock() - table.opened_at) / 86400)
    open_items = (
        select(table.kind, days, func.count())
        .where(table.status == "open")
        .group_by(table.kind, days)
    )
    by_status = (
        select(payouts.c.status, payouts.c.currency, func.count(), func.sum(payouts.c.amount_minor))
        .group_by(payouts.c.status, payouts.c.currency)
        .order_by(payouts.c.status, payouts.c.currency)
    )
    async with recon.engine.connect() as conn:
        by_days = (await conn.execute(open_items)).all()
        payout_rows = (await conn.execute(by_status)).all()
    ages: Counter[tuple[str, str]] = Counter()
    for kind, open_days, n in by_days:
        ages[kind, age_of(int(open_days))] += n
    return JSONResponse(
        {
            "open": [{"kind": k, "age": age, "count": n} for (k, age), n in sorted(ages.items())],
            "payouts": [
                {"status": st, "currency": cur, "count": n, "amount_minor": int(amount or 0)}
                for st, cur, n, amount in payout_rows
            ],
        }
    )


@router.get(
    "/v1/exceptions/{exception_id}",
    summary="One exception, with its evidence and history (who did what, when, why).",
    responses={404: _DONE[404], 401: ERRORS[401]},
)
async def get_exception(
    exception_id: str, principal: Authenticated, recon: ReconDep
) -> JSONResponse:
    check_path_id("exception_id", exception_id)
    async with recon.engine.connect() as conn:
        row = (
            await conn.execute(
                select(file_exceptions).where(file_exceptions.c.exception_id == exception_id)
            )
        ).one_or_none()
    if row is None:
        raise ProblemError(404, "exception not found")
    not_found_unless_allowed(principal, row.merchant_id, "exception")
    return JSONResponse(_json(row, recon.clock()))


@router.post(
    "/v1/exceptions/match",
    summary="Match several exceptions by hand at once (all or nothing).",
    openapi_extra=json_body(
        BulkMatch,
        {"lines": {"by": "ops:li.wei", "items": [{"exception_id": "line:F:3", "txn_id": "T1"}]}},
    ),
    status_code=204,
    responses=_ACTION_ERRORS,
)
async def bulk_match(request: Request, _: AcquirerOnly, recon: ReconDep) -> None:
    body = parse_body(await request.body(), _BULK_MATCH).valid
    items = [HandMatch(i.exception_id, i.txn_id, i.payout_id) for i in body.items]
    await recon.desk.match(items, body.by, body.note, bulk=True)


@router.post(
    "/v1/exceptions/write-off",
    summary="Write several exceptions off at once, with one reason (all or nothing); those "
    "above the approval limit wait for another token (202, naming them).",
    openapi_extra=json_body(
        BulkDecision, {"fees": _EXAMPLE_DECISION | {"exception_ids": ["short:F:7"]}}
    ),
    status_code=204,
    responses=_WRITE_OFF_ERRORS,
)
async def bulk_write_off(request: Request, principal: AcquirerOnly, recon: ReconDep) -> Response:
    body = parse_body(await request.body(), _BULK_DECISION).valid
    waiting = await recon.desk.write_off(
        body.exception_ids, body.by, body.reason, bulk=True, token=principal.token_id
    )
    return _written_off(waiting)


@router.post(
    "/v1/exceptions/approve",
    summary="Approve several proposed write-offs at once (all or nothing); not the proposer's.",
    openapi_extra=json_body(
        BulkApproval, {"checked": {"by": "ops:wang.fang", "exception_ids": ["short:F:7"]}}
    ),
    status_code=204,
    responses=_APPROVAL_ERRORS,
)
async def bulk_approve(request: Request, principal: AcquirerOnly, recon: ReconDep) -> None:
    body = parse_body(await request.body(), _BULK_APPROVAL).valid
    await recon.desk.approve(
        body.exception_ids, body.by, body.note, bulk=True, token=principal.token_id
    )


@router.post(
    "/v1/exceptions/reject",
    summary="Send several proposed write-offs back to the queue, with a reason (all or nothing).",
    openapi_extra=json_body(
        BulkDecision, {"no": _EXAMPLE_DECISION | {"exception_ids": ["short:F:7"]}}
    ),
    status_code=204,
    responses=_ACTION_ERRORS,
)
async def bulk_reject(request: Request, _: AcquirerOnly, recon: ReconDep) -> None:
    body = parse_body(await request.body(), _BULK_DECISION).valid
    await recon.desk.reject(body.exception_ids, body.by, body.reason, bulk=True)


@router.post(
    "/v1/exceptions/reopen",
    summary="Reopen several written-off exceptions at once (all or nothing).",
    openapi_extra=json_body(
        BulkDecision, {"mistake": _EXAMPLE_DECISION | {"exception_ids": ["short:F:7"]}}
    ),
    status_code=204,
    responses=_ACTION_ERRORS,
)
async def bulk_reopen(request: Request, _: AcquirerOnly, recon: ReconDep) -> None:
    body = parse_body(await request.body(), _BULK_DECISION).valid
    await recon.desk.reopen(body.exception_ids, body.by, body.reason, bulk=True)


@router.post(
    "/v1/exceptions/{exception_id}/match",
    summary="Match an exception by hand: a report line to a payment, a payout to a credit.",
    description="The effects of an automatic match: the payment is settled, the payout "
    "arrives (or is short), the exception is closed and its alert resolved.",
    openapi_extra=json_body(Match, {"line": _EXAMPLE_MATCH}),
    status_code=204,
    responses=_ACTION_ERRORS,
)
async def match(exception_id: str, request: Request, _: AcquirerOnly, recon: ReconDep) -> None:
    check_path_id("exception_id", exception_id)
    body = parse_body(await request.body(), _MATCH).valid
    item = HandMatch(exception_id, body.txn_id, body.payout_id)
    await recon.desk.match([item], body.by, body.note, bulk=False)


@router.post(
    "/v1/exceptions/{exception_id}/write-off",
    summary="Write an exception off, with a reason: closed, its alert resolved; above the "
    "approval limit it waits for another token (202, pending_approval).",
    openapi_extra=json_body(Decision, {"fee": _EXAMPLE_DECISION}),
    status_code=204,
    responses=_WRITE_OFF_ERRORS,
)
async def write_off(
    exception_id: str, request: Request, principal: AcquirerOnly, recon: ReconDep
) -> Response:
    check_path_id("exception_id", exception_id)
    body = parse_body(await request.body(), _DECISION).valid
    waiting = await recon.desk.write_off(
        [exception_id], body.by, body.reason, bulk=False, token=principal.token_id
    )
    return _written_off(waiting)


@router.post(
    "/v1/exceptions/{exception_id}/approve",
    summary="Approve a proposed write-off (four eyes): closed as written off, its alert resolved. "
    "The token that proposed it cannot (403).",
    openapi_extra=json_body(Approval, {"checked": {"by": "ops:wang.fang", "note": "seen"}}),
    status_code=204,
    responses=_APPROVAL_ERRORS,
)
async def approve(
    exception_id: str, request: Request, principal: AcquirerOnly, recon: ReconDep
) -> None:
    check_path_id("exception_id", exception_id)
    body = parse_body(await request.body(), _APPROVAL).valid
    await recon.desk.approve(
        [exception_id], body.by, body.note, bulk=False, token=principal.token_id
    )


@router.post(
    "/v1/exceptions/{exception_id}/reject",
    summary="Send a proposed write-off back to the queue, open, with a reason.",
    openapi_extra=json_body(Decision, {"no": _EXAMPLE_DECISION}),
    status_code=204,
    responses=_ACTION_ERRORS,
)
async def reject(exception_id: str, request: Request, _: AcquirerOnly, recon: ReconDep) -> None:
    check_path_id("exception_id", exception_id)
    body = parse_body(await request.body(), _DECISION).valid
    await recon.desk.reject([exception_id], body.by, body.reason, bulk=False)


@router.post(
    "/v1/exceptions/{exception_id}/reopen",
    summary="Reopen a written-off exception.",
    openapi_extra=json_body(Decision, {"mistake": _EXAMPLE_DECISION}),
    status_code=204,
    responses=_ACTION_ERRORS,
)
async def reopen(exception_id: str, request: Request, _: AcquirerOnly, recon: ReconDep) -> None:
    check_path_id("exception_id", exception_id)
    body = parse_body(await request.body(), _DECISION).valid
    await recon.desk.reopen([exception_id], body.by, body.reason, bulk=False)


@router.post(
    "/v1/exceptions/assign",
    summary="Give several open exceptions to a person, or to nobody (all or nothing).",
    openapi_extra=json_body(
        BulkAssignment,
        {"mine": {"by": "ops:li.wei", "assignee": "li.wei", "exception_ids": ["line:F:3"]}},
    ),
    status_code=204,
    responses=_ACTION_ERRORS,
)
async def bulk_assign(request: Request, _: AcquirerOnly, recon: ReconDep) -> None:
    body = parse_body(await request.body(), _BULK_ASSIGNMENT).valid
    await recon.desk.assign(body.exception_ids, body.assignee, body.by, bulk=True)


@router.post(
    "/v1/exceptions/{exception_id}/assign",
    summary="Give an open exception to a person (assignee null: to nobody); in its history.",
    openapi_extra=json_body(Assignment, {"mine": {"by": "ops:li.wei", "assignee": "wang.fang"}}),
    status_code=204,
    responses=_ACTION_ERRORS,
)
async def assign(exception_id: str, request: Request, _: AcquirerOnly, recon: ReconDep) -> None:
    check_path_id("exception_id", exception_id)
    body = parse_body(await request.body(), _ASSIGNMENT).valid
    await recon.desk.assign([exception_id], body.assignee, body.by, bulk=False)

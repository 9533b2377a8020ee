"""GET /v1/payouts and /v1/payouts/{payout_id} (SPEC §9): credits expected from reports or seen
on statements, with their status, the statement entry they were paired with and their lines."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import and_, select

from settlewatch.common.auth import Authenticated, not_found_unless_allowed
from settlewatch.common.events import ID_PATTERN, QueryDay
from settlewatch.common.problems import ProblemError
from settlewatch.common.responses import ERRORS
from settlewatch.common.validation import check_path_id
from settlewatch.recon.context import ReconDep
from settlewatch.schema.settlement_files import file_records, payouts

router = APIRouter(tags=["settlement files"])

MAX_LINES = 500  # of a payout's own report lines, in GET /v1/payouts/{id}
Status = Literal["expected", "arrived", "short", "missing", "unexpected"]


def _json(row: Any) -> dict[str, Any]:
    return {
        "payout_id": row.payout_id,
        "source": row.source,
        "file_id": row.file_id,
        "merchant_id": row.merchant_id,
        "currency": row.currency,
        "amount_minor": row.amount_minor,
        "count": row.count,
        "value_date": row.value_date.isoformat() if row.value_date else None,
        "reference": row.reference,
        "status": row.status,
        "due_on": row.due_on.isoformat() if row.due_on else None,
        "credit": row.credit,
        "updated_at": row.updated_at.isoformat(),
    }


@router.get(
    "/v1/payouts",
    summary="Payouts, newest value date first: filter by merchant, status and value dates.",
    responses={401: ERRORS[401], 422: ERRORS[422]},
)
async def list_payouts(
    principal: Authenticated,
    recon: ReconDep,
    merchant_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    status: Status | None = None,
    from_: Annotated[QueryDay | None, Query(alias="from")] = None,
    to: QueryDay | None = None,
    cursor: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    if not principal.is_acquirer:  # a merchant token sees its own payouts only
        merchant_id = principal.merchant_id
    conditions = []
    if merchant_id is not None:
        conditions.append(payouts.c.merchant_id == merchant_id)
    if status is not None:
        conditions.append(payouts.c.status == status)
    if from_ is not None:
        conditions.append(payouts.c.value_date >= from_)
    if to is not None:
        conditions.append(payouts.c.value_date <= to)
    if cursor is not None:
        conditions.append(payouts.c.payout_id > cursor)
    query = select(payouts).where(and_(True, *conditions)).order_by(payouts.c.payout_id)
    async with recon.engine.connect() as conn:
        rows = (await conn.execute(query.limit(limit + 1))).all()
    items = [_json(row) for row in rows[:limit]]
    next_cursor = items[-1]["payout_id"] if len(rows) > limit else None
    return JSONResponse({"items": items, "next_cursor": next_cursor})


@router.get(
    "/v1/payouts/{payout_id}",
    summary="One payout, with the statement entry it was paired with and its report lines.",
    responses={404: ERRORS[422] | {"description": "No such payout."}, 401: ERRORS[401]},
)
async def get_payout(payout_id: str, principal: Authenticated, recon: ReconDep) -> JSONResponse:
    check_path_id("payout_id", payout_id)
    async with recon.engine.connect() as conn:
        row = (
            await conn.execute(select(payouts).where(payouts.c.payout_id == payout_id))
        ).one_or_none()
        if row is None:
            raise ProblemError(404, "payout not found")
        not_found_unless_allowed(principal, row.merchant_id, "payout")
        lines: list[dict[str, Any]] = []
        if row.source == "report":
            file_id, _, seq = payout_id.rpartition(":")
            batch = await conn.scalar(
                select(file_records.c.body["batch_id"].astext).where(
                    file_records.c.file_id == file_id, file_records.c.seq == int(seq)
                )
            )
            query = select(
                file_records.c.body,
                file_records.c.match_status,
                file_records.c.match_rule,
                file_records.c.txn_id,
            ).where(
                file_records.c.file_id == file_id,
                file_records.c.kind == "line",
                file_records.c.body["batch_id"].astext == batch,
            )
            if not principal.is_acquirer:  # its own lines: a batch may hold other merchants'
                query = query.where(file_records.c.merchant_id == principal.merchant_id)
            found = await conn.execute(query.order_by(file_records.c.seq).limit(MAX_LINES + 1))
            lines = [
                {
                    **r.body,
                    "match": {"status": r.match_status, "rule": r.match_rule, "txn_id": r.txn_id},
                }
                for r in found
            ]
    body = _json(row) | {"lines": lines[:MAX_LINES], "lines_truncated": len(lines) > MAX_LINES}
    return JSONResponse(body)

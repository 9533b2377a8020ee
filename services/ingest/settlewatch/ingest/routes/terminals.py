"""PUT/GET /v1/terminals/{terminal_id} and GET /v1/merchants/{id}/books (SPEC §12).

A terminal is stored and published to its merchant's partition in one transaction (as a merchant
profile is), so the matcher knows where it stands (跳码) and which terminal it replaced (books
after a migration). The books are read from the matcher's read function ``matcher_read_books``
(migration 0011): per terminal, what its own payments should bring, and what the bank settled
under it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert

from settlewatch.common import audit
from settlewatch.common.auth import AcquirerOnly, Authenticated, not_found_unless_allowed
from settlewatch.common.db import transaction
from settlewatch.common.events import TerminalChanged, TerminalIn, encode_event
from settlewatch.common.openapi import json_body
from settlewatch.common.problems import ProblemError
from settlewatch.common.publisher import BrokerUnavailable
from settlewatch.common.responses import ERRORS
from settlewatch.common.validation import check_path_id, parse_body, reject
from settlewatch.ingest import examples
from settlewatch.ingest.context import Ingest, IngestDep
from settlewatch.ingest.metrics import EVENTS
from settlewatch.schema.reference import terminals

router = APIRouter(tags=["terminals"])

_TERMINAL = TypeAdapter(TerminalIn)
_CHANGED = TypeAdapter(TerminalChanged)


class TerminalOut(TerminalChanged):
    created_at: str
    updated_at: str


@router.put(
    "/v1/terminals/{terminal_id}",
    summary="Register or update a terminal (201 created, 200 updated); a migrated terminal names "
    "the one it `replaces` (of the same merchant).",
    openapi_extra=json_body(TerminalIn, examples.TERMINAL),
    responses={200: {"description": "Updated."}, 201: {"description": "Created."}, **ERRORS},
)
async def put_terminal(
    terminal_id: str, request: Request, _: AcquirerOnly, ingest: IngestDep
) -> JSONResponse:
    try:
        check_path_id("terminal_id", terminal_id)
        terminal = parse_body(await request.body(), _TERMINAL).valid
        if terminal.replaces is not None:
            await _check_replaced(ingest, terminal_id, terminal)
    except ProblemError:
        EVENTS.labels("terminal", "rejected").inc()
        raise
    changed = TerminalChanged(terminal_id=terminal_id, **terminal.model_dump())
    values = insert(terminals).values(**changed.model_dump())
    upsert = values.on_conflict_do_update(
        index_elements=[terminals.c.terminal_id],
        set_={
            **{
                name: values.excluded[name]
                for name in ("merchant_id", "region", "replaces", "status")
            },
            "updated_at": func.now(),
        },
    ).returning(
        terminals.c.created_at, terminals.c.updated_at, literal_column("xmax = 0").label("inserted")
    )
    try:
        async with transaction(ingest.engine) as conn:
            row = (await conn.execute(upsert)).one()
            audit.describe(status=201 if row.inserted else 200)
            record = encode_event("terminal", _CHANGED.dump_json(changed))
            await ingest.publisher.publish(
                ingest.topics.transactions, [(terminal.merchant_id.encode(), record)]
            )
    except BrokerUnavailable:
        EVENTS.labels("terminal", "unavailable").inc()
        raise  # answered 503 with Retry-After (common.problems)
    EVENTS.labels("terminal", "accepted").inc()
    body = _out(changed, row.created_at, row.updated_at)
    return JSONResponse(body, status_code=201 if row.inserted else 200)


async def _check_replaced(ingest: Ingest, terminal_id: str, terminal: TerminalIn) -> None:
    """The replaced terminal must be another registered terminal of the same merchant."""
    if terminal.replaces == terminal_id:
        reject([{"loc": ["replaces"], "msg": "a terminal cannot replace itself"}])
    async with ingest.engine.connect() as conn:
        owner = await conn.scalar(
            select(terminals.c.merchant_id).where(terminals.c.terminal_id == terminal.replaces)
        )
    if owner is None:
        reject([{"loc": ["replaces"], "msg": "no such terminal: register it first"}])
    elif owner != terminal.merchant_id:
        reject([{"loc": ["replaces"], "msg": "is a terminal of another merchant"}])


def _out(changed: TerminalChanged, created: Any, updated: Any) -> dict[str, Any]:
    return changed.model_dump() | {
        "created_at": created.isoformat(),
        "updated_at": updated.isoformat(),
    }


@router.get(
    "/v1/terminals/{terminal_id}",
    summary="A terminal as registered; a merchant token sees only its own.",
    responses={404: {"description": "No such terminal."}, 401: ERRORS[401]},
)
async def get_terminal(
    terminal_id: str, principal: Authenticated, ingest: IngestDep
) -> TerminalOut:
    async with ingest.engine.connect() as conn:
        row = (
            await conn.execute(select(terminals).where(terminals.c.terminal_id == terminal_id))
        ).one_or_none()
    if row is None:
        raise ProblemError(404, "terminal not found")
    not_found_unless_allowed(principal, row.merchant_id, "terminal")
    changed = TerminalChanged(
        terminal_id=row.terminal_id,
        merchant_id=row.merchant_id,
        region=row.region,
        replaces=row.replaces,
        status=row.status,
    )
    return TerminalOut(**_out(changed, row.created_at, row.updated_at))


class Count(BaseModel):
    count: int
    amount_minor: int  # signed: refunds are negative


class Totals(BaseModel):
    currency: str
    sales: Count
    refunds: Count
    fees_minor: int  # expected fees on the sales
    expected_net_minor: int  # what the payments should bring
    settled_net_minor: int  # what the bank settled
    difference_minor: int  # settled − expected: where a migration's books disagree
    unsettled: int  # payments not (yet) settled


class TerminalBooks(Totals):
    """A terminal's own payments (expected) against what the bank settled under it."""

    terminal_id: str
    replaces: str | None  # the terminal this one replaced, when registered so


class Books(BaseModel):
    merchant_id: str
    date: date  # the business date
    terminals: list[TerminalBooks]
    total: list[Totals]  # per currency


# Per terminal and currency, and per currency over all terminals (the grouping set without the
# terminal: GROUPING(terminal_id) = 1).
_BOOKS = text("""
SELECT GROUPING(b.terminal_id) = 1 AS total, b.terminal_id, b.currency, t.replaces,
       sum(sales_count)::bigint AS sales_count,
       sum(sales_minor)::bigint AS sales_minor,
       sum(refunds_count)::bigint AS refunds_count,
       sum(refunds_minor)::bigint AS refunds_minor,
       sum(fees_minor)::bigint AS fees_minor,
       sum(expected_net_minor)::bigint AS expected_net_minor,
       sum(settled_net_minor)::bigint AS settled_net_minor,
       sum(unsettled_count)::bigint AS unsettled_count
FROM matcher_read_books(:merchant, :day) AS b
LEFT JOIN terminals t ON t.terminal_id = b.terminal_id AND t.merchant_id = :merchant
GROUP BY GROUPING SETS ((b.terminal_id, b.currency, t.replaces), (b.currency))
ORDER BY b.terminal_id NULLS LAST, b.currency
""")


def _totals(row: Any) -> dict[str, Any]:
    return {
        "currency": row.currency,
        "sales": Count(count=row.sales_count, amount_minor=row.sales_minor),
        "refunds": Count(count=row.refunds_count, amount_minor=row.refunds_minor),
        "fees_minor": row.fees_minor,
        "expected_net_minor": row.expected_net_minor,
        "settled_net_minor": row.settled_net_minor,
        "difference_minor": row.settled_net_minor - row.expected_net_minor,
        "unsettled": row.unsettled_count,
    }


@router.get(
    "/v1/merchants/{merchant_id}/books",
    summary="A merchant's books for a business date, per terminal and in total: sales, refunds, "
    "fees, expected net, settled net and the difference (SPEC §12).",
    responses={404: {"description": "No such merchant (or not yours)."}, 401: ERRORS[401]},
)
async def merchant_books(
    merchant_id: str, date: date, principal: Authenticated, ingest: IngestDep
) -> Books:
    not_found_unless_allowed(principal, merchant_id, "merchant")
    async with ingest.engine.connect() as conn:
        rows = (await conn.execute(_BOOKS, {"merchant": merchant_id, "day": date})).all()
    return Books(
        merchant_id=merchant_id,
        date=date,
        terminals=[
            TerminalBooks(terminal_id=r.terminal_id, replaces=r.replaces, **_totals(r))
            for r in rows
            if not r.total
        ],
        total=[Totals(**_totals(r)) for r in rows if r.total],
    )

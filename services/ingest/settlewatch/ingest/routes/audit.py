"""GET /v1/audit: the changes made through the API, newest first (SPEC §14, common.audit)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select, tuple_

from settlewatch.common.auth import AcquirerOnly
from settlewatch.common.cursors import decode_cursor, encode_cursor
from settlewatch.common.events import QueryTime
from settlewatch.common.problems import ProblemError
from settlewatch.common.responses import ERRORS
from settlewatch.ingest.context import IngestDep
from settlewatch.schema.access import audit_log

router = APIRouter(tags=["audit"])


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str  # the token's id
    scope: str
    service: str
    action: str  # method and route, e.g. "PUT /v1/merchants/{merchant_id}"
    target: str  # the path
    status: int
    details: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


@router.get(
    "/v1/audit",
    summary="Who changed what through the API, and when: newest first; `from` inclusive, `to` "
    "exclusive, `actor` a token id.",
    responses={401: ERRORS[401], 403: ERRORS[403], 422: ERRORS[422]},
)
async def read_audit(
    _: AcquirerOnly,
    ingest: IngestDep,
    start: Annotated[QueryTime | None, Query(alias="from")] = None,
    end: Annotated[QueryTime | None, Query(alias="to")] = None,
    actor: Annotated[str | None, Query(pattern=r"^[0-9a-f]{16}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> AuditPage:
    if start is not None and end is not None and end <= start:
        msg = "must be later than from"
        raise ProblemError(422, "invalid range", [{"loc": ["query", "to"], "msg": msg}])
    query = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
    if start is not None:
        query = query.where(audit_log.c.at >= start)
    if end is not None:
        query = query.where(audit_log.c.at < end)
    if actor is not None:
        query = query.where(audit_log.c.actor == actor)
    if (after := decode_cursor(cursor)) is not None:
        moment, key = after
        if not key.isdigit():
            raise ProblemError(
                422, "invalid cursor", [{"loc": ["query", "cursor"], "msg": "not a cursor"}]
            )
        query = query.where(tuple_(audit_log.c.at, audit_log.c.id) < (moment, int(key)))
    async with ingest.engine.connect() as conn:
        rows = (await conn.execute(query.limit(limit))).all()
    items = [AuditEntry(**row._asdict()) for row in rows]
    last = items[-1] if len(items) == limit else None
    return AuditPage(
        items=items, next_cursor=None if last is None else encode_cursor(last.at, str(last.id))
    )

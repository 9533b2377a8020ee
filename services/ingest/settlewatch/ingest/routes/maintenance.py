"""POST/GET /v1/maintenance-windows: a bank's announced maintenance.

A window's id is derived from its bank and times, so announcing it again is harmless (the reason
may be updated). It is published into every partition of the transactions topic, because it
concerns the pending payments of every merchant of that bank, whichever partition holds them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from settlewatch.common.auth import AcquirerOnly
from settlewatch.common.db import transaction
from settlewatch.common.events import (
    ID_PATTERN,
    MaintenanceWindow,
    MaintenanceWindowIn,
    encode_event,
)
from settlewatch.common.openapi import json_body
from settlewatch.common.problems import ProblemError
from settlewatch.common.publisher import BrokerUnavailable
from settlewatch.common.responses import ERRORS
from settlewatch.common.validation import MAX_WINDOW_AHEAD, parse_body, reject
from settlewatch.ingest import examples
from settlewatch.ingest.context import IngestDep
from settlewatch.ingest.metrics import EVENTS
from settlewatch.schema.reference import maintenance_windows as windows

router = APIRouter(tags=["maintenance windows"])

_ANNOUNCED = TypeAdapter(MaintenanceWindowIn)
_WINDOW = TypeAdapter(MaintenanceWindow)


class Created(BaseModel):
    id: str


class WindowList(BaseModel):
    items: list[MaintenanceWindow]


def window_id(window: MaintenanceWindowIn) -> str:
    key = "|".join(
        (
            window.bank_code,
            window.starts_at.astimezone(UTC).isoformat(),
            window.ends_at.astimezone(UTC).isoformat(),
        )
    )
    return "mw_" + hashlib.sha256(key.encode()).hexdigest()[:24]


@router.post(
    "/v1/maintenance-windows",
    status_code=201,
    summary="Announce a bank maintenance window (idempotent by bank and times).",
    openapi_extra=json_body(MaintenanceWindowIn, examples.MAINTENANCE_WINDOW),
    responses=ERRORS,
)
async def post_maintenance_window(request: Request, _: AcquirerOnly, ingest: IngestDep) -> Created:
    try:
        announced = parse_body(await request.body(), _ANNOUNCED).valid
        latest = ingest.clock() + MAX_WINDOW_AHEAD
        if announced.ends_at > latest:
            reject([{"loc": ["ends_at"], "msg": "must be at most 366 days ahead"}])
    except ProblemError:
        EVENTS.labels("maintenance", "rejected").inc()
        raise
    window = MaintenanceWindow(id=window_id(announced), **announced.model_dump())
    upsert = insert(windows).values(**window.model_dump())
    upsert = upsert.on_conflict_do_update(
        index_elements=[windows.c.id], set_={"reason": upsert.excluded.reason}
    )
    try:
        async with transaction(ingest.engine) as conn:
            await conn.execute(upsert)
            await ingest.publisher.publish_everywhere(
                ingest.topics.transactions, encode_event("maintenance", _WINDOW.dump_json(window))
            )
    except BrokerUnavailable:
        EVENTS.labels("maintenance", "unavailable").inc()
        raise  # answered 503 with Retry-After (common.problems)
    EVENTS.labels("maintenance", "accepted").inc()
    return Created(id=window.id)


@router.get(
    "/v1/maintenance-windows",
    summary="Announced maintenance windows, latest start first.",
    responses={401: ERRORS[401], 403: ERRORS[403]},
)
async def list_maintenance_windows(
    _: AcquirerOnly,
    ingest: IngestDep,
    bank_code: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> WindowList:
    query = select(
        windows.c.id, windows.c.bank_code, windows.c.starts_at, windows.c.ends_at, windows.c.reason
    )
    if bank_code is not None:
        query = query.where(windows.c.bank_code == bank_code)
    async with ingest.engine.connect() as conn:
        rows = (
            await conn.execute(query.order_by(windows.c.starts_at.desc()).limit(limit))
        ).mappings()
        items: list[Any] = [MaintenanceWindow.model_construct(**row) for row in rows]
    return WindowList(items=items)

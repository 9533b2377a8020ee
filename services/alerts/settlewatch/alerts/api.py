"""The alerts API (SPEC §4): alerts (list, one, ack, resolve), the webhook delivery log and a
merchant's test message.

A merchant token reads only its own alerts and deliveries (another merchant's: 404) and may
acknowledge its own alerts; resolve, retry and test need the acquirer. Lists are newest first
with an opaque cursor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from settlewatch.alerts.core.lifecycle import Invalid
from settlewatch.alerts.repository.alerts import Alerts
from settlewatch.alerts.repository.deliveries import Deliveries
from settlewatch.alerts.views import alert_json, delivery_json, test_body
from settlewatch.common.auth import (
    AcquirerOnly,
    Authenticated,
    Principal,
    merchant_scope,
    not_found_unless_allowed,
)
from settlewatch.common.cursors import decode_cursor, encode_cursor
from settlewatch.common.events import ID_PATTERN, Storable
from settlewatch.common.problems import ProblemError

__all__ = ["router"]

router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or unknown bearer token."},
    404: {"description": "No such object (or not yours)."},
    422: {"description": "A bad query parameter or body field, named in `errors`."},
}


class NoteEntry(BaseModel):
    at: datetime
    by: str
    action: str
    note: str


class AlertOut(BaseModel):
    alert_id: str
    type: str
    status: Literal["open", "acknowledged", "resolved"]
    merchant_id: str | None
    txn_id: str | None
    txn_ids: list[str] | None
    bank_code: str | None
    created_at: datetime
    updated_at: datetime
    probable_cause: str | None
    summary: str
    evidence: dict[str, Any]
    notes: list[NoteEntry]
    delivery_id: str | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    url: str
    status_code: int | None
    latency_ms: float
    error: str | None


class DeliveryOut(BaseModel):
    delivery_id: str
    merchant_id: str
    type: str
    status: Literal["pending", "delivered", "failed"]
    alert_ids: list[str]
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    attempts: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(max_length=2000), Storable] = ""


Limit = Annotated[int, Query(ge=1, le=1000)]
MerchantFilter = Annotated[str | None, Query(pattern=ID_PATTERN)]
TypeFilter = Annotated[str | None, Query(pattern=r"^[a-z_]+\.[a-z_]+$")]


def _stored_id(value: str, what: str) -> str:
    """Path ids are looked up as they are; one PostgreSQL cannot hold (NUL) exists nowhere."""
    if "\x00" in value:
        raise ProblemError(404, f"{what} not found")
    return value


def _alerts(request: Request) -> Alerts:
    alerts: Alerts = request.app.state.alerts
    return alerts


def _deliveries(request: Request) -> Deliveries:
    deliveries: Deliveries = request.app.state.deliveries
    return deliveries


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock()
    return now


def _next_cursor(items: list[dict[str, Any]], limit: int, key: str) -> str | None:
    if len(items) < limit:
        return None
    return encode_cursor(items[-1]["created_at"], items[-1][key])


@router.get(
    "/v1/alerts",
    tags=["alerts"],
    summary="Alerts, newest first; a merchant token sees only its own.",
    responses=_ERRORS,
)
async def list_alerts(
    request: Request,
    principal: Authenticated,
    merchant_id: MerchantFilter = None,
    type: TypeFilter = None,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> AlertPage:
    rows = await _alerts(request).page(
        merchant_id=merchant_scope(principal, merchant_id),
        kind=type,
        status=status,
        after=decode_cursor(cursor),
        limit=limit,
    )
    items = [alert_json(row) for row in rows]
    return AlertPage.model_validate(
        {"items": items, "next_cursor": _next_cursor(items, limit, "alert_id")}
    )


class TypeCount(BaseModel):
    type: str
    status: Literal["open", "acknowledged", "resolved"]
    count: int


class AlertsOverview(BaseModel):
    items: list[TypeCount]  # by type, then status
    incidents: dict[str, int]  # bank incidents not resolved, by bank


@router.get(
    "/v1/alerts/counts",
    tags=["alerts"],
    summary="How many alerts of each type are open, acknowledged, resolved, and the banks with "
    "an incident (the ops desk's overview; an acquirer token's only).",
    responses=_ERRORS,
)
async def count_alerts(request: Request, _: AcquirerOnly) -> AlertsOverview:
    by_type_status, incidents = await _alerts(request).counts()
    items = [
        TypeCount(type=kind, status=status, count=n)
        for (kind, status), n in sorted(by_type_status.items())
    ]
    return AlertsOverview(items=items, incidents=dict(sorted(incidents.items())))


@router.get(
    "/v1/alerts/{alert_id}",
    tags=["alerts"],
    summary="One alert with its evidence and notes.",
    responses=_ERRORS,
)
async def get_alert(alert_id: str, request: Request, principal: Authenticated) -> AlertOut:
    alert = await _alerts(request).get(_stored_id(alert_id, "alert"))
    if alert is None:
        raise ProblemError(404, "alert not found")
    not_found_unless_allowed(principal, alert.merchant_id, "alert")
    return AlertOut.model_validate(alert_json(alert))


async def _act(
    alert_id: str,
    body: NoteIn,
    request: Request,
    principal: Principal,
    action: Literal["ack", "resolve"],
) -> AlertOut:
    try:
        alert = await _alerts(request).act(
            _stored_id(alert_id, "alert"), action, body.note, principal.scope, _now(request)
        )
    except Invalid as exc:
        raise ProblemError(409, str(exc)) from None
    if alert is None:
        raise ProblemError(404, "alert not found")
    return AlertOut.model_validate(alert_json(alert))


@router.post(
    "/v1/alerts/{alert_id}/ack",
    tags=["alerts"],
    summary="Acknowledge an open alert; the note joins its history. A merchant token may "
    "acknowledge its own alerts (SPEC §16), not resolve them.",
    responses=_ERRORS | {409: {"description": "The alert is acknowledged or resolved already."}},
)
async def ack_alert(
    alert_id: str, body: NoteIn, request: Request, principal: Authenticated
) -> AlertOut:
    if principal.is_acquirer and not principal.may_write:
        raise ProblemError(403, "this token may only read (scope acquirer:read)")
    if not principal.is_acquirer:  # a merchant: its own alert, or none at all
        alert = await _alerts(request).get(_stored_id(alert_id, "alert"))
        not_found_unless_allowed(principal, alert.merchant_id if alert else None, "alert")
    return await _act(alert_id, body, request, principal, "ack")


@router.post(
    "/v1/alerts/{alert_id}/resolve",
    tags=["alerts"],
    summary="Resolve an open or acknowledged alert; the note joins its history.",
    responses=_ERRORS | {409: {"description": "The alert is resolved already."}},
)
async def resolve_alert(
    alert_id: str, body: NoteIn, request: Request, principal: AcquirerOnly
) -> AlertOut:
    return await _act(alert_id, body, request, principal, "resolve")


@router.get(
    "/v1/deliveries",
    tags=["deliveries"],
    summary="Webhook deliveries with every attempt, newest first.",
    responses=_ERRORS,
)
async def list_deliveries(
    request: Request,
    principal: Authenticated,
    merchant_id: MerchantFilter = None,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> DeliveryPage:
    rows = await _deliveries(request).page(
        merchant_id=merchant_scope(principal, merchant_id),
        status=status,
        after=decode_cursor(cursor),
        limit=limit,
    )
    items = [delivery_json(row) for row in rows]
    return DeliveryPage.model_validate(
        {"items": items, "next_cursor": _next_cursor(items, limit, "delivery_id")}
    )


@router.post(
    "/v1/deliveries/{delivery_id}/retry",
    tags=["deliveries"],
    status_code=202,
    summary="Send a pending or failed delivery again now (enables a disabled endpoint).",
    responses=_ERRORS | {409: {"description": "The delivery was delivered already."}},
)
async def retry_delivery(delivery_id: str, request: Request, _: AcquirerOnly) -> dict[str, str]:
    await _deliveries(request).retry(_stored_id(delivery_id, "delivery"), _now(request))
    return {"delivery_id": delivery_id, "status": "pending"}


class TestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merchant_id: Annotated[str, StringConstraints(pattern=ID_PATTERN)]


@router.post(
    "/v1/deliveries/test",
    tags=["deliveries"],
    status_code=202,
    summary="Send a merchant's webhook a test message (type `webhook.test`, no alerts), signed "
    "and retried as any delivery; follow it in the delivery log.",
    responses=_ERRORS | {409: {"description": "The merchant has no webhook."}},
)
async def test_delivery(body: TestIn, request: Request, _: AcquirerOnly) -> dict[str, str]:
    now = _now(request)
    delivery_id = await _deliveries(request).create_test(
        body.merchant_id, now, test_body(body.merchant_id, now)
    )
    return {"delivery_id": delivery_id, "status": "pending"}

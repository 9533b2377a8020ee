"""PUT/GET /v1/merchants/{merchant_id}: merchant profiles, stored and sent to the matcher;
GET /v1/merchants: the profiles page by page (the console's Merchants).

The row is written and the profile published to the merchant's partition in one database
transaction that commits only after the broker acknowledged, so the stored profile and the one
the matcher sees never disagree for long: a failure of either answers 503 and changes nothing
durable that a retry would not repeat.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from sqlalchemy import func, literal_column, or_, select, text
from sqlalchemy.dialects.postgresql import insert

from settlewatch.common import audit
from settlewatch.common.auth import (
    AcquirerOnly,
    Authenticated,
    merchant_scope,
    not_found_unless_allowed,
)
from settlewatch.common.cursors import decode_key_cursor, encode_key_cursor
from settlewatch.common.db import transaction
from settlewatch.common.events import (
    MerchantChanged,
    MerchantProfile,
    Searchable,
    encode_event,
    mask_account,
)
from settlewatch.common.openapi import json_body
from settlewatch.common.problems import ProblemError
from settlewatch.common.publisher import BrokerUnavailable
from settlewatch.common.responses import ERRORS
from settlewatch.common.validation import check_path_id, parse_body
from settlewatch.common.webhook_guard import Blocked, checked_addresses
from settlewatch.ingest import examples
from settlewatch.ingest.context import IngestDep
from settlewatch.ingest.metrics import EVENTS
from settlewatch.schema.reference import merchants

router = APIRouter(tags=["merchants"])

_PROFILE = TypeAdapter(MerchantProfile)
_CHANGED = TypeAdapter(MerchantChanged)
MASKED_SECRET = "whsec_**********"


def _stored(profile: MerchantProfile) -> dict[str, Any]:
    """The profile as kept in the database: JSON, without the webhook secret (sealed apart,
    ingest.webhook_secrets)."""
    data = profile.model_dump(mode="json")
    if profile.webhook is not None:
        del data["webhook"]["secret"]
    return data


_BEFORE = text("SELECT profile FROM merchants WHERE merchant_id = :m FOR UPDATE")


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The fields a change of profile touched, by name (the audit log keeps no values: a
    profile holds an account number)."""
    fields = sorted(before.keys() | after.keys())
    return [field for field in fields if before.get(field) != after.get(field)]


def _public(
    merchant_id: str, stored: dict[str, Any], created: datetime, updated: datetime
) -> dict[str, Any]:
    data = {"merchant_id": merchant_id, **stored}
    if data.get("webhook"):
        data["webhook"] = {**data["webhook"], "secret": MASKED_SECRET}
    if account := data.get("receiving_account"):
        data["receiving_account"] = {**account, "number": mask_account(account["number"])}
    return data | {"created_at": created.isoformat(), "updated_at": updated.isoformat()}


@router.put(
    "/v1/merchants/{merchant_id}",
    summary="Register or update a merchant (201 created, 200 updated).",
    openapi_extra=json_body(MerchantProfile, examples.MERCHANT),
    responses={200: {"description": "Updated."}, 201: {"description": "Created."}, **ERRORS},
)
async def put_merchant(
    merchant_id: str, request: Request, _: AcquirerOnly, ingest: IngestDep
) -> JSONResponse:
    try:
        check_path_id("merchant_id", merchant_id)
        profile = parse_body(await request.body(), _PROFILE).valid
        if profile.webhook is not None:
            await _check_webhook(request, profile.webhook.url)
    except ProblemError:
        EVENTS.labels("merchant", "rejected").inc()
        raise
    stored = _stored(profile)
    changed = MerchantChanged(
        merchant_id=merchant_id,
        # The matcher needs neither the secret nor the account (the evidence reads the row).
        profile=profile.model_copy(update={"webhook": None, "receiving_account": None}),
    )
    row_values = insert(merchants).values(
        merchant_id=merchant_id, settlement_bank=profile.settlement_bank, profile=stored
    )
    upsert = row_values.on_conflict_do_update(
        index_elements=[merchants.c.merchant_id],
        set_={
            "settlement_bank": row_values.excluded.settlement_bank,
            "profile": row_values.excluded.profile,
            "updated_at": func.now(),
        },
    ).returning(
        merchants.c.created_at,
        merchants.c.updated_at,
        literal_column("xmax = 0").label("inserted"),  # PostgreSQL: true when the row is new
    )
    try:
        async with transaction(ingest.engine) as conn:
            before = (await conn.execute(_BEFORE, {"m": merchant_id})).scalar_one_or_none()
            row = (await conn.execute(upsert)).one()  # locks the merchant's row till commit
            secret = profile.webhook.secret.get_secret_value() if profile.webhook else None
            rotated = await ingest.webhook_secrets.keep(conn, merchant_id, secret)
            touched = _changed(before or {}, stored) + (["webhook.secret"] if rotated else [])
            audit.describe(status=201 if row.inserted else 200, changed=touched)
            await ingest.publisher.publish(
                ingest.topics.transactions,
                [
                    (
                        merchant_id.encode(),
                        encode_event("merchant", _CHANGED.dump_json(changed, exclude_none=True)),
                    )
                ],
            )
    except BrokerUnavailable:
        EVENTS.labels("merchant", "unavailable").inc()
        raise  # answered 503 with Retry-After (common.problems)
    ingest.registry.add(merchant_id)
    EVENTS.labels("merchant", "accepted").inc()
    body = _public(merchant_id, stored, row.created_at, row.updated_at)
    return JSONResponse(body, status_code=201 if row.inserted else 200)


@router.get(
    "/v1/merchants/{merchant_id}",
    summary="A merchant's profile (webhook secret and receiving account masked); a merchant "
    "token sees only its own.",
    responses={404: ERRORS[422] | {"description": "No such merchant."}, 401: ERRORS[401]},
)
async def get_merchant(
    merchant_id: str, principal: Authenticated, ingest: IngestDep
) -> JSONResponse:
    not_found_unless_allowed(principal, merchant_id, "merchant")
    async with ingest.engine.connect() as conn:
        row = (
            await conn.execute(
                select(merchants.c.profile, merchants.c.created_at, merchants.c.updated_at).where(
                    merchants.c.merchant_id == merchant_id
                )
            )
        ).one_or_none()
    if row is None:
        raise ProblemError(404, "merchant not found")
    return JSONResponse(_public(merchant_id, row.profile, row.created_at, row.updated_at))


@router.get(
    "/v1/merchants",
    summary="Merchant profiles by id (webhook secrets and accounts masked): `q` finds an id "
    "starting with it or a name holding it, `settlement_bank` a bank's; a merchant token sees "
    "only its own.",
    responses={401: ERRORS[401], 422: ERRORS[422]},
)
async def list_merchants(
    principal: Authenticated,
    ingest: IngestDep,
    q: Annotated[str | None, Query(min_length=1, max_length=200), Searchable] = None,
    settlement_bank: Annotated[str | None, Query(max_length=64), Searchable] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    query = select(
        merchants.c.merchant_id, merchants.c.profile, merchants.c.created_at, merchants.c.updated_at
    ).order_by(merchants.c.merchant_id)
    if (own := merchant_scope(principal, None)) is not None:
        query = query.where(merchants.c.merchant_id == own)
    if q is not None:
        query = query.where(
            or_(
                merchants.c.merchant_id.startswith(q, autoescape=True),
                merchants.c.profile["name"].astext.icontains(q, autoescape=True),
            )
        )
    if settlement_bank is not None:
        query = query.where(merchants.c.settlement_bank == settlement_bank)
    if (after := decode_key_cursor(cursor)) is not None:
        query = query.where(merchants.c.merchant_id > after)
    async with ingest.engine.connect() as conn:
        rows = (await conn.execute(query.limit(limit))).all()
    items = [_public(r.merchant_id, r.profile, r.created_at, r.updated_at) for r in rows]
    last = rows[-1].merchant_id if len(rows) == limit else None
    return JSONResponse(
        {"items": items, "next_cursor": None if last is None else encode_key_cursor(last)}
    )


async def _check_webhook(request: Request, url: str) -> None:
    """422 when the webhook's host is or resolves to an address webhooks must not reach."""
    state = request.app.state
    try:
        await checked_addresses(url, state.webhook_resolver, state.webhook_allowed)
    except Blocked as exc:
        raise ProblemError(
            422,
            "The webhook URL reaches a private address.",
            [{"loc": ["body", "webhook", "url"], "msg": str(exc), "type": "private_address"}],
        ) from exc

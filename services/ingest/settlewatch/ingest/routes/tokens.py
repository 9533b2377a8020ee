"""POST/GET/DELETE /v1/tokens: tokens issued through the API (SPEC §14); GET /v1/tokens/current:
what the asking token may do (the console signs a person in with it).

The token is in the answer to its creation only; the table keeps its SHA-256 (common.tokens).
Revoking sets ``revoked_at`` — of the token and of every token it issued, in turn: ingest refuses
them at once, the other services within common.tokens.REVOCATION_SECONDS. A token issued by an
expiring token expires no later (by default when it does). The tokens of
`SETTLEWATCH_API_TOKENS` (the bootstrap) are not listed and cannot be revoked here.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import select, text, tuple_

from settlewatch.common import audit
from settlewatch.common.auth import AcquirerOnly, Authenticated
from settlewatch.common.config import SCOPE
from settlewatch.common.cursors import decode_cursor, encode_cursor
from settlewatch.common.db import transaction
from settlewatch.common.openapi import json_body
from settlewatch.common.problems import ProblemError
from settlewatch.common.responses import ERRORS
from settlewatch.common.tokens import TokenTable, digest, new_token
from settlewatch.common.tokens import token_id as id_of  # the path parameter is `token_id`
from settlewatch.common.validation import parse_body, reject
from settlewatch.ingest.context import IngestDep
from settlewatch.schema.access import api_tokens

router = APIRouter(tags=["tokens"])
_SCOPE = SCOPE.pattern.join(("^(?:", ")$"))


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: str = Field(pattern=_SCOPE, examples=["merchant:M1001"])
    description: str = Field(min_length=1, max_length=200)
    expires_at: AwareDatetime | None = None


class TokenOut(BaseModel):
    token_id: str
    scope: str
    description: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class CreatedToken(TokenOut):
    token: str = Field(description="The bearer token: shown in this answer only.")


class CurrentToken(BaseModel):
    scope: str = Field(examples=["acquirer:read"])
    token_id: str = Field(description="Names the token (a prefix of its hash).")
    expires_at: datetime | None
    may_write: bool = Field(description="Whether its scope may change anything (`acquirer`).")
    merchant_id: str | None = Field(description="The merchant of a `merchant:<id>` token.")


class TokenList(BaseModel):
    items: list[TokenOut]
    next_cursor: str | None


_TOKEN_IN = TypeAdapter(TokenIn)
# A token and every token it made, and they made…: none outlives the token that issued it.
_REVOKE = text("""
WITH RECURSIVE made(token_id) AS (
    SELECT token_id FROM api_tokens WHERE token_id = :token_id
    UNION
    SELECT t.token_id FROM api_tokens t JOIN made m ON t.created_by = m.token_id
)
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE token_id IN (SELECT token_id FROM made)
RETURNING digest
""")
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")
_EXAMPLE = {"scope": "merchant:M1001", "description": "merchant portal of M1001"}
_COLUMNS = (
    api_tokens.c.token_id,
    api_tokens.c.scope,
    api_tokens.c.description,
    api_tokens.c.created_by,
    api_tokens.c.created_at,
    api_tokens.c.expires_at,
    api_tokens.c.revoked_at,
)


@router.post(
    "/v1/tokens",
    status_code=201,
    summary="Issue a token (`acquirer`, `acquirer:read` or `merchant:<id>`); the token is shown "
    "in this answer only.",
    openapi_extra=json_body(TokenIn, _EXAMPLE),
    responses=ERRORS,
)
async def create_token(
    request: Request, principal: AcquirerOnly, ingest: IngestDep
) -> CreatedToken:
    wanted = parse_body(await request.body(), _TOKEN_IN).valid
    merchant = wanted.scope.removeprefix("merchant:")
    if merchant != wanted.scope and await ingest.registry.unknown([merchant]):
        reject([{"loc": ["body", "scope"], "msg": f"merchant {merchant} is not registered"}])
    expires_at = wanted.expires_at
    if expires_at is not None and expires_at <= ingest.clock():
        reject([{"loc": ["body", "expires_at"], "msg": "must be in the future"}])
    if principal.expires_at is not None:  # a token never outlives the token that made it
        if expires_at is None:
            expires_at = principal.expires_at
        elif expires_at > principal.expires_at:
            message = f"must not be later than the issuing token's ({principal.expires_at})"
            reject([{"loc": ["body", "expires_at"], "msg": message}])
    token = new_token()
    hashed = digest(token)
    insert = (
        api_tokens.insert()
        .values(
            token_id=id_of(hashed),
            digest=hashed,
            scope=wanted.scope,
            description=wanted.description,
            created_by=principal.token_id,
            expires_at=expires_at,
        )
        .returning(*_COLUMNS)
    )
    async with transaction(ingest.engine) as conn:
        row = (await conn.execute(insert)).one()
        audit.describe(token_id=row.token_id, scope=row.scope)
    return CreatedToken(token=token, **row._asdict())


@router.get(
    "/v1/tokens",
    summary="Tokens issued through the API, newest first (never the tokens themselves).",
    responses={401: ERRORS[401], 403: ERRORS[403], 422: ERRORS[422]},
)
async def list_tokens(
    _: AcquirerOnly,
    ingest: IngestDep,
    scope: Annotated[str | None, Query(pattern=_SCOPE)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> TokenList:
    query = select(*_COLUMNS).order_by(api_tokens.c.created_at.desc(), api_tokens.c.token_id.desc())
    if scope is not None:
        query = query.where(api_tokens.c.scope == scope)
    if (after := decode_cursor(cursor)) is not None:
        query = query.where(tuple_(api_tokens.c.created_at, api_tokens.c.token_id) < after)
    async with ingest.engine.connect() as conn:
        rows = (await conn.execute(query.limit(limit))).all()
    items = [TokenOut(**row._asdict()) for row in rows]
    last = items[-1] if len(items) == limit else None
    return TokenList(
        items=items,
        next_cursor=None if last is None else encode_cursor(last.created_at, last.token_id),
    )


@router.get(
    "/v1/tokens/current",
    summary="The token asking: its scope, what it may do, when it expires (any scope).",
    responses={401: ERRORS[401]},
)
async def current_token(principal: Authenticated) -> CurrentToken:
    return CurrentToken(
        scope=principal.scope,
        token_id=principal.token_id,
        expires_at=principal.expires_at,
        may_write=principal.may_write,
        merchant_id=principal.merchant_id,
    )


@router.delete(
    "/v1/tokens/{token_id}",
    status_code=204,
    summary="Revoke a token: refused here at once, by every service within 5 s.",
    responses={
        401: ERRORS[401],
        403: ERRORS[403],
        404: ERRORS[422] | {"description": "No such token."},
    },
)
async def revoke_token(
    token_id: str, request: Request, _: AcquirerOnly, ingest: IngestDep
) -> Response:
    if not _TOKEN_ID.fullmatch(token_id):
        raise ProblemError(404, "token not found")
    async with transaction(ingest.engine) as conn:
        revoked = (await conn.execute(_REVOKE, {"token_id": token_id})).scalars().all()
    if not revoked:
        raise ProblemError(404, "token not found")
    tokens: TokenTable = request.app.state.tokens
    for hashed in revoked:
        tokens.forget(hashed)
    return Response(status_code=204)

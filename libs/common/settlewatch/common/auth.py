"""Bearer-token authentication and scopes (SPEC §4).

Scopes: ``acquirer`` (everything), ``acquirer:read`` (every read, no write) and
``merchant:<id>`` (read-only, that merchant's objects). A token is one of
`SETTLEWATCH_API_TOKENS` (the bootstrap, compared in constant time) or one issued through the API
(common.tokens). Missing, unknown, revoked or expired token → 401; wrong scope → 403; a merchant
asking for another merchant's object → 404, so the existence of other merchants is not revealed;
a token over its rate → 429 (common.rate_limits). The gate (common.gate) authenticates every
request before its body is read; the dependencies here read what it found. Tokens are never
logged.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from settlewatch.common.config import ApiToken
from settlewatch.common.tokens import TokenTable, digest, token_id

__all__ = [
    "AcquirerOnly",
    "Authenticated",
    "Authenticator",
    "Principal",
    "merchant_scope",
    "not_found_unless_allowed",
]


@dataclass(frozen=True)
class Principal:
    scope: str
    token_id: str = ""  # names the token (a prefix of its hash), never the token itself
    expires_at: datetime | None = None  # of a token issued through the API with an expiry

    @property
    def is_acquirer(self) -> bool:
        """Reads every merchant's objects (``acquirer`` and ``acquirer:read``)."""
        return self.scope in ("acquirer", "acquirer:read")

    @property
    def may_write(self) -> bool:
        return self.scope == "acquirer"

    @property
    def merchant_id(self) -> str | None:
        return self.scope.removeprefix("merchant:") if self.scope.startswith("merchant:") else None

    def may_read(self, merchant_id: str | None) -> bool:
        return self.is_acquirer or (merchant_id is not None and self.merchant_id == merchant_id)


class Authenticator:
    def __init__(self, tokens: tuple[ApiToken, ...], issued: TokenTable) -> None:
        # Comparing fixed-length digests keeps the comparison time independent of token lengths.
        self._tokens = [(digest(t.secret.get_secret_value()), t.scope) for t in tokens]
        self._issued = issued

    async def authenticate(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("missing bearer token")
        offered = digest(token.strip())
        found: str | None = None
        for known, scope in self._tokens:  # no early exit: every token is compared
            if hmac.compare_digest(known, offered):
                found = scope
        if found is not None:
            return Principal(found, token_id(offered))
        issued = await self._issued.find(offered)
        if issued is None:
            raise _unauthorized("unknown token")
        if not issued.valid_at(datetime.now(UTC)):
            raise _unauthorized("revoked or expired token")
        return Principal(issued.scope, token_id(offered), issued.expires_at)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _authenticated(request: Request) -> Principal:
    """The caller, as the gate (common.gate) authenticated it before the body was read."""
    principal: Principal = request.state.principal
    return principal


def _acquirer(
    principal: Annotated[Principal, Depends(_authenticated)], request: Request
) -> Principal:
    if not principal.is_acquirer:
        raise HTTPException(403, "this operation needs an acquirer token")
    if not principal.may_write and request.method not in ("GET", "HEAD"):
        raise HTTPException(403, "this token may only read (scope acquirer:read)")
    return principal


Authenticated = Annotated[Principal, Depends(_authenticated)]
AcquirerOnly = Annotated[Principal, Depends(_acquirer)]


def not_found_unless_allowed(principal: Principal, merchant_id: str | None, what: str) -> None:
    """404 for a merchant token asking for another merchant's object (SPEC §4)."""
    if not principal.may_read(merchant_id):
        raise HTTPException(404, f"{what} not found")


def merchant_scope(principal: Principal, merchant_id: str | None) -> str | None:
    """The merchant a list is limited to: the one asked for, or for a merchant token its own
    (asking for another's: 404)."""
    if principal.is_acquirer:
        return merchant_id
    not_found_unless_allowed(principal, merchant_id or principal.merchant_id, "merchant")
    return principal.merchant_id

"""Tokens issued through the API (SPEC §14), as every service finds them.

A token is 32 random bytes (`sw_` and URL-safe base64); the database keeps only its SHA-256,
whose first 8 bytes in hex are the token's id (`token_id`, what the audit log and the API show).
A service looks a token up once and keeps the answer for ``ttl`` seconds, so a revocation or an
expiry is seen by every service within that time (SPEC: 5 s) at one query per token and period.
The tables are described in ``settlewatch.schema.access``; this module reads them by SQL because
``common`` sits below ``schema``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from cachetools import TTLCache
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["IssuedToken", "TokenTable", "digest", "new_token", "token_id"]

REVOCATION_SECONDS = 2.0  # how long a service trusts what it read; SPEC §14 allows 5 s


def new_token() -> str:
    return "sw_" + secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_id(token_digest: bytes) -> str:
    return token_digest[:8].hex()


@dataclass(frozen=True)
class IssuedToken:
    scope: str
    expires_at: datetime | None
    revoked: bool

    def valid_at(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


_FIND = text("SELECT scope, expires_at, revoked_at FROM api_tokens WHERE digest = :digest")


class TokenTable:
    def __init__(self, engine: AsyncEngine, ttl: float = REVOCATION_SECONDS) -> None:
        self._engine = engine
        # Unknown digests are kept too: a client retrying with a wrong token costs no query.
        self._seen: TTLCache[bytes, IssuedToken | None] = TTLCache(maxsize=100_000, ttl=ttl)

    async def find(self, token_digest: bytes) -> IssuedToken | None:
        if token_digest in self._seen:
            return self._seen[token_digest]
        async with self._engine.connect() as conn:
            row = (await conn.execute(_FIND, {"digest": token_digest})).one_or_none()
        found = None if row is None else IssuedToken(row[0], row[1], row[2] is not None)
        self._seen[token_digest] = found
        return found

    def forget(self, token_digest: bytes) -> None:
        """After a change made by this process: seen at once here, within ``ttl`` elsewhere."""
        self._seen.pop(token_digest, None)

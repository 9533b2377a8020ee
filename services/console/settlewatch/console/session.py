"""Sessions (SPEC §15). The console holds no privilege of its own: a session is the signed-in
token, sealed (Fernet: encrypted and authenticated) in an HttpOnly, SameSite=Strict cookie, Secure
when the console is reached over HTTPS. Each page the person opens seals it again, so the
session ends after `SETTLEWATCH_CONSOLE_IDLE` unused; signing out removes the cookie; revoking
the token (DELETE /v1/tokens/…) ends every session of it at the next page, since every page
calls the APIs with it.

Every form carries the session's CSRF token; the sign-in form, before there is a session, a
double-submitted one (a cookie and a field that must agree).

The cookie's key is derived from the first key of `SETTLEWATCH_SECRET_KEY` (HKDF, its own
purpose), so a cookie never opens a webhook secret nor the reverse; the other keys still open
cookies sealed before a rotation.
"""

from __future__ import annotations

import base64
import hmac
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from http.cookies import SimpleCookie

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import HTTPException, Request, Response
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from settlewatch.console.clients.ingest import CurrentToken

__all__ = [
    "SESSION_COOKIE",
    "SIGN_IN_COOKIE",
    "Session",
    "Sessions",
    "SignInFailures",
    "check_csrf",
]

SESSION_COOKIE = "sw_session"
SIGN_IN_COOKIE = "sw_sign_in"  # the sign-in form's double-submitted CSRF token


@dataclass(frozen=True)
class Session:
    token: str
    csrf: str
    scope: str
    may_write: bool
    merchant_id: str | None
    token_id: str  # names the person in what they change (an exception's history: "by")

    @classmethod
    def of(cls, token: str, who: CurrentToken) -> Session:
        """A new session of `token`, as ingest described it."""
        return cls(
            token,
            secrets.token_urlsafe(24),
            who["scope"],
            who["may_write"],
            who["merchant_id"],
            who["token_id"],
        )

    @property
    def by(self) -> str:
        return f"token:{self.token_id}"

    @property
    def may_ack(self) -> bool:
        """Acknowledges alerts: the acquirer's, and a merchant its own (SPEC §16)."""
        return self.may_write or self.merchant_id is not None


def _cookie_key(key: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"settlewatch console session"
    ).derive(base64.urlsafe_b64decode(key))
    return Fernet(base64.urlsafe_b64encode(derived))


class Sessions:
    def __init__(
        self, keys: Sequence[str], idle: timedelta, clock: Callable[[], float] = time.time
    ) -> None:
        self._fernet = MultiFernet([_cookie_key(key) for key in keys])
        self._idle_s = max(1, int(idle.total_seconds()))
        self._clock = clock

    def open(self, request: Request) -> Session | None:
        """The request's session; None when it has none, or one forged, or idle too long."""
        sealed = request.cookies.get(SESSION_COOKIE)
        if not sealed:
            return None
        try:
            data = orjson.loads(
                self._fernet.decrypt_at_time(
                    sealed.encode(), ttl=self._idle_s, current_time=int(self._clock())
                )
            )
            return Session(**data)
        except (InvalidToken, orjson.JSONDecodeError, TypeError):
            return None

    def keep(self, response: Response, session: Session, request: Request) -> None:
        """Seal the session into the response (signing in)."""
        response.raw_headers.append((b"set-cookie", self.cookie(session, request).encode()))

    def cookie(self, session: Session, request: Request) -> str:
        """The Set-Cookie value of the session sealed now: its idle time starts again."""
        sealed = self._fernet.encrypt_at_time(
            orjson.dumps(asdict(session)), int(self._clock())
        ).decode()
        cookie: SimpleCookie = SimpleCookie()
        cookie[SESSION_COOKIE] = sealed
        morsel = cookie[SESSION_COOKIE]
        morsel["path"] = "/"
        morsel["max-age"] = str(self._idle_s)
        morsel["httponly"] = True
        morsel["samesite"] = "Strict"
        if request.url.scheme == "https":
            morsel["secure"] = True
        return morsel.OutputString()

    @staticmethod
    def end(response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict")


def check_csrf(expected: str | None, given: str | None) -> None:
    """403 unless the form's token is the one expected (compared in constant time)."""
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise HTTPException(403, "the form's CSRF token is missing or wrong; reload the page")


class SignInFailures:
    """Tokens refused per client address. Every sign-in reaches ingest from the console's one
    address, so ingest cannot tell a guesser from the desk: the console counts the refusals
    itself, and an address with `limit` of them in `minutes` is not let try again (ingest not
    asked) until the window has room. In memory, per console process, as the services' rate
    limits are."""

    def __init__(self, limit: int = 10, minutes: int = 15) -> None:
        self._window = RateLimitItemPerMinute(limit, minutes)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def retry_after(self, address: str) -> int | None:
        """Seconds until the address may try again; None: it may now."""
        if self._limiter.test(self._window, address):
            return None
        reset = self._limiter.get_window_stats(self._window, address).reset_time
        return max(1, math.ceil(reset - time.time()))

    def refused(self, address: str) -> None:
        self._limiter.hit(self._window, address)

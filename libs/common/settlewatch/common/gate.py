"""The gate in front of every service's routes: who is calling, before anything they send is read.

For each HTTP request but the public ones (health, readiness, metrics, the API's documents):
1. a client address with too many failed authentications lately gets 429 without its token being
   looked at (an unknown token costs a database query; `SETTLEWATCH_AUTH_FAILURE_LIMIT`);
2. the bearer token is authenticated from the headers alone: 401 at once, the body unread;
3. the token's rate (common.rate_limits): 429;
4. the body's size: a declared `Content-Length` over the route's limit gets 413 at once; a body
   sent without one (chunked) is cut, and answered 413, as soon as it passes the limit.
The principal is left in the request's state, where the routes' auth dependency and the audit
log (common.audit) find it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settlewatch.common.auth import Authenticator, Principal
from settlewatch.common.problems import problem
from settlewatch.common.rate_limits import RateLimits

__all__ = ["PUBLIC_PATHS", "Gate"]

PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)


class Gate:
    """ASGI middleware; `larger` gives the paths under a prefix a limit of their own."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        failures: RateLimitItem,
        larger: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self._max_body_bytes = max_body_bytes
        self._larger = dict(larger or {})
        self._failures = failures
        self._failed = SlidingWindowCounterRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._authenticate(scope)
        except HTTPException as exc:
            await problem(exc.status_code, exc.detail, headers=exc.headers)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        limit = next(
            (n for p, n in self._larger.items() if scope["path"].startswith(p)),
            self._max_body_bytes,
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        seen, cut, started = 0, False, False

        async def limited_receive() -> Message:
            # Past the limit the client is answered 413 at once and the app is told the client
            # left (raising instead would reach FastAPI's body parsing, which answers 400).
            nonlocal seen, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    cut = True
                    if not started:
                        await _too_large(limit)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut:
                return  # the client has its 413
            started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _authenticate(self, scope: Scope) -> Principal:
        client = scope.get("client")
        address = client[0] if client else "unknown"
        if not self._failed.test(self._failures, address):
            reset = self._failed.get_window_stats(self._failures, address).reset_time
            raise HTTPException(
                429,
                f"too many failed authentications from this address ({self._failures}); "
                "retry later",
                headers={"Retry-After": str(max(1, math.ceil(reset - time.time())))},
            )
        app = scope["app"]
        authenticator: Authenticator = app.state.authenticator
        authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        try:
            principal = await authenticator.authenticate(authorization)
        except HTTPException:
            self._failed.hit(self._failures, address)
            raise
        limits: RateLimits = app.state.rate_limits
        limits.hit(principal.token_id)
        return principal


def _too_large(limit: int) -> Response:
    return problem(413, f"The body is larger than {limit} bytes.")

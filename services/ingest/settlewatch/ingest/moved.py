"""The routes that moved to recon in issue 29 (settlement files, accounts, mappings, payouts,
the desk) are answered with 308 Permanent Redirect to the same path and query on recon, for one
release, so a client of the release before learns the new address. Answered before anything
else: no token is checked and no body read here. (A client that follows the redirect by itself
must send its token again: HTTP clients drop it on the way to another port.)"""

from __future__ import annotations

from starlette.datastructures import URL
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["MOVED", "MovedToRecon", "moved"]

MOVED = (  # path prefixes: the route itself and those below it
    "/v1/settlement-files",
    "/v1/settlement-accounts",
    "/v1/file-mappings",
    "/v1/payouts",
    "/v1/exceptions",
)


def moved(path: str) -> bool:
    """Whether `path` is one of the routes that are recon's now."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in MOVED)


class MovedToRecon:
    def __init__(self, app: ASGIApp, *, recon_url: str | None, recon_port: int) -> None:
        self._app = app
        self._recon_url = recon_url.rstrip("/") if recon_url else None
        self._recon_port = recon_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not moved(scope["path"]):
            await self._app(scope, receive, send)
            return
        asked = URL(scope=scope)
        base = self._recon_url or f"{asked.scheme}://{asked.hostname}:{self._recon_port}"
        target = base + asked.path + (f"?{asked.query}" if asked.query else "")
        response = Response(status_code=308, headers={"location": target})
        await response(scope, receive, send)

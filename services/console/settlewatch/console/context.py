"""What a page gets: the console's parts, and the signed-in person's session and API clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

import httpx
from fastapi import Depends, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settlewatch.common.config import ConsoleSettings
from settlewatch.common.errors import BadInput
from settlewatch.console.clients import Clients
from settlewatch.console.i18n import Pages
from settlewatch.console.session import Session, Sessions, SignInFailures

__all__ = ["Console", "Desk", "KeepSession", "SignInRequired", "safe_next"]


@dataclass(frozen=True)
class Console:
    settings: ConsoleSettings
    http: httpx.AsyncClient  # one connection pool to the services, shared by every session
    sessions: Sessions
    pages: Pages
    failures: SignInFailures  # tokens refused per client address


class SignInRequired(BadInput):
    """No session, or an ended one: the page sends the person to sign in, then back."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to

    @property
    def location(self) -> str:
        return f"/sign-in?next={quote(self.back_to, safe='/')}"


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path of this console only (never another site)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


@dataclass(frozen=True)
class Signed:
    session: Session
    clients: Clients


def _signed_in(request: Request) -> Signed:
    console: Console = request.app.state.console
    session = console.sessions.open(request)
    if session is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(back if request.method == "GET" else "/")
    request.state.session = session  # KeepSession seals it into the answer again
    return Signed(session, Clients.of(console.http, console.settings, session.token))


Desk = Annotated[Signed, Depends(_signed_in)]


class KeepSession:
    """Seals the request's session into its answer again, so its idle time starts over
    (plain ASGI: streamed exports and PDFs pass through untouched)."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)

        async def sealing_send(message: Message) -> None:
            session = getattr(request.state, "session", None)
            if message["type"] == "http.response.start" and session is not None:
                headers = message.setdefault("headers", [])
                if not any(k == b"set-cookie" for k, _ in headers):  # sign-in/out set their own
                    headers.append((b"set-cookie", self.sessions.cookie(session, request).encode()))
            await send(message)

        await self.app(scope, receive, sealing_send)

"""Signing in with a token (SPEC §14's scopes), signing out, and the language switch. An address
that had too many tokens refused is answered 429 for a while (session.SignInFailures)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from settlewatch.console.clients import ApiRefused
from settlewatch.console.clients.ingest import IngestClient
from settlewatch.console.context import Console, Desk, safe_next
from settlewatch.console.i18n import LANG_COOKIE, LOCALES
from settlewatch.console.metrics import SIGN_INS
from settlewatch.console.session import SIGN_IN_COOKIE, Session, check_csrf

router = APIRouter()


def _form(request: Request, next_: str, status: int = 200, refused: str = "") -> Response:
    """`refused`: "" none, "token" not accepted, "tries" too many refused from the address."""
    console: Console = request.app.state.console
    csrf = secrets.token_urlsafe(24)
    ended = request.query_params.get("ended") == "1"
    context = {"csrf": csrf, "next": safe_next(next_), "refused": refused, "ended": ended}
    page = console.pages.render(request, "sign_in.html", context, status)
    page.set_cookie(SIGN_IN_COOKIE, csrf, httponly=True, samesite="strict", path="/sign-in")
    return page


@router.get("/sign-in")
async def sign_in_form(
    request: Request,
    next: str = "/",  # noqa: A002
    token: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The form; or, with `token`, a merchant portal's link (SPEC §16): an acquirer issues a
    `merchant:<id>` token with an expiry and embeds the link. Only such a token signs in by a
    link — a link signs in whoever follows it, so it must carry little and end soon."""
    if not token:
        return _form(request, next)
    return await _signed_in(request, token, next, by_link=True)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    token: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=100)] = "",  # missing: 403 below, as a wrong one
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002
) -> Response:
    check_csrf(request.cookies.get(SIGN_IN_COOKIE), csrf)
    return await _signed_in(request, token, next, by_link=False)


async def _signed_in(request: Request, token: str, next_: str, *, by_link: bool) -> Response:
    """A session of `token` and the way on to `next_`; the form again, saying why, if the
    token is refused (or, by a link, is not a merchant's with an expiry)."""
    console: Console = request.app.state.console
    address = request.client.host if request.client else "-"
    if (wait := console.failures.retry_after(address)) is not None:
        SIGN_INS.labels("limited").inc()
        answer = _form(request, next_, status=429, refused="tries")
        answer.headers["retry-after"] = str(wait)
        return answer
    ingest = IngestClient(console.http, console.settings.service_url("ingest"), token.strip())
    try:
        who = await ingest.current_token()
    except ApiRefused as refused:
        if refused.status not in (401, 422, 429):
            raise
        SIGN_INS.labels("refused").inc()
        console.failures.refused(address)
        return _form(request, next_, status=401, refused="token")
    if by_link and (who["merchant_id"] is None or who["expires_at"] is None):
        SIGN_INS.labels("refused").inc()
        return _form(request, next_, status=401, refused="link")
    SIGN_INS.labels("ok").inc()
    session = Session.of(token.strip(), who)
    answer = RedirectResponse(safe_next(next_), status_code=303)  # the token leaves the URL
    console.sessions.keep(answer, session, request)
    answer.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return answer


@router.post("/sign-out")
async def sign_out(
    request: Request, desk: Desk, csrf: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    check_csrf(desk.session.csrf, csrf)
    request.state.session = None  # not sealed again
    answer = RedirectResponse("/sign-in", status_code=303)
    request.app.state.console.sessions.end(answer)
    return answer


@router.get("/language/{locale}")
async def language(locale: str, next: str = "/") -> Response:  # noqa: A002
    """The switch: remembered a year; changes nothing but the words, so a link is enough."""
    answer = RedirectResponse(safe_next(next), status_code=303)
    if locale in LOCALES:
        answer.set_cookie(LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax")
    return answer

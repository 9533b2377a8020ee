"""The console's app (SPEC §15): server-rendered pages for the ops desk, calling the services'
APIs with the signed-in token. It has no database or broker of its own; it is ready when the
services answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from settlewatch.common.config import ConsoleSettings
from settlewatch.common.metrics import BUILD_INFO
from settlewatch.common.sealing import parse_keys
from settlewatch.common.service import ObserveRequests, add_health_routes
from settlewatch.console.clients import ApiRefused, ServiceUnavailable
from settlewatch.console.context import Console, KeepSession, SignInRequired
from settlewatch.console.i18n import Pages
from settlewatch.console.pages import (
    alerts,
    audit,
    calendars,
    exceptions,
    files,
    merchants,
    overview,
    payments,
    payouts,
    sign_in,
    terminals,
)
from settlewatch.console.session import Sessions, SignInFailures

__all__ = ["create_app"]

SERVICES = ("ingest", "matcher", "alerts", "recon")
# Pages of people's data are not cached, framed or given scripts from elsewhere.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def create_app(
    settings: ConsoleSettings, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """`transport`: how the console reaches the services (tests route it to in-process apps)."""
    sessions = Sessions(parse_keys(settings.secret_key.get_secret_value()), settings.idle)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(transport=transport) as http:
            app.state.console = Console(settings, http, sessions, Pages(), SignInFailures())
            yield

    app = FastAPI(
        title="settlewatch console",
        version=version("settlewatch"),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    BUILD_INFO.info({"service": "console", "version": version("settlewatch")})
    app.add_middleware(KeepSession, sessions=sessions)
    app.add_middleware(ObserveRequests)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        answer: Response = await call_next(request)
        answer.headers.update(SECURITY_HEADERS)
        return answer

    pages = (
        sign_in,
        overview,
        payments,
        exceptions,
        alerts,
        payouts,
        merchants,
        terminals,
        files,
        calendars,
        audit,
    )
    for page in pages:
        app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    async def readiness(request: Request) -> dict[str, str]:
        http: httpx.AsyncClient = request.app.state.console.http

        async def answers(service: str) -> str:
            try:
                url = f"{settings.service_url(service)}/healthz"  # type: ignore[arg-type]
                ok = (await http.get(url, timeout=2.0)).status_code == 200
            except httpx.HTTPError as exc:
                return f"error: {type(exc).__name__}"
            return "ok" if ok else "error: not healthy"

        results = await asyncio.gather(*(answers(s) for s in SERVICES))
        return dict(zip(SERVICES, results, strict=True))

    add_health_routes(app, readiness)
    _install_error_pages(app)
    return app


def _install_error_pages(app: FastAPI) -> None:
    """What a person sees when something is refused or missing: a page in their language,
    the API's own words (its `detail`, the fields it named) when an API refused."""

    def problem(
        request: Request, status: int, detail: str, fields: list[tuple[str, str]]
    ) -> Response:
        console: Console = request.app.state.console
        session = console.sessions.open(request)
        context = {"session": session, "status": status, "detail": detail, "fields": fields}
        return console.pages.render(request, "problem.html", context, status)

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(ApiRefused)
    async def refused(request: Request, exc: ApiRefused) -> Response:
        if exc.status == 401:  # the token was revoked or expired: the session is over
            request.state.session = None
            answer = RedirectResponse("/sign-in?ended=1", status_code=303)
            request.app.state.console.sessions.end(answer)
            return answer
        return problem(request, exc.status, exc.detail, exc.fields)

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, exc: ServiceUnavailable) -> Response:
        return problem(request, 503, exc.service, [])

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return problem(request, exc.status_code, str(exc.detail), [])

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        fields = [(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
        return problem(request, 422, "", fields)

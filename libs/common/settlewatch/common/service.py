"""What every service process shares: its connections, health endpoints, metrics and server.

A service builds its FastAPI app with :func:`create_service_app`, which opens the shared
:class:`Resources` in the app's lifespan and then the service's own (``lifespan`` argument), and
is run by :func:`run_service` (uvicorn), which turns SIGTERM/SIGINT into a graceful shutdown (a
second signal forces exit). A service runs its long-lived work (consumers, deliverers, clocks)
as ``resources.loops``: restarted when they fail, and part of ``/readyz``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any, TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settlewatch.common.audit import AuditChanges
from settlewatch.common.auth import Authenticator
from settlewatch.common.config import CommonSettings, ConfigError, ServiceSettings, load_settings
from settlewatch.common.db import create_engine, ping
from settlewatch.common.gate import Gate
from settlewatch.common.gc_tuning import tune_gc
from settlewatch.common.kafka import BrokerProbe
from settlewatch.common.logging import configure_logging
from settlewatch.common.loops import Loops
from settlewatch.common.metrics import BUILD_INFO, DEPENDENCY_UP, HTTP_REQUEST_SECONDS
from settlewatch.common.problems import install_problem_handlers
from settlewatch.common.rate_limits import RateLimits, parse_rate_limit
from settlewatch.common.tokens import TokenTable

__all__ = [
    "ObserveRequests",
    "Resources",
    "ServiceLifespan",
    "add_health_routes",
    "create_service_app",
    "run_service",
    "serve",
    "wall_clock",
]

_log = logging.getLogger(__name__)
S = TypeVar("S", bound=ServiceSettings)


def wall_clock() -> datetime:
    """The services' clock: what "now" and "the future" are measured against (tests pass their
    own to the parts that take one)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Resources:
    """The connections and loops of one service process; ``/readyz`` checks each of them."""

    engine: AsyncEngine
    broker: BrokerProbe
    loops: Loops

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, Callable[[], Awaitable[None]]] = {
            "database": lambda: ping(self.engine),
            "broker": self.broker.check,
        }
        results = await asyncio.gather(
            *(check() for check in checks.values()), return_exceptions=True
        )
        report: dict[str, str] = {}
        for name, result in zip(checks, results, strict=True):
            failed = isinstance(result, BaseException)
            DEPENDENCY_UP.labels(name).set(0 if failed else 1)
            report[name] = f"error: {type(result).__name__}" if failed else "ok"
        return report | self.loops.health()


@asynccontextmanager
async def _open_resources(settings: CommonSettings) -> AsyncIterator[Resources]:
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        broker = BrokerProbe(settings.kafka_bootstrap_servers)
        stack.push_async_callback(broker.close)
        loops = Loops()
        stack.push_async_callback(loops.stop)
        yield Resources(engine=engine, broker=broker, loops=loops)


# A service's own start/stop work, run inside the shared resources (e.g. producer, consumer loop).
ServiceLifespan = Callable[[FastAPI, Resources], AbstractAsyncContextManager[None]]


def create_service_app(
    *,
    service: str,
    settings: CommonSettings,
    title: str,
    description: str = "",
    routers: Sequence[APIRouter] = (),
    lifespan: ServiceLifespan | None = None,
    unaudited: Collection[str] = (),
    larger_bodies: Mapping[str, int] | None = None,
) -> FastAPI:
    """The app of a service: its routers plus health, readiness, metrics and problem+json;
    every request through the gate (common.gate: the caller, then the body's size, whose limit
    is `settings.max_body_bytes` but under the path prefixes of `larger_bodies`); every change
    through its routes is audited but those of the `unaudited` route templates."""

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _open_resources(settings) as resources:
            app.state.resources = resources
            app.state.tokens = TokenTable(resources.engine)
            app.state.authenticator = Authenticator(settings.api_tokens, app.state.tokens)
            if lifespan is None:
                yield
            else:
                async with lifespan(app, resources):
                    yield
        _log.info("service stopped")

    app = FastAPI(
        title=title, description=description, version=version("settlewatch"), lifespan=app_lifespan
    )
    app.state.rate_limits = RateLimits(parse_rate_limit(settings.rate_limit))
    BUILD_INFO.info({"service": service, "version": version("settlewatch")})
    install_problem_handlers(app)
    # Outermost last: requests are observed, then gated, then audited.
    app.add_middleware(AuditChanges, service=service, unaudited=unaudited)
    app.add_middleware(
        Gate,
        max_body_bytes=settings.max_body_bytes,
        failures=parse_rate_limit(settings.auth_failure_limit),
        larger=larger_bodies,
    )
    app.add_middleware(ObserveRequests)
    for router in routers:
        app.include_router(router)

    add_health_routes(app, lambda request: request.app.state.resources.readiness())
    return app


Readiness = Callable[[Request], Awaitable[dict[str, str]]]


def add_health_routes(app: FastAPI, readiness: Readiness) -> None:
    """/healthz (alive), /readyz (200 only when every check of `readiness` says ok), /metrics."""

    @app.get("/healthz", tags=["health"], summary="The process is alive.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="200 only when its dependencies answer.")
    async def readyz(request: Request) -> JSONResponse:
        report = await readiness(request)
        ready = all(value == "ok" for value in report.values())
        body: dict[str, Any] = {"status": "ready" if ready else "unavailable", "checks": report}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics.")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class ObserveRequests:
    """Request latency by route template (bounded label values), as plain ASGI middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Run the app until SIGTERM/SIGINT, then drain requests and close the lifespan."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # keep our JSON handler
        access_log=False,  # request metrics live in /metrics; access lines would swamp the logs
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


def run_service(service: str, settings_cls: type[S], create_app: Callable[[S], FastAPI]) -> None:
    """The ``__main__`` of a service: settings from the environment, JSON logs, then serve."""
    try:
        settings = load_settings(settings_cls)
    except ConfigError as exc:
        print(f"settlewatch {service}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(service, settings.log_level)
    tune_gc()
    serve(create_app(settings), host=settings.host, port=settings.port)

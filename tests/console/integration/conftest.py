"""The console in-process in front of the four services in-process, on the test's database and
broker: the console's clients reach each service by its host name (http://ingest, …) through a
transport that routes to that service's app."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest_asyncio
from cryptography.fernet import Fernet
from fastapi import FastAPI

from settlewatch.alerts.app import create_app as create_alerts
from settlewatch.common.config import (
    AlertsSettings,
    ConsoleSettings,
    IngestSettings,
    MatcherSettings,
    ReconSettings,
)
from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.common.webhook_guard import LOOPBACK
from settlewatch.console.app import create_app as create_console
from settlewatch.ingest.app import create_app as create_ingest
from settlewatch.matcher.app import create_app as create_matcher
from settlewatch.recon.app import create_app as create_recon
from tests.ingest.integration.conftest import ACQUIRER, TOKENS
from tests.support.matcher import service_env

SERVICES = ("ingest", "matcher", "alerts", "recon")


class ByHost(httpx.AsyncBaseTransport):
    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.routes[request.url.host].handle_async_request(request)


@dataclass
class Desk:
    """A browser's view of the console (cookies kept), and an acquirer's client per service."""

    browser: httpx.AsyncClient
    api: dict[str, httpx.AsyncClient]
    console: FastAPI

    async def sign_in(self, token: str, next_: str = "/") -> httpx.Response:
        form = await self.browser.get("/sign-in", params={"next": next_})
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None, form.text
        return await self.browser.post(
            "/sign-in", data={"token": token, "csrf": csrf.group(1), "next": next_}
        )

    def csrf(self, page: httpx.Response) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found is not None, page.text
        return found.group(1)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


@pytest_asyncio.fixture(loop_scope="session")
async def desk(database_url: str, broker_bootstrap: str, topic_prefix: str) -> AsyncIterator[Desk]:
    env = service_env(database_url, broker_bootstrap, topic_prefix, TOKENS) | {
        "SETTLEWATCH_SECRET_KEY": Fernet.generate_key().decode(),
        "SETTLEWATCH_WEBHOOK_ALLOW_PRIVATE": LOOPBACK,  # the tests' receivers, as under `up`
        "SETTLEWATCH_WRITE_OFF_APPROVAL": "CNY=1000000",  # above ¥10,000: four eyes
    }
    await ensure_topics(broker_bootstrap, Topics(topic_prefix), partitions=2, replication_factor=1)
    apps = {
        "ingest": create_ingest(IngestSettings(**env)),  # type: ignore[arg-type]
        "matcher": create_matcher(MatcherSettings(**env)),  # type: ignore[arg-type]
        "alerts": create_alerts(AlertsSettings(**env)),  # type: ignore[arg-type]
        "recon": create_recon(ReconSettings(**env)),  # type: ignore[arg-type]
    }
    urls = {f"SETTLEWATCH_{name.upper()}_URL": f"http://{name}" for name in SERVICES}
    console = create_console(
        ConsoleSettings(**env | urls),  # type: ignore[arg-type]
        ByHost({name: httpx.ASGITransport(app=app) for name, app in apps.items()}),
    )
    async with AsyncExitStack() as stack:
        for app in (*apps.values(), console):
            await stack.enter_async_context(app.router.lifespan_context(app))
        api = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url=f"http://{name}",
                    headers={"authorization": f"Bearer {ACQUIRER}"},
                )
            )
            for name, app in apps.items()
        }
        browser = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=console), base_url="http://console")
        )
        yield Desk(browser, api, console)

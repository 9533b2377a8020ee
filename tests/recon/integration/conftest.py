"""Recon in-process beside ingest: files, payouts and the desk need the merchants, payments and
settlements ingest takes. `client` sends each path to the service that serves it, as a gateway
in front of a deployment would."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from fastapi import FastAPI

from settlewatch.common.config import IngestSettings, ReconSettings
from settlewatch.ingest.app import create_app as create_ingest
from settlewatch.ingest.moved import moved
from settlewatch.recon.app import create_app as create_recon
from tests.ingest.integration.conftest import ACQUIRER, PROFILE, TOKENS, ingest_settings

__all__ = ["ingest_settings"]  # the fixture, shared with ingest's tests


class Gateway(httpx.AsyncBaseTransport):
    """The moved paths to recon, the rest to ingest."""

    def __init__(self, ingest: FastAPI, recon: FastAPI) -> None:
        self._ingest, self._recon = httpx.ASGITransport(ingest), httpx.ASGITransport(recon)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        to = self._recon if moved(request.url.path) else self._ingest
        return await to.handle_async_request(request)


@pytest_asyncio.fixture(loop_scope="session")
async def recon_settings(ingest_settings: IngestSettings) -> ReconSettings:
    return ReconSettings(
        DATABASE_URL=ingest_settings.database_url,
        KAFKA_BOOTSTRAP_SERVERS=ingest_settings.kafka_bootstrap_servers,
        SETTLEWATCH_TOPIC_PREFIX=ingest_settings.topic_prefix,
        SETTLEWATCH_API_TOKENS=TOKENS,
        SETTLEWATCH_MAX_BODY_BYTES="4000000",
    )


@pytest_asyncio.fixture(loop_scope="session")
async def client(
    ingest_settings: IngestSettings, recon_settings: ReconSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """An acquirer's client of ingest and recon, with merchant M1 registered."""
    ingest, recon = create_ingest(ingest_settings), create_recon(recon_settings)
    async with ingest.router.lifespan_context(ingest), recon.router.lifespan_context(recon):
        gateway = Gateway(ingest, recon)
        headers = {"authorization": f"Bearer {ACQUIRER}"}
        async with httpx.AsyncClient(
            transport=gateway, base_url="http://sw", headers=headers
        ) as http:
            registered = await http.put("/v1/merchants/M1", json=PROFILE)
            assert registered.status_code == 201, registered.text
            yield http

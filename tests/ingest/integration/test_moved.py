"""The routes that moved to recon (issue 29) are answered by ingest with 308 to the same path and
query on recon, before any token or body is looked at, for one release."""

from __future__ import annotations

import httpx
import pytest

from settlewatch.common.config import IngestSettings
from settlewatch.ingest.app import create_app
from tests.support.apps import app_client

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/settlement-files?format=camt.053"),
        ("GET", "/v1/settlement-files/file_1"),
        ("PUT", "/v1/settlement-accounts/A1"),
        ("PUT", "/v1/file-mappings/acme"),
        ("GET", "/v1/payouts?status=missing&limit=5"),
        ("POST", "/v1/exceptions/line:file_1:2/write-off"),
    ],
)
async def test_a_moved_route_is_redirected_to_recon_without_a_token(
    ingest_settings: IngestSettings, method: str, path: str
) -> None:
    async with app_client(create_app(ingest_settings)) as anonymous:
        answer = await anonymous.request(method, path, content=b"x" * 10_000_000)
    assert answer.status_code == 308
    assert answer.headers["location"] == f"http://sw:{ingest_settings.recon_port}{path}"


async def test_the_redirect_names_the_configured_recon_url(
    ingest_settings: IngestSettings,
) -> None:
    configured = ingest_settings.model_copy(update={"recon_url": "https://recon.acq.example/"})
    async with app_client(create_app(configured)) as anonymous:
        answer = await anonymous.get("/v1/exceptions", params={"status": "open"})
    assert answer.headers["location"] == "https://recon.acq.example/v1/exceptions?status=open"


async def test_routes_that_stayed_and_look_alike_are_not_redirected(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/v1/merchants/M1")).status_code == 200
    assert (await client.get("/v1/payouts-of-nothing")).status_code == 404

"""Webhook URLs at registration (SPEC §14): one that reaches a private, loopback, link-local or
metadata address — in any spelling, or through a name — is refused with a 422 naming the field,
and nothing is stored."""

from __future__ import annotations

import pytest

from settlewatch.common.config import IngestSettings
from settlewatch.common.webhook_guard import system_resolver
from settlewatch.ingest.app import create_app
from tests.common.unit.test_webhook_guard import REFUSED
from tests.ingest.integration.conftest import ACQUIRER, PROFILE
from tests.support.apps import app_client

pytestmark = pytest.mark.asyncio(loop_scope="session")

NAMES = {"hooks.private.test": ["10.0.0.1"], "hooks.public.test": ["93.184.215.14"]}


async def resolver(host: str, port: int) -> list[str]:
    """The test's names; the rest as the system reads them (.test names never resolve)."""
    return NAMES[host] if host in NAMES else await system_resolver(host, port)


async def test_private_webhook_addresses_are_refused_at_registration(
    ingest_settings: IngestSettings,
) -> None:
    settings = ingest_settings.model_copy(update={"webhook_allow_private": ""})
    app = create_app(settings)
    async with app_client(app, ACQUIRER) as client:
        app.state.webhook_resolver = resolver
        for url in [*REFUSED, "https://hooks.private.test/x"]:
            profile = PROFILE | {"webhook": PROFILE["webhook"] | {"url": url}}
            answer = await client.put("/v1/merchants/M-SSRF", json=profile)
            assert answer.status_code == 422, (url, answer.text)
            (error,) = answer.json()["errors"]
            assert error["loc"] == ["body", "webhook", "url"]
            assert "which is not a public address" in error["msg"]
        assert (await client.get("/v1/merchants/M-SSRF")).status_code == 404  # nothing stored
        # A name that does not resolve yet is left to the delivery's check.
        for url in ("https://hooks.public.test/x", "https://hooks.unknown.test/x"):
            profile = PROFILE | {"webhook": PROFILE["webhook"] | {"url": url}}
            assert (await client.put("/v1/merchants/M-SSRF", json=profile)).status_code in (
                200,
                201,
            )

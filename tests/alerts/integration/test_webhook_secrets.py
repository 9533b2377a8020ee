"""Webhook secrets at rest and their rotation (SPEC §14): registered through ingest, sealed in
the database, and signed with by the alerts service — both while a replaced one overlaps."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
import pytest_asyncio
import standardwebhooks
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.alerts.delivery import Deliverer
from settlewatch.alerts.repository.alerts import Alerts
from settlewatch.alerts.repository.deliveries import Deliveries
from settlewatch.common.config import IngestSettings
from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.common.sealing import Sealer
from settlewatch.ingest.app import create_app
from tests.alerts.integration.conftest import LOCAL, FakeClock, add_merchant, overdue
from tests.ingest.integration.conftest import ACQUIRER, PROFILE, TOKENS
from tests.support.apps import app_client
from tests.support.receiver import Received, receiver
from tests.support.urls import asyncpg_dsn

pytestmark = pytest.mark.asyncio(loop_scope="session")
WAIT = timedelta(seconds=10)
OVERLAP = timedelta(seconds=60)
OLD = "whsec_" + base64.b64encode(b"old-secret-0123456789abcdefghij").decode()
NEW = "whsec_" + base64.b64encode(b"new-secret-0123456789abcdefghij").decode()


def signed_by(got: Received, secret: str) -> bool:
    """Whether the Standard Webhooks reference code verifies the request with `secret`."""
    try:
        standardwebhooks.Webhook(secret).verify(got.body, got.headers, json_parse=False)
    except standardwebhooks.WebhookVerificationError:
        return False
    return True


@pytest_asyncio.fixture(loop_scope="session")
async def settings(database_url: str, broker_bootstrap: str, topic_prefix: str) -> IngestSettings:
    await ensure_topics(broker_bootstrap, Topics(topic_prefix), partitions=1, replication_factor=1)
    return IngestSettings(  # type: ignore[call-arg]
        DATABASE_URL=database_url,
        KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap,
        SETTLEWATCH_TOPIC_PREFIX=topic_prefix,
        SETTLEWATCH_API_TOKENS=TOKENS,
        SETTLEWATCH_WEBHOOK_SECRET_OVERLAP=f"PT{OVERLAP.total_seconds():.0f}S",
    )


@pytest_asyncio.fixture(loop_scope="session")
async def ingest(settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings), ACQUIRER) as client:
        yield client


async def stored(database_url: str) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch("SELECT * FROM webhook_secrets")
        rows += await conn.fetch("SELECT * FROM merchants")
    finally:
        await conn.close()
    return str([dict(r) for r in rows])


async def test_a_rotated_secret_signs_beside_the_new_one_until_its_overlap_ends(
    ingest: httpx.AsyncClient, database_url: str, alerts: Alerts, deliveries: Deliveries
) -> None:
    clock = FakeClock(datetime.now(UTC))  # the reference code checks the time it is told
    async with (
        receiver() as rec,
        Deliverer(deliveries, group_wait=WAIT, clock=clock, allowed=LOCAL) as deliverer,
    ):
        for secret in (OLD, OLD, NEW):  # the same secret again changes nothing
            hook = {"url": f"{rec.url}/hook", "secret": secret}
            answer = await ingest.put("/v1/merchants/M1", json=PROFILE | {"webhook": hook})
            assert answer.status_code in (200, 201), answer.text
            assert answer.json()["webhook"]["secret"] == "whsec_**********"
        at_rest = await stored(database_url)
        for secret in (OLD, NEW):
            assert secret not in at_rest and secret.removeprefix("whsec_") not in at_rest
        assert at_rest.count("'sealed'") == 2

        await alerts.absorb([overdue("T1")], clock())
        clock.advance(WAIT)
        await deliverer.run_once()
        [both] = rec.received
        assert len(both.headers["webhook-signature"].split(" ")) == 2
        assert signed_by(both, NEW) and signed_by(both, OLD)

        clock.advance(OVERLAP)
        await alerts.absorb([overdue("T2")], clock())
        clock.advance(WAIT)
        await deliverer.run_once()
        [_, only_new] = rec.received
        assert signed_by(only_new, NEW) and not signed_by(only_new, OLD)


async def test_a_webhook_removed_stops_signing_and_its_secrets_go(
    ingest: httpx.AsyncClient, database_url: str, alerts: Alerts, deliveries: Deliveries
) -> None:
    hook = {"url": "https://m1.example.com/hook", "secret": OLD}
    assert (
        await ingest.put("/v1/merchants/M1", json=PROFILE | {"webhook": hook})
    ).status_code == 201
    without = {k: v for k, v in PROFILE.items() if k != "webhook"}
    assert (await ingest.put("/v1/merchants/M1", json=without)).status_code == 200
    assert (await ingest.put("/v1/merchants/M1", json=without)).status_code == 200
    assert "'sealed'" not in await stored(database_url)  # retired at once, then deleted


async def test_ingest_reseals_every_secret_under_a_new_first_key(
    settings: IngestSettings, ingest: httpx.AsyncClient, database_url: str
) -> None:
    hook = {"url": "https://m1.example.com/hook", "secret": OLD}
    assert (
        await ingest.put("/v1/merchants/M1", json=PROFILE | {"webhook": hook})
    ).status_code == 201
    before = await stored(database_url)
    new_key = Fernet.generate_key().decode()
    rotated = settings.model_copy(
        update={"secret_key": SecretStr(f"{new_key},{os.environ['SETTLEWATCH_SECRET_KEY']}")}
    )
    async with app_client(create_app(rotated), ACQUIRER):  # re-seals at start
        pass
    after = await stored(database_url)
    assert after != before
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        sealed = await conn.fetchval("SELECT sealed FROM webhook_secrets")
    finally:
        await conn.close()
    assert Fernet(new_key).decrypt(sealed.encode()).decode() == OLD


async def test_a_secret_no_configured_key_opens_fails_the_delivery_saying_so(
    database_url: str, engine: AsyncEngine, alerts: Alerts
) -> None:
    clock = FakeClock()
    wrong_key = Deliveries(engine, Sealer([Fernet.generate_key().decode()]))
    async with (
        receiver() as rec,
        Deliverer(wrong_key, group_wait=WAIT, clock=clock, allowed=LOCAL) as deliverer,
    ):
        await add_merchant(database_url, "M1", f"{rec.url}/hook")  # sealed under the real key
        await alerts.absorb([overdue("T1")], clock())
        clock.advance(WAIT)
        await deliverer.run_once()
    assert rec.received == []
    [delivery] = await wrong_key.page(merchant_id="M1", status=None, after=None, limit=5)
    assert delivery.status == "failed"
    assert "no webhook secret this service can open" in (delivery.last_error or "")

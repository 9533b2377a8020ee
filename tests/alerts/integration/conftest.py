from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.alerts.core.lifecycle import ReceivedFinding
from settlewatch.alerts.repository.alerts import Alerts
from settlewatch.alerts.repository.deliveries import Deliveries
from settlewatch.common.db import create_engine
from settlewatch.common.sealing import Sealer, parse_keys
from settlewatch.common.webhook_guard import LOOPBACK, allowed_networks
from tests.support.findings import overdue_finding
from tests.support.urls import asyncpg_dsn

SEALER = Sealer(parse_keys(os.environ["SETTLEWATCH_SECRET_KEY"]))  # the session's (tests/conftest)
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
LOCAL = allowed_networks(LOOPBACK)  # the test receivers listen on localhost


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by

    def to(self, moment: datetime) -> None:
        self.now = max(self.now, moment)


@pytest_asyncio.fixture(loop_scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def alerts(engine: AsyncEngine) -> Alerts:
    return Alerts(engine)


@pytest_asyncio.fixture(loop_scope="session")
async def deliveries(engine: AsyncEngine) -> Deliveries:
    return Deliveries(engine, SEALER)


async def add_merchant(
    database_url: str, merchant_id: str, webhook_url: str | None, **profile: Any
) -> None:
    """A merchant profile as ingest stores it (its webhook secret sealed, in a row apart)."""
    stored = {"name": merchant_id, "settlement_bank": "ICBC", "settlement_cycle": "T1"} | profile
    stored["webhook"] = {"url": webhook_url} if webhook_url else None
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(
            "INSERT INTO merchants (merchant_id, settlement_bank, profile) VALUES ($1, $2, $3)",
            merchant_id,
            stored["settlement_bank"],
            orjson.dumps(stored).decode(),
        )
        if webhook_url:
            await conn.execute(
                "INSERT INTO webhook_secrets (merchant_id, key_id, sealed) VALUES ($1, $2, $3)",
                merchant_id,
                SEALER.key_id,
                SEALER.seal(SECRET),
            )
    finally:
        await conn.close()


def overdue(
    txn_id: str, merchant_id: str = "M1", bank: str = "ICBC", **state: Any
) -> ReceivedFinding:
    """A settlement.overdue finding as the matcher publishes it."""
    return ReceivedFinding.from_json(
        orjson.dumps(
            overdue_finding(txn_id, merchant_id, bank, state.get("state", "open"))
            | {"at": T0.isoformat()}
        )
    )

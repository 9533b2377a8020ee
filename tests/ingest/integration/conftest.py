from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio

from settlewatch.common.config import IngestSettings
from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.ingest.app import create_app
from tests.support.apps import app_client

ACQUIRER = "acq-token-0123456789"
MERCHANT_M1 = "m1-token-0123456789"
TOKENS = f"{ACQUIRER}=acquirer,{MERCHANT_M1}=merchant:M1"
PARTITIONS = 4

PROFILE: dict[str, Any] = {
    "name": "Shanghai Dumplings",
    "settlement_bank": "ICBC",
    "settlement_cycle": "T1",
    "webhook": {
        "url": "https://m1.example.com/hook",
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    },
}


def sale(txn_id: str = "T1", merchant_id: str = "M1", **changes: Any) -> dict[str, Any]:
    return {
        "txn_id": txn_id,
        "merchant_id": merchant_id,
        "terminal_id": "POS-1",
        "type": "sale",
        "amount_minor": 12800,
        "currency": "CNY",
        "occurred_at": "2025-11-20T10:02:31+08:00",
        "card_fingerprint": "fp_abc",
        "rrn": "532410283771",
    } | changes


def settlement(
    settlement_id: str = "S1", merchant_id: str = "M1", **changes: Any
) -> dict[str, Any]:
    return {
        "settlement_id": settlement_id,
        "merchant_id": merchant_id,
        "bank_code": "ICBC",
        "status": "settled",
        "occurred_at": "2025-11-21T09:15:00+08:00",
        "items": [{"txn_id": "T1", "gross_minor": 12800, "fee_minor": 77, "net_minor": 12723}],
    } | changes


@pytest_asyncio.fixture(loop_scope="session")
async def ingest_settings(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> IngestSettings:
    await ensure_topics(
        broker_bootstrap, Topics(topic_prefix), partitions=PARTITIONS, replication_factor=1
    )
    return IngestSettings(  # type: ignore[call-arg]
        DATABASE_URL=database_url,
        KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap,
        SETTLEWATCH_TOPIC_PREFIX=topic_prefix,
        SETTLEWATCH_API_TOKENS=TOKENS,
        SETTLEWATCH_MAX_BODY_BYTES="4000000",
    )


@pytest_asyncio.fixture(loop_scope="session")
async def client(ingest_settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    """An acquirer's client of a running ingest app, with merchant M1 registered."""
    async with app_client(create_app(ingest_settings), ACQUIRER) as http:
        registered = await http.put("/v1/merchants/M1", json=PROFILE)
        assert registered.status_code == 201, registered.text
        yield http

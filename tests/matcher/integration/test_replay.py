"""`settlewatch replay` (SPEC §13): the period's log through a fresh matcher reproduces what the
live matcher decided, writes nothing live, and answers what-ifs with other terms."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest

from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.ingest.app import create_app as create_ingest
from settlewatch.matcher.app import create_app as create_matcher
from tests.ingest.integration.conftest import ACQUIRER, PROFILE, TOKENS, sale
from tests.matcher.integration.test_pipeline import _clock_past, eventually, settings
from tests.support.apps import app_client
from tests.support.matcher import matcher_clock, service_env
from tests.support.urls import asyncpg_dsn

pytestmark = pytest.mark.asyncio(loop_scope="session")


def replay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "settlewatch.cli", "replay", *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def live_state(database_url: str) -> tuple[int, int, list[str]]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        payments = await conn.fetchval("SELECT count(*) FROM matcher_payments")
        outbox = await conn.fetchval("SELECT count(*) FROM matcher_outbox")
        scratch = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'settlewatch_replay_%'"
        )
    finally:
        await conn.close()
    return payments, outbox, [r[0] for r in scratch]


async def test_a_replay_reproduces_the_live_findings_and_a_what_if_changes_them(
    database_url: str, broker_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topics = Topics(topic_prefix)
    await ensure_topics(broker_bootstrap, topics, partitions=2, replication_factor=1)
    ingest_settings, matcher_settings = settings(database_url, broker_bootstrap, topic_prefix)
    started = datetime.now(UTC)
    async with app_client(create_ingest(ingest_settings), ACQUIRER) as ingest:
        d0 = PROFILE | {"settlement_cycle": "D0"}
        assert (await ingest.put("/v1/merchants/M1", json=d0)).status_code == 201
        when = (started - timedelta(days=2)).isoformat()
        batch = [
            sale("T-unpaid", occurred_at=when, card_fingerprint="fp-1"),
            sale("T-paid", occurred_at=when, card_fingerprint="fp-2"),
            *(
                sale(f"T-twice-{n}", occurred_at=started.isoformat(), card_fingerprint="fp-9")
                for n in (1, 2)
            ),
            sale("T-voided", occurred_at=when, card_fingerprint="fp-3"),
            sale("V1", type="void", original_txn_id="T-voided", occurred_at=when),
        ]
        assert (await ingest.post("/v1/transactions", json={"items": batch})).status_code == 202
        paid = {
            "settlement_id": "S1",
            "merchant_id": "M1",
            "bank_code": "ICBC",
            "status": "settled",
            "occurred_at": started.isoformat(),
            "items": [
                {"txn_id": "T-paid", "gross_minor": 12800, "fee_minor": 77, "net_minor": 12000}
            ],
        }
        assert (await ingest.post("/v1/settlements", json={"items": [paid]})).status_code == 202
        sent = datetime.now(UTC)
        async with app_client(create_matcher(matcher_settings)):
            await eventually(lambda: _clock_past(database_url, sent))
        end = await matcher_clock(database_url)
    assert end is not None
    before = await live_state(database_url)
    env = service_env(database_url, broker_bootstrap, topic_prefix, TOKENS)
    period = ["--from", (started - timedelta(days=3)).isoformat(), "--to", end.isoformat()]

    same = replay(env, *period, "--against-live")

    assert same.returncode == 0, same.stdout + same.stderr
    lines = same.stdout.splitlines()
    assert lines[-1] == "identical to the findings recorded live"
    assert any(" settlement.overdue:T-unpaid" in line for line in lines)
    assert any(" settlement.amount_mismatch:T-paid" in line for line in lines)
    assert any(" transaction.duplicate_suspected:" in line for line in lines)
    assert await live_state(database_url) == before  # nothing written live, scratch dropped

    # What if M1 were paid nine days after the sale: nothing would be overdue yet.
    terms = tmp_path / "terms.json"
    terms.write_bytes(orjson.dumps({"M1": PROFILE | {"settlement_cycle": "D9"}}))
    what_if = replay(env, *period, "--terms", str(terms), "--against-live")

    assert what_if.returncode == 1, what_if.stdout + what_if.stderr
    assert "only live:     settlement.overdue:T-unpaid#open" in what_if.stdout.splitlines()
    assert not any("only replayed" in line for line in what_if.stdout.splitlines()[:-1])

    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps({"M1": PROFILE | {"settlement_cycle": "T99x"}}))
    refused = replay(env, *period, "--terms", str(bad))
    assert refused.returncode == 2
    assert "M1.settlement_cycle" in refused.stderr

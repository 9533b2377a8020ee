"""schemathesis against each API's /openapi.json: no input makes a service answer 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from settlewatch.alerts.core.lifecycle import ReceivedFinding
from settlewatch.alerts.repository.alerts import Alerts
from settlewatch.common.db import create_engine
from settlewatch.common.kafka import Topics, ensure_topics
from tests.ingest.integration.conftest import ACQUIRER, PROFILE, TOKENS
from tests.support.examples import DEEP
from tests.support.findings import overdue_finding
from tests.support.service import served

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

# Each API's time under schemathesis: the full budget under `make test-deep`, a third in
# `make test` (same checks, fewer requests).
FUZZ_SECONDS = {"ingest": 30, "alerts": 20, "recon": 30}


def budget(service: str) -> int:
    return FUZZ_SECONDS[service] if DEEP else FUZZ_SECONDS[service] // 3


async def seed_alerts(database_url: str) -> None:
    """A few alerts, so that lists, pages and single reads have something to show."""
    engine = create_engine(database_url)
    try:
        findings = [
            ReceivedFinding.from_json(orjson.dumps(overdue_finding(f"T{n}"))) for n in range(3)
        ]
        await Alerts(engine).absorb(findings, datetime.now(UTC))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", list(FUZZ_SECONDS))
async def test_no_generated_request_gets_a_server_error(
    service: str, database_url: str, broker_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    await ensure_topics(broker_bootstrap, Topics(topic_prefix), partitions=2, replication_factor=1)
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": broker_bootstrap,
        "SETTLEWATCH_TOPIC_PREFIX": topic_prefix,
        "SETTLEWATCH_API_TOKENS": TOKENS,
    }
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is a dev dependency"
    if service == "alerts":
        await seed_alerts(database_url)
    with served(service, env, tmp_path / f"{service}.log") as url:
        if service == "ingest":
            auth = {"authorization": f"Bearer {ACQUIRER}"}
            assert httpx.put(f"{url}/v1/merchants/M1", json=PROFILE, headers=auth).is_success
        result = subprocess.run(
            [
                st,
                "run",
                f"{url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-time",
                str(budget(service)),
                "--header",
                f"Authorization: Bearer {ACQUIRER}",
                # One worker: with two, Python 3.11's ast module trips over itself in
                # hypothesis ("AST constructor recursion depth mismatch") on the alerts schema.
                "--workers",
                "1",
                "--suppress-health-check",
                "all",
            ],
            capture_output=True,
            text=True,
            timeout=budget(service) + 60,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]

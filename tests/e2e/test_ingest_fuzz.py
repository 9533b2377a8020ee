"""schemathesis against the ingest service's /openapi.json: no input makes it answer 5xx."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from settlewatch.common.kafka import Topics, ensure_topics
from tests.integration.ingest.conftest import ACQUIRER, PROFILE, TOKENS
from tests.support.service import served

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

FUZZ_SECONDS = 45


async def test_no_generated_request_gets_a_server_error(
    database_url: str, broker_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    await ensure_topics(broker_bootstrap, Topics(topic_prefix), partitions=2, replication_factor=1)
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": broker_bootstrap,
        "SETTLEWATCH_TOPIC_PREFIX": topic_prefix,
        "SETTLEWATCH_API_TOKENS": TOKENS,
    }
    st = shutil.which("st", path=str(Path(__import__("sys").executable).parent))
    assert st is not None, "schemathesis is a dev dependency"
    with served("ingest", env, tmp_path / "ingest.log") as url:
        auth = {"authorization": f"Bearer {ACQUIRER}"}
        assert httpx.put(f"{url}/v1/merchants/M1", json=PROFILE, headers=auth).status_code == 201
        result = subprocess.run(
            [
                st,
                "run",
                f"{url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-time",
                str(FUZZ_SECONDS),
                "--header",
                f"Authorization: Bearer {ACQUIRER}",
                "--workers",
                "2",
                "--suppress-health-check",
                "all",
            ],
            capture_output=True,
            text=True,
            timeout=FUZZ_SECONDS + 60,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]

"""`settlewatch calendar load FILE` from a shell (SPEC §10), against a running ingest service:
the CSV table of 2026 and the JSON of a year load, again is unchanged, bad days are refused
naming them (exit 1), a missing file is a usage error (exit 2)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from settlewatch.common.kafka import Topics, ensure_topics
from tests.cli.integration.test_import import settlewatch
from tests.support.matcher import service_env
from tests.support.service import served

pytestmark = pytest.mark.asyncio(loop_scope="session")

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "_derived"
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "calendars"
TOKEN = "calendar-token-0123456789"


def settlewatch_calendar(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return settlewatch(url, "calendar", "load", *args, token=TOKEN)


async def test_calendar_load_prints_what_it_loaded_and_exits_by_outcome(
    database_url: str, broker_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    await ensure_topics(broker_bootstrap, Topics(topic_prefix), partitions=2, replication_factor=1)
    env = service_env(database_url, broker_bootstrap, topic_prefix, f"{TOKEN}=acquirer")
    with served("ingest", env, tmp_path / "ingest.log") as url:
        table = settlewatch_calendar(url, str(SHARED / "cn_business_days_2026.csv"))
        assert table.returncode == 0, table.stderr
        assert table.stdout.startswith("loaded: CN 2026 version 1 (cn_business_days_2026.csv): ")
        assert table.stdout.endswith(" holidays, 6 working weekend days\n")

        synthetic = FIXTURE / "cn_2027_synthetic.json"
        first = settlewatch_calendar(url, str(synthetic))
        assert first.returncode == 0, first.stderr
        assert first.stdout == (
            "loaded: CN 2027 version 1 (synthetic 2027 schedule (test fixture)): "
            "11 holidays, 2 working weekend days\n"
        )
        again = settlewatch_calendar(url, str(synthetic))
        assert again.returncode == 0
        assert again.stdout.startswith("already loaded, unchanged: CN 2027 version 1 ")

        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"holidays": ["2028-01-03"], "workdays": ["2028-01-05"]}))
        refused = settlewatch_calendar(url, str(bad))
        assert refused.returncode == 1
        assert "refused:" in refused.stdout
        assert "workdays/0: must be a Saturday or Sunday" in refused.stdout

        missing = settlewatch_calendar(url, str(tmp_path / "nope.csv"))
        assert missing.returncode == 2 and "no such file" in missing.stderr

"""`settlewatch import FILE` from a shell (issue 13), against a running recon service: the
summary an operator reads, exit 0 imported (or already imported), 1 rejected, 2 when it cannot
be sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from settlewatch.common.kafka import Topics, ensure_topics
from tests.support.matcher import service_env
from tests.support.service import served

pytestmark = pytest.mark.asyncio(loop_scope="session")

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
TOKEN = "import-token-0123456789"


def settlewatch(url: str, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    """`settlewatch ARGS…` from a shell, sending to the service at `url` (the one the command
    talks to: recon for `import`, ingest for `calendar load`)."""
    env = os.environ | {
        "SETTLEWATCH_INGEST_URL": url,
        "SETTLEWATCH_RECON_URL": url,
        "SETTLEWATCH_TOKEN": token,
    }
    return subprocess.run(
        [sys.executable, "-m", "settlewatch.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def settlewatch_import(
    url: str, *args: str, token: str = TOKEN
) -> subprocess.CompletedProcess[str]:
    return settlewatch(url, "import", *args, token=token)


async def test_import_prints_the_summary_and_exits_by_outcome(
    database_url: str, broker_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    await ensure_topics(broker_bootstrap, Topics(topic_prefix), partitions=2, replication_factor=1)
    env = service_env(database_url, broker_bootstrap, topic_prefix, f"{TOKEN}=acquirer")
    with served("recon", env, tmp_path / "recon.log") as url:
        report = DATA / "OCA-bank-statement-import_adyen" / "settlement_detail_report_batch_380.csv"
        first = settlewatch_import(url, str(report))
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith("imported: file file_")
        assert "\n  lines 227, payouts 1\n" in first.stdout
        assert "USD credits 56,438.52  debits 1,130.45" in first.stdout

        again = settlewatch_import(url, str(report), "--format", "adyen")
        assert again.returncode == 0 and again.stdout.startswith("already imported: file file_")

        wrong = settlewatch_import(url, str(DATA / "genkgo-camt" / "camt053.v2.wrong.xml"))
        assert wrong.returncode == 1
        assert "rejected:" in wrong.stdout
        assert "Document/BkToCstmrStmt: no Stmt" in wrong.stdout

        missing = settlewatch_import(url, str(tmp_path / "nope.xml"))
        assert missing.returncode == 2 and "no such file" in missing.stderr
        refused = settlewatch_import(url, str(report), token="wrong-token-0123456789")
        assert refused.returncode == 2 and "refused (401)" in refused.stderr
    unreachable = settlewatch_import(url, str(report))
    assert unreachable.returncode == 2 and "recon not reachable" in unreachable.stderr

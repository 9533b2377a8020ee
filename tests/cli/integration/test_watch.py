"""`settlewatch import --watch DIR` (SPEC §16) against a running recon: files dropped in the folder
are imported once and moved to done/ or rejected/ with a report; a file still being written is
waited for; the same bytes dropped again go to done/ without a second import; the folder's
.settlewatch.json names a format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from settlewatch.common.kafka import Topics, ensure_topics
from tests.support.matcher import service_env
from tests.support.service import served

pytestmark = pytest.mark.asyncio(loop_scope="session")

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
CAMT = DATA / "genkgo-camt" / "camt053.v8.xml"
ADYEN = DATA / "OCA-bank-statement-import_adyen" / "settlement_detail_report_batch_380.csv"
TOKEN = "watch-token-0123456789"


def until(check, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


async def test_files_dropped_in_a_folder_are_imported_once_and_moved_with_a_report(
    database_url: str, broker_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    await ensure_topics(broker_bootstrap, Topics(topic_prefix), partitions=2, replication_factor=1)
    env = service_env(database_url, broker_bootstrap, topic_prefix, f"{TOKEN}=acquirer")
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / ".settlewatch.json").write_text(json.dumps({"formats": {"*.csv": "adyen"}}))
    with served("recon", env, tmp_path / "recon.log") as url:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "settlewatch.cli", "import", "--watch", str(drop)],
            env=os.environ | {"SETTLEWATCH_RECON_URL": url, "SETTLEWATCH_TOKEN": TOKEN},
            stdout=(tmp_path / "watch.out").open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            # A statement written in two goes, a pause between: taken whole, once.
            camt = CAMT.read_bytes()
            with (drop / "statement.xml").open("wb") as file:
                file.write(camt[: len(camt) // 2])
                file.flush()
                time.sleep(1.0)
                file.write(camt[len(camt) // 2 :])
            (drop / "report.csv.part").write_bytes(ADYEN.read_bytes())  # an upload under way
            time.sleep(3)
            assert (drop / "report.csv.part").exists()  # not taken under its temporary name
            (drop / "report.csv.part").rename(drop / "report.csv")
            (drop / "broken.xml").write_text("<Document>not a statement")
            done, rejected = drop / "done", drop / "rejected"
            until(
                lambda: (
                    (done / "statement.xml").exists()
                    and (done / "report.csv").exists()
                    and (rejected / "broken.xml").exists()
                ),
                (tmp_path / "watch.out").read_text(),
            )
            statement = json.loads((done / "statement.xml.json").read_text())
            assert statement["outcome"] == "imported" and statement["recon"]["format"].startswith(
                "camt.053"
            )
            report = json.loads((done / "report.csv.json").read_text())
            assert report["format"] == "adyen" and report["recon"]["counts"]["line"] == 227
            broken = json.loads((rejected / "broken.xml.json").read_text())
            assert broken["outcome"] == "rejected" and broken["recon"]["errors"]

            # The same bytes again, under another name: to done/, not imported a second time.
            (drop / "statement-again.xml").write_bytes(camt)
            until(lambda: (done / "statement-again.xml").exists(), "the duplicate not moved")
            again = json.loads((done / "statement-again.xml.json").read_text())
            assert again["outcome"] == "duplicate"
            assert again["recon"]["file_id"] == statement["recon"]["file_id"]
            assert again["sha256"] == statement["sha256"]
            files = httpx.get(
                f"{url}/v1/settlement-files",
                params={"status": "imported"},
                headers={"authorization": f"Bearer {TOKEN}"},
            ).json()["items"]
            assert len(files) == 2  # the statement once, the report
            assert sorted(p.name for p in drop.iterdir()) == [
                ".settlewatch.json",
                "done",
                "rejected",
            ]
        finally:
            watcher.terminate()
            watcher.wait(10)

"""A Chinese bank's day from its SFTP folder, end to end (issue 31): a GBK 对账单 whose mapping
makes one payout per batch, and the camt.053 of the merchant's account with the credit of one
batch only. `settlewatch import --watch` imports both from the folder and moves them to done/;
once the grace has passed, the batch with no credit is `payout.missing` for the merchant; the
对账单 dropped again goes to done/ without a second import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from settlewatch.demo.files import Credit, camt053
from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.stack import StartStack

pytestmark = pytest.mark.e2e
IBAN = "CN1210000000000000000007"
MAPPING = {
    "delimiter": "|",
    "encoding": "gbk",
    "header_row": 3,
    "columns": {
        "txn_id": "商户订单号",
        "occurred_at": "交易时间",
        "kind": "交易类型",
        "gross": "交易金额",
        "fee": "手续费",
        "value_date": "清算日期",
        "batch_id": "批次号",
    },
    "kinds": {"消费": "sale"},
    "payouts": "by_batch",
}


def until(check, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def bill(sold: datetime, paid: str) -> bytes:
    rows = [
        f"{t}|{sold:%Y-%m-%d %H:%M:%S}|消费|128.00|0.77|{paid}|{batch}"
        for t, batch in (("FP-T1", "B01"), ("FP-T2", "B01"), ("FP-T3", "B02"))
    ]
    title = "某某银行商户结算对账单\n商户号：FP1\n"
    header = "商户订单号|交易时间|交易类型|交易金额|手续费|清算日期|批次号\n"
    text = title + header
    return (text + "\n".join(rows) + "\n合计|3笔||384.00|2.31||\n").encode("gbk")


def test_a_banks_folder_drives_payout_missing_and_a_file_dropped_twice_is_imported_once(
    start_stack: StartStack, tmp_path: Path
) -> None:
    stack = start_stack({"SETTLEWATCH_FILES_QUIET": "PT3S"})
    stack.wait_ready()
    token = (stack.data_dir / "dev-token").read_text().strip()
    ingest, recon, alerts = stack.url("ingest"), stack.url("recon"), stack.url("alerts")
    http = httpx.Client(headers={"authorization": f"Bearer {token}"}, timeout=10)
    profile = {k: v for k, v in PROFILE.items() if k != "webhook"}
    assert http.put(f"{ingest}/v1/merchants/FP1", json=profile).status_code == 201
    account = {"iban": IBAN, "currency": "CNY", "bank_code": "ICBC", "owner": "FP1"}
    assert http.put(f"{recon}/v1/settlement-accounts/FPA", json=account).is_success
    assert http.put(f"{recon}/v1/file-mappings/icbc", json=MAPPING).is_success
    sold = datetime.now(UTC) - timedelta(days=7)
    sales = [
        sale(t, merchant_id="FP1", occurred_at=sold.isoformat(), card_fingerprint=t)
        for t in ("FP-T1", "FP-T2", "FP-T3")
    ]
    assert http.post(f"{ingest}/v1/transactions", json={"items": sales}).status_code == 202
    until(
        lambda: all(
            http.get(f"{stack.url('matcher')}/v1/payments/{t['txn_id']}").status_code == 200
            for t in sales
        ),
        "the sales never reached the matcher",
    )

    drop = tmp_path / "sftp"
    drop.mkdir()
    (drop / ".settlewatch.json").write_text(json.dumps({"formats": {"*.csv": "csv:icbc"}}))
    watcher = subprocess.Popen(
        [sys.executable, "-m", "settlewatch.cli", "import", "--watch", str(drop)],
        env=os.environ | {"SETTLEWATCH_RECON_URL": recon, "SETTLEWATCH_TOKEN": token},
        stdout=(tmp_path / "watch.out").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        paid = (datetime.now(UTC) - timedelta(days=5)).date()
        b02 = 12800 - 77  # B02's one line's net: its credit arrived; B01's never did
        (drop / "icbc-bill.csv").write_bytes(bill(sold, paid.isoformat()))
        statement = camt053(IBAN, "FP-STMT-1", [Credit(b02, paid, "ICBC SETTLEMENT B02")])
        (drop / "statement.xml").write_bytes(statement)
        done = drop / "done"
        until(
            lambda: (done / "icbc-bill.csv").exists() and (done / "statement.xml").exists(),
            (tmp_path / "watch.out").read_text(),
        )
        first = json.loads((done / "icbc-bill.csv.json").read_text())
        assert first["outcome"] == "imported" and first["recon"]["counts"]["payout"] == 2

        def missing() -> list[dict[str, Any]]:
            found = http.get(f"{alerts}/v1/alerts", params={"type": "payout.missing"})
            return [
                a
                for a in found.json()["items"]
                if a["merchant_id"] == "FP1" and a["status"] != "resolved"
            ]

        # B02 may be missing for a while first, if recon looks before the statement is in (a
        # loaded machine): that alert resolves once its credit is paired.
        until(
            lambda: [a["evidence"]["reference"] for a in missing()] == ["B01"],
            "no payout.missing for B01 alone",
        )
        (alert,) = missing()
        evidence = alert["evidence"]
        assert isinstance(evidence, dict)
        assert evidence["reference"] == "B01" and evidence["amount_minor"] == 2 * b02
        payouts = http.get(f"{recon}/v1/payouts", params={"merchant_id": "FP1"}).json()["items"]
        assert sorted((p["reference"], p["status"]) for p in payouts) == [
            ("B01", "missing"),
            ("B02", "arrived"),
        ]

        # The same 对账单 dropped again: moved to done/, not imported a second time.
        (drop / "icbc-bill-again.csv").write_bytes(bill(sold, paid.isoformat()))
        until(lambda: (done / "icbc-bill-again.csv").exists(), "the duplicate not moved")
        again = json.loads((done / "icbc-bill-again.csv.json").read_text())
        assert again["outcome"] == "duplicate"
        assert again["recon"]["file_id"] == first["recon"]["file_id"]
        assert (
            len(http.get(f"{recon}/v1/payouts", params={"merchant_id": "FP1"}).json()["items"]) == 2
        )
    finally:
        watcher.terminate()
        watcher.wait(10)

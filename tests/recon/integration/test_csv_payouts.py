"""A bank's CSV 对账单 drives the payout reconciliation like an Adyen report (SPEC §16): its
mapping declares payout rows, or one payout per batch and value date; recon expects each."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import httpx
import pytest

from settlewatch.demo.files import Credit, camt053
from tests.settlementfiles.unit.test_csvmap import PAYOUT_BILL, PAYOUT_COLUMNS

pytestmark = pytest.mark.asyncio(loop_scope="session")
IBAN = "CN1210000000000000000001"
MAPPING = {
    "delimiter": "|",
    "encoding": "gbk",
    "header_row": 3,
    "columns": PAYOUT_COLUMNS,
    "thousands_separator": ",",
}


async def expected_payouts(
    client: httpx.AsyncClient, count: int
) -> list[tuple[str, int, int, str]]:
    """The payouts recon expects, once its payout loop recorded `count` of them."""
    deadline = time.monotonic() + 30
    while True:
        items = (await client.get("/v1/payouts")).json()["items"]
        if len(items) >= count or time.monotonic() > deadline:
            return sorted(
                (p["reference"], p["amount_minor"], p["count"], p["status"]) for p in items
            )
        await asyncio.sleep(0.2)


async def test_payout_rows_of_a_gbk_bill_are_payouts_recon_expects(
    client: httpx.AsyncClient,
) -> None:
    mapping = MAPPING | {"kinds": {"消费": "sale", "划款": "payout"}}
    assert (await client.put("/v1/file-mappings/icbc", json=mapping)).is_success
    imported = await client.post(
        "/v1/settlement-files?format=csv:icbc", content=PAYOUT_BILL.encode("gbk")
    )
    assert imported.status_code == 202, imported.text
    assert imported.json()["counts"]["payout"] == 1 and imported.json()["counts"]["line"] == 3
    assert await expected_payouts(client, 1) == [("HK20261126001", 147_112, 2, "expected")]


async def test_a_by_batch_mapping_expects_a_payout_per_batch(client: httpx.AsyncClient) -> None:
    bill = "\n".join(line for line in PAYOUT_BILL.splitlines() if "划款" not in line) + "\n"
    mapping = MAPPING | {"kinds": {"消费": "sale"}, "payouts": "by_batch"}
    assert (await client.put("/v1/file-mappings/unionpay", json=mapping)).is_success
    imported = await client.post(
        "/v1/settlement-files?format=csv:unionpay", content=bill.encode("gbk")
    )
    assert imported.status_code == 202, imported.text
    assert await expected_payouts(client, 2) == [
        ("B01", 147_112, 2, "expected"),
        ("B02", 4_970, 1, "expected"),
    ]
    refused = await client.put(
        "/v1/file-mappings/bad",
        json=MAPPING | {"payouts": "by_batch", "columns": {"rrn": "参考号", "net": "交易金额"}},
    )
    assert refused.status_code == 422 and "batch_id" in refused.text


async def test_a_credit_within_its_accounts_tolerance_pays_the_payout_and_says_how_far(
    client: httpx.AsyncClient,
) -> None:
    bill = "\n".join(line for line in PAYOUT_BILL.splitlines() if "划款" not in line) + "\n"
    mapping = MAPPING | {"kinds": {"消费": "sale"}, "payouts": "by_batch"}
    assert (await client.put("/v1/file-mappings/unionpay", json=mapping)).is_success
    account = {
        "iban": IBAN,
        "currency": "CNY",
        "bank_code": "ICBC",
        "owner": "M1",
        "tolerance": {"amount_minor": 5, "days": 2},
    }
    assert (await client.put("/v1/settlement-accounts/A1", json=account)).is_success
    imported = await client.post(
        "/v1/settlement-files?format=csv:unionpay", content=bill.encode("gbk")
    )
    assert imported.status_code == 202, imported.text
    # B01's credit 2 fen short and two business days after its value date (Thu 26 → Mon 30).
    statement = camt053(IBAN, "STMT-T", [Credit(147_110, date(2026, 11, 30), "UNIONPAY")])
    assert (await client.post("/v1/settlement-files", content=statement)).status_code == 202

    deadline = time.monotonic() + 30
    while True:
        payouts = {p["reference"]: p for p in (await client.get("/v1/payouts")).json()["items"]}
        if payouts.get("B01", {}).get("status") == "arrived" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    b01 = payouts["B01"]
    assert b01["status"] == "arrived"
    assert b01["credit"]["difference_minor"] == -2
    assert b01["credit"]["tolerance"] == {"amount_minor": 5, "days": 2}
    assert payouts["B02"]["status"] == "expected"  # 49.70 is not 1,471.10

    wrong = await client.put(
        "/v1/settlement-accounts/A2",
        json=account | {"iban": "CN1210000000000000000009", "tolerance": {"days": -1}},
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["loc"][-1] == "days"

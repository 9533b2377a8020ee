"""A bank's CSV 对账单 drives the payout reconciliation like an Adyen report (SPEC §16): its
mapping declares payout rows, or one payout per batch and value date; recon expects each."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.settlementfiles.unit.test_csvmap import PAYOUT_BILL, PAYOUT_COLUMNS

pytestmark = pytest.mark.asyncio(loop_scope="session")
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

"""Report lines matched to payments (SPEC §9, issue 13), with a real matcher process: by txn_id,
else by the first rule that finds exactly one payment; several → ambiguous, never a guess;
none yet → tried again. A match settles the payment exactly as a JSON settlement does."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from settlewatch.common.db import create_engine
from settlewatch.schema.settlement_files import file_records
from tests.ingest.integration.conftest import ACQUIRER, PROFILE, TOKENS, sale
from tests.support.matcher import service_env
from tests.support.service import served

pytestmark = pytest.mark.asyncio(loop_scope="session")


def sales(now: str) -> list[dict[str, Any]]:
    base = {"occurred_at": now, "terminal_id": "POS-1"}
    return [
        sale("T1", rrn="R1", auth_code="A1", card_fingerprint="f1", **base),
        sale("T2", rrn="R2", auth_code="A2", card_fingerprint="f2", **base),
        sale("T3", rrn="R3", auth_code="A3", card_fingerprint="f3", **base),
        # Two payments with the same references and amount: no rule can tell them apart.
        sale("T4", rrn="R4", auth_code="A4", card_fingerprint="f4", **base | {"terminal_id": "P2"}),
        sale("T5", rrn="R4", auth_code="A4", card_fingerprint="f5", **base | {"terminal_id": "P3"}),
    ]


BILL = """txn,merchant,terminal,rrn,auth,gross,fee,value_date
T1,,,,,128.00,0.77,{day}
,M1,POS-1,R2,,128.00,0.77,{day}
,,,R3,A3,128.00,0.77,{day}
,,,R4,A4,128.00,0.77,{day}
,,,R9,A9,128.00,0.77,{day}
"""
MAPPING = {
    "columns": {
        "txn_id": "txn",
        "merchant_id": "merchant",
        "terminal_id": "terminal",
        "rrn": "rrn",
        "auth_code": "auth",
        "gross": "gross",
        "fee": "fee",
        "value_date": "value_date",
    }
}


async def line_states(database_url: str, file_id: str) -> list[tuple[str, str | None, str | None]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    file_records.c.match_status, file_records.c.match_rule, file_records.c.txn_id
                )
                .where(file_records.c.file_id == file_id)
                .order_by(file_records.c.seq)
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        await engine.dispose()


async def status_of(matcher: httpx.AsyncClient, txn_id: str) -> str | None:
    answer = await matcher.get(f"/v1/payments/{txn_id}")
    return answer.json()["status"] if answer.status_code == 200 else None


async def until(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_lines_are_matched_by_the_first_rule_that_finds_one_payment(
    client: httpx.AsyncClient,
    database_url: str,
    broker_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    env = service_env(database_url, broker_bootstrap, topic_prefix, TOKENS)
    with served("matcher", env, tmp_path / "matcher.log") as matcher_url:
        auth = {"authorization": f"Bearer {ACQUIRER}"}
        async with httpx.AsyncClient(base_url=matcher_url, headers=auth, timeout=10) as matcher:
            assert (await client.put("/v1/merchants/M1", json=PROFILE)).status_code in (200, 201)
            now = datetime.now(UTC)
            items = sales(now.isoformat())
            assert (await client.post("/v1/transactions", json={"items": items})).status_code == 202

            async def all_known() -> bool:
                return all([await status_of(matcher, t["txn_id"]) == "pending" for t in items])

            await until(all_known)
            assert (await client.put("/v1/file-mappings/bank", json=MAPPING)).status_code == 201
            bill = BILL.format(day=now.date().isoformat()).encode()
            imported = await client.post("/v1/settlement-files?format=csv:bank", content=bill)
            assert imported.status_code == 202, imported.text
            file_id = imported.json()["file_id"]

            async def settled() -> bool:
                return [await status_of(matcher, t) for t in ("T1", "T2", "T3")] == ["settled"] * 3

            await until(settled)
            assert await line_states(database_url, file_id) == [
                ("matched", "txn_id", "T1"),
                ("matched", "merchant_terminal_rrn", "T2"),
                ("matched", "rrn_auth_amount", "T3"),
                ("ambiguous", "rrn_auth_amount", None),
                ("unmatched", None, None),
            ]
            # Never a guess: both payments the ambiguous line could be are still pending.
            assert [await status_of(matcher, t) for t in ("T4", "T5")] == ["pending", "pending"]

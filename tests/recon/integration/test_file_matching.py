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
from settlewatch.schema.settlement_files import file_findings, file_records
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, PROFILE, TOKENS, sale
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


async def watched(
    client: httpx.AsyncClient, matcher: httpx.AsyncClient, items: list[dict[str, Any]]
) -> None:
    """M1's sales posted, and the matcher watching each of them."""
    assert (await client.put("/v1/merchants/M1", json=PROFILE)).status_code in (200, 201)
    assert (await client.post("/v1/transactions", json={"items": items})).status_code == 202

    async def all_known() -> bool:
        return all([await status_of(matcher, t["txn_id"]) == "pending" for t in items])

    await until(all_known)


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
            now = datetime.now(UTC)
            await watched(client, matcher, sales(now.isoformat()))
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
            # The payment shows which rule tied the report's line to it.
            shown = (await matcher.get("/v1/payments/T2")).json()
            assert (shown["matched_by"], shown["settlement_id"]) == (
                "merchant_terminal_rrn",
                f"{file_id}:1",
            )
            assert "(matched by merchant_terminal_rrn)" in shown["history"][-1]["event"]
            # Never a guess: both payments the ambiguous line could be are still pending.
            assert [await status_of(matcher, t) for t in ("T4", "T5")] == ["pending", "pending"]

            # What no rule decided is in the exception queue, the ambiguous line with its finding.
            queue = (await client.get("/v1/exceptions", params={"file_id": file_id})).json()
            kinds = {e["exception_id"]: (e["kind"], e["status"]) for e in queue["items"]}
            ambiguous, unmatched = f"line:{file_id}:3", f"line:{file_id}:4"
            assert kinds == {
                ambiguous: ("ambiguous_line", "open"),
                unmatched: ("unmatched_line", "open"),
            }
            ambiguous_item = next(e for e in queue["items"] if e["exception_id"] == ambiguous)
            assert sorted(ambiguous_item["evidence"]["txn_ids"]) == ["T4", "T5"]
            assert ambiguous_item["finding_ids"] == [f"settlement.ambiguous_line:{file_id}:3"]

            # A person chooses: the chosen payment is settled exactly as by a rule.
            refused = await client.post(
                f"/v1/exceptions/{ambiguous}/match", json={"txn_id": "T404", "by": "ops:li"}
            )
            assert refused.status_code == 422
            assert refused.json()["errors"][0]["loc"] == ["body", "txn_id"]
            chosen = await client.post(
                f"/v1/exceptions/{ambiguous}/match",
                json={"txn_id": "T5", "by": "ops:li", "note": "terminal P3 per the merchant"},
            )
            assert chosen.status_code == 204, chosen.text

            async def t5_settled() -> bool:
                return await status_of(matcher, "T5") == "settled"

            await until(t5_settled)
            assert await status_of(matcher, "T4") == "pending"
            assert (await matcher.get("/v1/payments/T5")).json()["matched_by"] == "manual"
            assert (await line_states(database_url, file_id))[3] == ("matched", "manual", "T5")
            done = (await client.get(f"/v1/exceptions/{ambiguous}")).json()
            assert done["status"] == "matched"
            assert [(h["action"], h["by"]) for h in done["history"]] == [
                ("opened", "settlewatch"),
                ("match", "ops:li"),
            ]
            assert "T5" in done["history"][1]["note"]
            again = await client.post(
                f"/v1/exceptions/{ambiguous}/match", json={"txn_id": "T4", "by": "ops:li"}
            )
            assert again.status_code == 409

            # Written off with a reason, not tried again; reopened, tried again.
            off = {"by": "ops:wang", "reason": "a test payment of the bank"}
            assert (
                await client.post(f"/v1/exceptions/{unmatched}/write-off", json=off)
            ).status_code == 204
            assert (await line_states(database_url, file_id))[4][0] == "written_off"
            assert (
                await client.post(f"/v1/exceptions/{unmatched}/write-off", json=off)
            ).status_code == 409
            back = {"by": "ops:li", "reason": "the bank says it is real"}
            assert (
                await client.post(
                    "/v1/exceptions/reopen", json=back | {"exception_ids": [unmatched]}
                )
            ).status_code == 204
            reopened = (await client.get(f"/v1/exceptions/{unmatched}")).json()
            assert reopened["status"] == "open"
            assert [h["note"] for h in reopened["history"][1:]] == [off["reason"], back["reason"]]
            assert (await line_states(database_url, file_id))[4][0] == "unmatched"

            # In bulk, all or nothing: one bad item refuses the whole request, named.
            bulk = {"by": "ops:li", "items": [{"exception_id": unmatched, "txn_id": "T4"}]}
            bad = bulk | {"items": bulk["items"] + [{"exception_id": ambiguous, "txn_id": "T4"}]}
            refused_bulk = await client.post("/v1/exceptions/match", json=bad)
            assert refused_bulk.status_code == 409
            assert refused_bulk.json()["errors"][0]["loc"] == ["body", "items", 1, "exception_id"]
            assert (await line_states(database_url, file_id))[4][0] == "unmatched"
            assert (await client.post("/v1/exceptions/match", json=bulk)).status_code == 204

            async def t4_settled() -> bool:
                return await status_of(matcher, "T4") == "settled"

            await until(t4_settled)

            # The finding was raised and resolved through the outbox, naming who and why.
            async def findings_published() -> bool:
                return (
                    await published_findings(database_url, f"settlement.ambiguous_line:{file_id}:3")
                    == 2
                )

            await until(findings_published)


async def published_findings(database_url: str, finding_id: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return len(
                (
                    await conn.execute(
                        select(file_findings.c.key).where(
                            file_findings.c.key.startswith(finding_id + "#"),
                            file_findings.c.published_at.is_not(None),
                        )
                    )
                ).all()
            )
    finally:
        await engine.dispose()


async def test_the_exception_queue_refuses_what_it_cannot_do_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.post(
        "/v1/exceptions/line:file_x:1/write-off", json={"by": "ops", "reason": "r"}
    )
    assert missing.status_code == 404
    bulk = await client.post(
        "/v1/exceptions/write-off", json={"by": "ops", "reason": "r", "exception_ids": ["a", "a"]}
    )
    assert bulk.status_code == 422
    assert bulk.json()["errors"][0]["loc"] == ["body", "exception_ids", 1]
    both = await client.post(
        "/v1/exceptions/line:file_x:1/match", json={"by": "ops", "txn_id": "T", "payout_id": "P"}
    )
    assert both.status_code == 422
    no_reason = await client.post("/v1/exceptions/line:file_x:1/write-off", json={"by": "ops"})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["loc"] == ["reason"]
    merchant = await client.post(
        "/v1/exceptions/line:file_x:1/write-off",
        json={"by": "ops", "reason": "r"},
        headers={"authorization": f"Bearer {MERCHANT_M1}"},
    )
    assert merchant.status_code == 403


async def test_the_queue_takes_a_day_of_the_span_as_a_bound(client: httpx.AsyncClient) -> None:
    """Query bounds are held to the span body fields are (issue 28): 2000-01-01 to 2099-12-31."""
    for params in ({"to": "2099-12-31"}, {"from": "2000-01-01"}):
        answer = await client.get("/v1/exceptions", params=params)
        assert answer.status_code == 200, answer.text
    for name, day in (("to", "9999-12-31"), ("from", "0001-01-01")):
        answer = await client.get("/v1/exceptions", params={name: day})
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["loc"] == ["query", name]
    assert (await client.get("/v1/exceptions", params={"kind": "nope"})).status_code == 422


async def test_a_line_whose_settlement_the_api_would_refuse_stays_an_exception_saying_why(
    client: httpx.AsyncClient,
    database_url: str,
    broker_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """A matched line was published as a settlement whatever it held: the matcher
    dead-lettered a terminal id the API refuses, while the line showed matched and its
    exception was closed; the payment went overdue (issue 28 item 4)."""
    env = service_env(database_url, broker_bootstrap, topic_prefix, TOKENS)
    with served("matcher", env, tmp_path / "matcher.log") as matcher_url:
        auth = {"authorization": f"Bearer {ACQUIRER}"}
        async with httpx.AsyncClient(base_url=matcher_url, headers=auth, timeout=10) as matcher:
            now = datetime.now(UTC)
            base = {"occurred_at": now.isoformat(), "terminal_id": "POS-1"}
            items = [
                sale(f"T{n}", rrn=f"R{n}", auth_code=f"A{n}", card_fingerprint=f"f{n}", **base)
                for n in (21, 22, 23)
            ]
            await watched(client, matcher, items)
            assert (await client.put("/v1/file-mappings/bank", json=MAPPING)).status_code in (
                200,
                201,
            )
            day = now.date().isoformat()
            bill = (
                "txn,merchant,terminal,rrn,auth,gross,fee,value_date\n"
                f"T21,,终端 01,,,128.00,0.77,{day}\n"  # the bank's own label for the terminal
                f"T22,,,,,128.00,0.77,2300-01-01\n"  # a value date no settlement may have
                f",,终端 02,R29,A29,128.00,0.77,{day}\n"  # no payment: unmatched
            ).encode()
            imported = await client.post("/v1/settlement-files?format=csv:bank", content=bill)
            assert imported.status_code == 202, imported.text
            file_id = imported.json()["file_id"]

            async def decided() -> bool:
                states = await line_states(database_url, file_id)
                return all(status != "unmatched" for status, *_ in states[:2])

            await until(decided)
            assert (await line_states(database_url, file_id))[:2] == [
                ("invalid", "txn_id", "T21"),
                ("invalid", "txn_id", "T22"),
            ]
            refused = (
                await client.get(
                    "/v1/exceptions", params={"file_id": file_id, "kind": "invalid_line"}
                )
            ).json()["items"]
            assert [
                (e["evidence"]["txn_id"], e["evidence"]["errors"][0]["loc"]) for e in refused
            ] == [
                ("T21", ["settlement", "items", 0, "terminal_id"]),
                ("T22", ["settlement", "value_date"]),
            ]
            assert all(e["status"] == "open" for e in refused)
            # It cannot be matched by hand either: the same settlement would be refused.
            again = await client.post(
                f"/v1/exceptions/{refused[0]['exception_id']}/match",
                json={"txn_id": "T21", "by": "ops:li"},
            )
            assert again.status_code == 409, again.text
            # Nor can another line carrying the same terminal be matched to a payment.
            unmatched = f"line:{file_id}:2"
            by_hand = await client.post(
                f"/v1/exceptions/{unmatched}/match", json={"txn_id": "T23", "by": "ops:li"}
            )
            assert by_hand.status_code == 422, by_hand.text
            (error,) = by_hand.json()["errors"]
            assert error["loc"] == ["body", "txn_id"] and "terminal_id" in error["msg"]
            assert (await client.get(f"/v1/exceptions/{unmatched}")).json()["status"] == "open"
            await asyncio.sleep(2)  # what a publish would have taken
            assert [await status_of(matcher, t) for t in ("T21", "T22", "T23")] == ["pending"] * 3

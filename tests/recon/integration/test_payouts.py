"""Expected payouts against bank statements (SPEC §9, issue 13), on a real PostgreSQL with an
injected clock: Adyen's batch 380 says 55 308.07 USD is paid out with value date 2021-01-07; a
statement credit pairs with it (arrived), or not by the next business day + 1 (missing), or
short by an unannounced fee (short); a collective credit is matched line by line; a credit
nobody expected is reported unexpected."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import case, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from settlewatch.common.db import create_engine
from settlewatch.common.kafka import Topics
from settlewatch.common.problems import ProblemError
from settlewatch.common.publisher import Publisher
from settlewatch.recon.desk import Desk, HandMatch
from settlewatch.recon.matching import LineMatcher
from settlewatch.recon.reconciling import PayoutReconciler
from settlewatch.recon.spool import Spooled, spool
from settlewatch.recon.store import SettlementFiles
from settlewatch.schema.settlement_files import (
    file_exceptions,
    file_findings,
    file_records,
    payouts,
)
from tests.ingest.integration.conftest import MERCHANT_M1

pytestmark = pytest.mark.asyncio(loop_scope="session")

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
ADYEN_380 = DATA / "OCA-bank-statement-import_adyen" / "settlement_detail_report_batch_380.csv"
IBAN = "CH9300762011623852957"
_NOOP = (lambda: None, lambda: None)


def statement(*entries: str) -> bytes:
    return (
        '<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
        "<BkToCstmrStmt><GrpHdr><MsgId>M</MsgId></GrpHdr><Stmt><Id>S</Id>"
        f"<Acct><Id><IBAN>{IBAN}</IBAN></Id></Acct>{''.join(entries)}</Stmt></BkToCstmrStmt>"
        "</Document>"
    ).encode()


def entry(amount: str, value_date: str, text: str = "", details: str = "") -> str:
    return (
        f'<Ntry><Amt Ccy="USD">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
        f"<BookgDt><Dt>{value_date}</Dt></BookgDt><ValDt><Dt>{value_date}</Dt></ValDt>"
        f"<AddtlNtryInf>{text}</AddtlNtryInf>{details}</Ntry>"
    )


def detail(amount: str, end_to_end: str) -> str:
    return (
        f"<TxDtls><Refs><EndToEndId>{end_to_end}</EndToEndId></Refs>"
        f'<Amt Ccy="USD">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd></TxDtls>'
    )


async def spooled(body: bytes) -> Spooled:
    async def chunks() -> AsyncIterator[bytes]:
        yield body

    return await spool(chunks())


@pytest_asyncio.fixture(loop_scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


class Operator:
    """What an operator does: import files, let the reconciler run on a given day, read the
    exception queue and the findings raised, and act by hand."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.moment = datetime(2021, 1, 6, 12, tzinfo=UTC)  # the day before the payout's
        self.files = SettlementFiles(engine, lambda: self.moment, lambda: None, parse_timeout=60)
        self.hands = Desk(
            engine,
            lambda: datetime.now(UTC),
            lambda: None,
            lambda: None,
            max_clock_skew=timedelta(minutes=5),
            approval={},  # one person writes off any amount
        )

    async def exceptions(self, kind: str | None = None) -> list[dict[str, Any]]:
        query = select(file_exceptions).order_by(file_exceptions.c.exception_id)
        if kind is not None:
            query = query.where(file_exceptions.c.kind == kind)
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(query)]

    async def finding(self, finding_id: str, state: str) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            body = await conn.scalar(
                select(file_findings.c.body).where(file_findings.c.key == f"{finding_id}#{state}")
            )
        assert body is not None, f"no {state} {finding_id}"
        return dict(body)

    async def findings(self, finding_id: str) -> dict[str, int]:
        """The states the finding was raised in, with the amount its evidence names."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(file_findings.c.body).where(file_findings.c.key.startswith(finding_id + "#"))
            )
            return {row.body["state"]: row.body["evidence"]["amount_minor"] for row in rows}

    async def load(self, body: bytes) -> None:
        row, _ = await self.files.import_file(await spooled(body), "auto", None)
        assert row.status == "imported", row.errors

    async def reconcile(self, on: date, *, lines_first: bool = True) -> dict[str, dict[str, Any]]:
        self.moment = moment = datetime(on.year, on.month, on.day, 12, tzinfo=UTC)
        # The lines are tried first (no payment is known here: they stay unmatched), as the
        # matching loop does before a payout can be judged.
        if lines_first:
            nowhere = Publisher("127.0.0.1:9", enable_idempotence=False, timeout=1)  # unused
            lines = LineMatcher(
                self.engine,
                nowhere,
                Topics("unused"),
                lambda: moment,
                *_NOOP,
                max_clock_skew=timedelta(minutes=5),
            )
            await lines.round()
        await PayoutReconciler(self.engine, lambda: moment, lambda: None).round()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(payouts))).all()
        return {row.reference or row.payout_id: dict(row._mapping) for row in rows}


async def test_a_payout_goes_missing_after_the_grace_and_arrives_later(engine: AsyncEngine) -> None:
    desk = Operator(engine)
    await desk.load(ADYEN_380.read_bytes())
    (payout,) = (await desk.reconcile(date(2021, 1, 7))).values()
    assert (payout["status"], payout["amount_minor"], payout["currency"]) == (
        "expected",
        5_530_807,
        "USD",
    )
    assert payout["due_on"] == date(2021, 1, 9)  # Thursday + 1 business day (Friday), then
    assert (await desk.reconcile(date(2021, 1, 8)))["TX635094301XT"]["status"] == "expected"
    assert (await desk.reconcile(date(2021, 1, 9)))["TX635094301XT"]["status"] == "missing"

    # A week late, but naming the payout: it arrived after all.
    await desk.load(statement(entry("55308.07", "2021-01-14", "ADYEN TX635094301XT")))
    found = (await desk.reconcile(date(2021, 1, 14)))["TX635094301XT"]
    assert found["status"] == "arrived"
    assert found["credit"]["amount_minor"] == 5_530_807
    # Missing was an exception with its finding; the credit closed it and resolved the finding.
    (exception,) = await desk.exceptions("missing_payout")
    assert exception["status"] == "resolved"
    assert exception["history"][-1]["action"] == "arrived"
    assert await desk.findings(f"payout.missing:{payout['payout_id']}") == {
        "open": 5_530_807,
        "resolved": 5_530_807,
    }


async def test_a_credit_that_names_the_payout_but_is_short_is_short(engine: AsyncEngine) -> None:
    desk = Operator(engine)
    await desk.load(ADYEN_380.read_bytes())
    await desk.load(statement(entry("55300.00", "2021-01-08", "TX635094301XT batch 380")))
    found = (await desk.reconcile(date(2021, 1, 8)))["TX635094301XT"]
    assert (found["status"], found["credit"]["amount_minor"]) == ("short", 5_530_000)
    (exception,) = await desk.exceptions("short_payout")
    assert (exception["status"], exception["amount_minor"]) == ("open", 807)
    assert exception["evidence"]["difference_minor"] == 807
    assert await desk.findings(f"payout.short:{found['payout_id']}") == {"open": 5_530_807}


async def test_a_payout_waits_for_its_lines_to_be_tried_before_it_is_paired(
    engine: AsyncEngine,
) -> None:
    """Its merchant comes from its matched lines: paired before, a short payout's finding went
    to nobody (found by the demo)."""
    desk = Operator(engine)
    await desk.load(ADYEN_380.read_bytes())
    await desk.load(statement(entry("55300.00", "2021-01-08", "TX635094301XT batch 380")))
    untried = await desk.reconcile(date(2021, 1, 12), lines_first=False)
    assert untried["TX635094301XT"]["status"] == "expected"
    assert [p for p in untried.values() if p["status"] == "unexpected"] == []  # nor judged
    assert await desk.exceptions() == []
    tried = await desk.reconcile(date(2021, 1, 12))
    assert tried["TX635094301XT"]["status"] == "short"


async def test_lines_matched_while_a_round_runs_give_the_payout_their_merchant(
    engine: AsyncEngine,
) -> None:
    """The matching loop matches the batch's lines while a reconciler round runs. Whether the
    payout is ready and its merchant were read apart: the round saw the merchant unknown, then
    the lines matched, and raised the short payout to nobody (found by CI's demo)."""
    desk = Operator(engine)
    await desk.load(ADYEN_380.read_bytes())
    await desk.load(statement(entry("55300.00", "2021-01-08", "TX635094301XT batch 380")))
    assert (await desk.reconcile(date(2021, 1, 8), lines_first=False))["TX635094301XT"][
        "status"
    ] == "expected"  # its lines untried: it waits

    async with engine.connect() as matching, engine.connect() as watch:
        # The matching loop's transaction, caught before it commits; the lock on the files
        # holds the round at the statement that reads whether the payout is ready.
        await matching.execute(text("LOCK TABLE settlement_files IN ACCESS EXCLUSIVE MODE"))
        await matching.execute(
            update(file_records)
            .where(file_records.c.kind == "line")
            .values(match_status="matched", merchant_id="M-380", matched_at=desk.moment)
        )
        waits = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        # A first look before the round starts (as a slow start of the round gives): the loop
        # must still see it wait. pg_stat_activity is read once per transaction, so each look
        # is a transaction of its own.
        assert await watch.scalar(waits) == 0
        await watch.rollback()
        round_ = asyncio.create_task(desk.reconcile(date(2021, 1, 8), lines_first=False))
        deadline = time.monotonic() + 10
        while not await watch.scalar(waits):
            await watch.rollback()
            assert time.monotonic() < deadline and not round_.done(), "the round did not wait"
            await asyncio.sleep(0.02)
        await matching.commit()
    found = (await round_)["TX635094301XT"]
    assert (found["status"], found["merchant_id"]) == ("short", "M-380")
    (exception,) = await desk.exceptions("short_payout")
    assert exception["merchant_id"] == "M-380"
    finding = await desk.finding(f"payout.short:{found['payout_id']}", "open")
    assert finding["merchant_id"] == "M-380"


async def test_a_collective_credit_is_matched_line_by_line_and_the_rest_is_unexpected(
    engine: AsyncEngine,
) -> None:
    desk = Operator(engine)
    await desk.load(ADYEN_380.read_bytes())
    collective = entry(
        "55408.07",
        "2021-01-08",
        details="<NtryDtls><Btch><NbOfTxs>2</NbOfTxs></Btch>"
        + detail("55308.07", "TX635094301XT")
        + detail("100.00", "SOMETHING-ELSE")
        + "</NtryDtls>",
    )
    await desk.load(statement(collective, entry("12.34", "2021-01-08", "interest")))
    found = await desk.reconcile(date(2021, 1, 12))
    assert found["TX635094301XT"]["status"] == "arrived"
    assert found["TX635094301XT"]["credit"]["credit_id"].endswith(":0")  # the first line
    unexpected = sorted(p["amount_minor"] for p in found.values() if p["status"] == "unexpected")
    assert unexpected == [1_234, 10_000]  # the other line, and the interest credit
    raised = await desk.exceptions("unexpected_credit")
    assert sorted(e["amount_minor"] for e in raised) == [1_234, 10_000]
    assert all(e["finding_ids"][0].startswith("payout.unexpected_credit:") for e in raised)


async def test_a_missing_payout_is_paired_by_hand_with_a_credit_nobody_expected(
    engine: AsyncEngine,
) -> None:
    desk = Operator(engine)
    await desk.load(ADYEN_380.read_bytes())
    # Two weeks late and without the reference: no rule may pair it.
    await desk.load(statement(entry("55308.07", "2021-01-21", "SETTLEMENT")))
    found = await desk.reconcile(date(2021, 1, 25))
    payout = found["TX635094301XT"]
    (credit,) = [p for p in found.values() if p["status"] == "unexpected"]
    assert payout["status"] == "missing"
    missing = f"missing:{payout['payout_id']}"
    wrong = HandMatch(missing, payout_id=payout["payout_id"])  # itself: not a credit
    with pytest.raises(ProblemError) as refused:
        await desk.hands.match([wrong], "ops:li", None, bulk=False)
    assert refused.value.status == 409
    assert (await desk.reconcile(date(2021, 1, 25)))["TX635094301XT"]["status"] == "missing"

    await desk.hands.match(
        [HandMatch(missing, payout_id=credit["payout_id"])], "ops:li", "bank confirmed", bulk=False
    )
    after = await desk.reconcile(date(2021, 1, 26))
    assert after["TX635094301XT"]["status"] == "arrived"
    assert after["TX635094301XT"]["credit"]["credit_id"] == credit["credit_id"]
    assert [p for p in after.values() if p["status"] == "unexpected"] == []
    statuses = {e["kind"]: e["status"] for e in await desk.exceptions() if e["payout_id"]}
    assert statuses == {"missing_payout": "matched", "unexpected_credit": "matched"}
    resolution = await desk.finding(f"payout.missing:{payout['payout_id']}", "resolved")
    assert resolution["evidence"]["resolution"].startswith("match by ops:li")
    assert "bank confirmed" in resolution["evidence"]["resolution"]


async def test_payouts_are_listed_and_read_with_their_lines(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/settlement-files", content=ADYEN_380.read_bytes())).is_success
    deadline = time.monotonic() + 30
    while not (listed := (await client.get("/v1/payouts")).json())["items"]:
        assert time.monotonic() < deadline, "the reconciler did not record the payout"
        await asyncio.sleep(0.1)
    (payout,) = listed["items"]
    assert listed["next_cursor"] is None
    assert (payout["currency"], payout["amount_minor"]) == ("USD", 5_530_807)
    read = (await client.get(f"/v1/payouts/{payout['payout_id']}")).json()
    assert len(read["lines"]) == 227 and not read["lines_truncated"]
    assert read["lines"][0]["match"]["status"] == "unmatched"  # CM… are not our payments
    assert (await client.get("/v1/payouts", params={"status": "arrived"})).json()["items"] == []
    assert (await client.get("/v1/payouts", params={"to": "2021-01-06"})).json()["items"] == []
    # A merchant token sees its own payouts only: this one belongs to no merchant yet.
    merchant = {"authorization": f"Bearer {MERCHANT_M1}"}
    assert (await client.get("/v1/payouts", headers=merchant)).json()["items"] == []
    assert (
        await client.get(f"/v1/payouts/{payout['payout_id']}", headers=merchant)
    ).status_code == 404
    assert (await client.get("/v1/payouts/nope")).status_code == 404


async def test_a_batch_of_several_merchants_is_the_acquirers_and_a_merchant_reads_its_own_lines(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    """The payout's merchant was any one line's (LIMIT 1, no order), and its page showed every
    line of the batch: a merchant read another's (issue 28 item 6)."""
    desk = Operator(engine)
    await desk.load(ADYEN_380.read_bytes())
    await desk.reconcile(date(2021, 1, 6))
    async with engine.begin() as conn:  # the matching loop found two merchants' payments
        merchant = case((file_records.c.seq % 2 == 0, "M1"), else_="M2")
        await conn.execute(
            update(file_records)
            .where(file_records.c.kind == "line")
            .values(match_status="matched", merchant_id=merchant, matched_at=desk.moment)
        )
    shared = (await desk.reconcile(date(2021, 1, 6), lines_first=False))["TX635094301XT"]
    assert shared["merchant_id"] is None  # the acquirer's
    as_m1 = {"authorization": f"Bearer {MERCHANT_M1}"}
    url = f"/v1/payouts/{shared['payout_id']}"
    assert (await client.get(url, headers=as_m1)).status_code == 404
    assert len((await client.get(url)).json()["lines"]) == 227
    async with engine.begin() as conn:  # had it been M1's, M1 would still see only its lines
        await conn.execute(update(payouts).values(merchant_id="M1"))
    own = (await client.get(url, headers=as_m1)).json()["lines"]
    assert len(own) == 114  # the even ones

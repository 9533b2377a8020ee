"""GET /v1/payments/{txn_id}/evidence (SPEC §12): the JSON a desk reads and the PDF a merchant
prints — rendered by poppler (pdftoppm) and read back (pdftotext): txn id, RRN, amounts with ¥,
the masked receiving account, the timeline in Chinese."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio

from settlewatch.common.config import MatcherSettings
from settlewatch.common.db import create_engine
from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.matcher import evidence as evidence_module
from settlewatch.matcher.app import create_app as create_matcher
from settlewatch.matcher.core.matcher import Matcher
from settlewatch.matcher.store import MatcherStore
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, TOKENS
from tests.matcher.unit.scenario import Event, apply, at, merchant, paid, sale, settlement
from tests.support.apps import app_client
from tests.support.matcher import service_env
from tests.support.urls import asyncpg_dsn

pytestmark = pytest.mark.asyncio(loop_scope="session")

ACCOUNT = "6222020200112233445"
PROFILE = {
    "name": "上海小笼包",
    "settlement_bank": "ICBC",
    "settlement_cycle": "T1",
    "locale": "zh-CN",
    "receiving_account": {
        "holder": "上海小笼包餐饮有限公司",
        "bank_name": "工商银行",
        "number": ACCOUNT,
    },
}


async def prepared(database_url: str, broker_bootstrap: str, topic_prefix: str) -> dict[str, str]:
    """The stored state of a few payments and merchants; the matcher's environment."""
    events: list[Event] = [
        merchant("M1"),
        merchant("M2"),
        sale("LATE", "2025-11-20T10:02+08:00", rrn="532410283771", stan="000123"),
        sale("SHORT", "2025-11-20T11:00+08:00", rrn="532410283772"),
        sale("FAILED", "2025-11-20T12:00+08:00", rrn="532410283773"),
        sale("OTHER", merchant_id="M2"),
        settlement("S-SHORT", [("SHORT", 12800, 577, 12223)]),  # ¥5.00 more fee than agreed
        settlement("S-FAIL", [("FAILED", 12800, 77, 12723)], status="failed", reason="账户冻结"),
    ]
    engine = create_engine(database_url)
    try:
        store = MatcherStore(engine)
        [owned] = await store.claim([90])
        core = Matcher(owned.state)
        for event in events:
            apply(core, event)
        core.tick(at("2025-11-22T12:00+08:00"))  # LATE is overdue by then, and paid after
        apply(core, paid("LATE", occurred="2025-11-22T15:00+08:00"))
        core.tick(at("2025-11-22T16:00+08:00"))
        await store.save([owned], {}, {})
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(
            "INSERT INTO merchants (merchant_id, settlement_bank, profile) VALUES ($1, $2, $3)",
            "M1",
            "ICBC",
            json.dumps(PROFILE),
        )
        await conn.execute(
            "INSERT INTO alerts (alert_id, type, status, merchant_id, txn_id, summary, evidence, "
            "notify, oncall, created_at, updated_at) VALUES ('settlement.settled_late:LATE', "
            "'settlement.settled_late', 'resolved', 'M1', 'LATE', '…', '{}', false, false, "
            "'2025-11-22T15:00+08:00', '2025-11-22T15:00+08:00')"
        )
    finally:
        await conn.close()
    await ensure_topics(broker_bootstrap, Topics(topic_prefix), partitions=1, replication_factor=1)
    return service_env(database_url, broker_bootstrap, topic_prefix, TOKENS)


@pytest_asyncio.fixture(loop_scope="session")
async def matcher(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> AsyncIterator[httpx.AsyncClient]:
    env = await prepared(database_url, broker_bootstrap, topic_prefix)
    # A render costs 500 requests of the token's 1000 a second: two PDFs in one second are
    # refused by design (tested below), not what these tests are about.
    env |= {"SETTLEWATCH_RATE_LIMIT": "100000/second"}
    async with app_client(create_matcher(MatcherSettings(**env)), ACQUIRER) as client:  # type: ignore[arg-type]
        yield client


async def evidence(client: httpx.AsyncClient, txn_id: str, **params: str) -> dict:  # type: ignore[type-arg]
    answer = await client.get(f"/v1/payments/{txn_id}/evidence", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_the_json_says_what_was_expected_what_arrived_and_what_to_ask(
    matcher: httpx.AsyncClient,
) -> None:
    short = await evidence(matcher, "SHORT")
    assert short["receiving_account"] == {
        "holder": "上海小笼包餐饮有限公司",
        "bank_name": "工商银行",
        "number": "6222 **** **** 3445",
    }
    assert ACCOUNT not in json.dumps(short)
    assert short["expected"] == {"gross_minor": 12800, "fee_minor": 77, "net_minor": 12723}
    assert short["received"] == {"gross_minor": 12800, "fee_minor": 577, "net_minor": 12223}
    assert short["difference_minor"] == -500
    assert any("少 ¥5.00" in ask for ask in short["ask_the_bank"])
    failed = await evidence(matcher, "FAILED", locale="en")
    assert failed["status"] == "failed" and failed["received"] is None
    assert failed["settlements"][0]["failure_reason"] == "账户冻结"
    assert "账户冻结" in failed["ask_the_bank"][0] and "payout failed" in failed["ask_the_bank"][0]
    late = await evidence(matcher, "LATE")
    assert [e["event"] for e in late["timeline"]] == [
        "收到消费交易",
        "逾期未到账",
        "银行结算 S-LATE：已到账",
    ]
    assert late["transaction"]["stan"] == "000123" and late["status"] == "settled_late"


async def test_the_pdf_renders_and_reads_back_in_chinese(
    matcher: httpx.AsyncClient, tmp_path: Path
) -> None:
    if not (shutil.which("pdftotext") and shutil.which("pdftoppm")):
        pytest.fail("poppler-utils is needed (apt-get install poppler-utils); .ci/run installs it")
    answer = await matcher.get("/v1/payments/LATE/evidence", params={"format": "pdf"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "late.pdf"
    pdf.write_bytes(answer.content)
    text = subprocess.run(
        ["pdftotext", "-layout", pdf, "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in (
        "结算查询凭证",
        "LATE",
        "532410283771",
        "¥128.00",
        "¥127.23",
        "收到消费交易",
        "逾期未到账",
        "已到账（逾期）",  # its status
        "逾期后到账",  # its alert's type and status, named in Chinese too (issue 29)
        "已解决",
        "6222 **** **** 3445",
        "上海小笼包餐饮有限公司",
    ):
        assert expected in text, expected
    assert ACCOUNT not in text
    subprocess.run(
        ["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", pdf, tmp_path / "page"], check=True
    )
    [page] = tmp_path.glob("page*.png")
    assert page.stat().st_size > 5_000  # a page with text drawn on it, not an empty one
    assert "settlement.settled_late" not in text and "resolved" not in text
    english = await matcher.get(
        "/v1/payments/LATE/evidence", params={"format": "pdf", "locale": "en"}
    )
    assert english.status_code == 200, english.text  # say why, not pdftotext's exit status
    (tmp_path / "late-en.pdf").write_bytes(english.content)
    text = subprocess.run(
        ["pdftotext", tmp_path / "late-en.pdf", "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in (
        "Settlement evidence",
        "sale received",
        "settlement S-LATE: settled",
        "settled late",
        "resolved",
        "¥128.00",
    ):
        assert expected in text, expected


async def test_a_merchant_sees_only_its_own_evidence(matcher: httpx.AsyncClient) -> None:
    as_m1 = {"authorization": f"Bearer {MERCHANT_M1}"}
    assert (await matcher.get("/v1/payments/SHORT/evidence", headers=as_m1)).status_code == 200
    other = await matcher.get("/v1/payments/OTHER/evidence", headers=as_m1)
    assert other.status_code == 404
    missing = await matcher.get("/v1/payments/NOPE/evidence")
    assert missing.status_code == 404
    bad = await matcher.get("/v1/payments/SHORT/evidence", params={"format": "docx"})
    assert bad.status_code == 422 and "format" in bad.text


async def test_a_payment_s_file_lines_are_found_by_their_index(database_url: str) -> None:
    lines = str(evidence_module._LINES).replace(":txn", "'T1'")  # the evidence's own query
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("SET enable_seqscan = off")  # a few rows: make the choice visible
        plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {lines}"))
    finally:
        await conn.close()
    assert "settlement_file_records_by_txn" in plan, plan


async def test_a_pdf_is_rendered_once_per_content_and_a_render_counts_against_the_rate(
    database_url: str, broker_bootstrap: str, topic_prefix: str
) -> None:
    """A PDF costs ≈ 0.5 s of CPU: a token asking for it again and again held a core (issue 28).
    A render counts as 500 requests; the same evidence again is served from memory. The rate's
    window is an hour and the third answer 200 requests over it, so a window boundary crossed
    while rendering (a sliding window forgets the last one gradually) cannot let it through."""
    env = await prepared(database_url, broker_bootstrap, topic_prefix)
    settings = MatcherSettings(**env | {"SETTLEWATCH_RATE_LIMIT": "800/hour"})  # type: ignore[arg-type]
    async with app_client(create_matcher(settings), ACQUIRER) as limited:
        url = "/v1/payments/LATE/evidence"
        first = await limited.get(url, params={"format": "pdf"})  # 1 + 500
        again = await limited.get(url, params={"format": "pdf"})  # 1: the same content
        assert first.status_code == again.status_code == 200
        assert again.content == first.content
        english = await limited.get(url, params={"format": "pdf", "locale": "en"})  # 1 + 500
        assert english.status_code == 429 and "Retry-After" in english.headers

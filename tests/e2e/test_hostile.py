"""What hostile peers, clients and files do to a running stack (issue 28), over HTTP only, against
one `settlewatch up` for the module: none of them may stall the others' work."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.ingest.integration.conftest import PROFILE, sale
from tests.support.dirs import server_dir
from tests.support.receiver import Receiver, receiver
from tests.support.stack import RunningStack, launch

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

TRICKLING = 20
BODY_LIMIT = 1024 * 1024
# A write route of each service (the matcher has none: its answer would be 405).
WRITES = {
    "ingest": "/v1/transactions",
    "matcher": "/v1/payments",
    "alerts": "/v1/alerts/x/ack",
    "recon": "/v1/exceptions/x/write-off",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    tmp = tmp_path_factory.mktemp("hostile")
    with server_dir("hostile") as data:
        running = launch(
            data / "data",
            tmp,
            {
                "SETTLEWATCH_GROUP_WAIT": "PT0.5S",
                # Hanging endpoints hang for the whole test: only isolation can save the others.
                "SETTLEWATCH_WEBHOOK_TIMEOUT": "PT120S",
                "SETTLEWATCH_MAX_BODY_BYTES": str(BODY_LIMIT),
            },
        )
        try:
            running.wait_ready()
            yield running
        finally:
            running.stop(signal.SIGTERM)


@pytest_asyncio.fixture(loop_scope="session")
async def http(stack: RunningStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        headers={"authorization": f"Bearer {token(stack)}"}, timeout=30
    ) as client:
        yield client


async def merchant_with_webhook(
    http: httpx.AsyncClient, stack: RunningStack, merchant_id: str, url: str
) -> None:
    profile = PROFILE | {"webhook": PROFILE["webhook"] | {"url": url}}
    answer = await http.put(f"{stack.url('ingest')}/v1/merchants/{merchant_id}", json=profile)
    assert answer.status_code == 201, answer.text


async def overdue_sale(http: httpx.AsyncClient, stack: RunningStack, merchant_id: str) -> None:
    """A sale ten days old, never settled: overdue as soon as the matcher sees it."""
    occurred = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    item = sale(f"{merchant_id}-T1", merchant_id, occurred_at=occurred)
    answer = await http.post(f"{stack.url('ingest')}/v1/transactions", json={"items": [item]})
    assert answer.status_code == 202, answer.text


def token(stack: RunningStack) -> str:
    return (stack.data_dir / "dev-token").read_text().strip()


async def status_of(stack: RunningStack, service: str, head: str, body: bytes = b"") -> int:
    """The status a service answers to a request written by hand on a socket (`head` without
    its Host line), before it has the rest of a body it was promised."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.ports[service])
    try:
        writer.write(f"{head}Host: 127.0.0.1\r\n\r\n".encode() + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def arrived(rec: Receiver, path: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(got.path == path for got in rec.received):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_merchant_is_told_while_twenty_endpoints_trickle_their_answers(
    stack: RunningStack, http: httpx.AsyncClient
) -> None:
    async with receiver() as rec:
        rec.trickle = lambda got: 4.0 if got.path.startswith("/slow") else None
        slow = [f"SLOW{n:02d}" for n in range(TRICKLING)]
        for merchant in slow:
            await merchant_with_webhook(http, stack, merchant, f"{rec.url}/slow/{merchant}")
            await overdue_sale(http, stack, merchant)
        await merchant_with_webhook(http, stack, "NORMAL", f"{rec.url}/normal")
        for merchant in slow:  # every trickling endpoint holds an attempt
            assert await arrived(rec, f"/slow/{merchant}", 60), f"{merchant} never called"
        await overdue_sale(http, stack, "NORMAL")
        assert await arrived(rec, "/normal", 30), "the healthy merchant waited for the slow ones"
        told: dict[str, Any] = next(got for got in rec.received if got.path == "/normal").json()
        assert told["type"] == "settlement.overdue"
        assert told["data"]["alerts"][0]["txn_id"] == "NORMAL-T1"


@pytest.mark.parametrize("service", list(WRITES))
async def test_a_huge_declared_body_is_refused_at_once_before_it_is_sent(
    stack: RunningStack, service: str
) -> None:
    declared = f"POST {WRITES[service]} HTTP/1.1\r\nContent-Length: 2000000000\r\n"
    declared += "Content-Type: application/json\r\n"
    assert await status_of(stack, service, declared) == 401  # no token: refused unread
    signed = declared + f"Authorization: Bearer {token(stack)}\r\n"
    assert await status_of(stack, service, signed) == 413  # a token, but over the limit


@pytest.mark.parametrize("service", ["ingest", "alerts", "recon"])  # the matcher takes none
async def test_a_streamed_body_is_cut_at_the_limit(stack: RunningStack, service: str) -> None:
    head = f"POST {WRITES[service]} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
    head += f"Content-Type: application/json\r\nAuthorization: Bearer {token(stack)}\r\n"
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(BODY_LIMIT // 65536 + 2))
    assert await status_of(stack, service, head, chunks) == 413  # never the last chunk


async def test_one_file_cannot_stop_every_import(
    http: httpx.AsyncClient, stack: RunningStack
) -> None:
    """A CSV cell of 1e100000000 in 分 kept the one parsing process busy for good, and every
    import after it waited; a cell too big for the API, or an exponent Decimal overflows on,
    answered 500. Each is now a located rejection, and the next import goes through."""
    files = f"{stack.url('recon')}/v1/settlement-files"
    mapping = {"columns": {"rrn": "参考号", "net": "金额"}, "amount_unit": "minor"}
    answer = await http.put(f"{stack.url('recon')}/v1/file-mappings/fen", json=mapping)
    assert answer.status_code == 201, answer.text
    for cell in ("1e100000000", "1E+999999", "9223372036854775808"):
        bill = f"参考号,金额\n600000000001,12800\n600000000002,{cell}\n".encode()
        started = time.monotonic()
        refused = await http.post(files, params={"format": "csv:fen"}, content=bill)
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert error["loc"] == ["line", 3, "金额"], error
        assert time.monotonic() - started < 10  # a bound that only tells a hang
    good = await http.post(
        files, params={"format": "csv:fen"}, content="参考号,金额\n6000000000031,12800\n".encode()
    )
    assert good.status_code == 202 and good.json()["status"] == "imported"


async def test_an_end_of_day_statement_without_entry_statuses_is_imported_with_a_warning(
    http: httpx.AsyncClient, stack: RunningStack
) -> None:
    """A bank's converter left out every Ntry's Sts: the whole statement was rejected."""
    statement = (
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>EOD-1</MsgId></GrpHdr><Stmt><Id>S-EOD-1</Id>"
        "<Acct><Id><IBAN>CN00HOSTILE</IBAN></Id></Acct>"
        '<Ntry><Amt Ccy="CNY">127.23</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
        "<ValDt><Dt>2026-12-03</Dt></ValDt></Ntry>"
        "</Stmt></BkToCstmrStmt></Document>"
    )
    answer = await http.post(
        f"{stack.url('recon')}/v1/settlement-files", content=statement.encode()
    )
    assert answer.status_code == 202, answer.text
    imported = answer.json()
    assert imported["counts"]["entry"] == 1
    assert imported["totals"] == {"CNY": {"credits": 12723, "debits": 0}}
    (warning,) = imported["warnings"]
    assert "read as booked" in warning["msg"]


async def test_a_card_number_in_free_text_is_refused_or_masked(
    http: httpx.AsyncClient, stack: RunningStack
) -> None:
    """A note with a card number was stored and sent to the merchant; a bank's remittance text
    was stored as written and shown in evidence (issue 28 item 5)."""
    card = "4111 1111 1111 1111"
    note = await http.post(
        f"{stack.url('alerts')}/v1/alerts/settlement.overdue:X/ack", json={"note": f"card {card}"}
    )
    assert note.status_code == 422 and note.json()["errors"][0]["loc"] == ["body", "note"]
    reason = await http.post(
        f"{stack.url('recon')}/v1/exceptions/line:file_x:1/write-off",
        json={"by": "ops:li", "reason": f"customer's card {card}"},
    )
    assert reason.status_code == 422 and reason.json()["errors"][0]["loc"] == ["reason"]
    statement = (
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>PAN-1</MsgId></GrpHdr><Stmt><Id>S-PAN-1</Id>"
        "<Acct><Id><IBAN>CN00HOSTILE</IBAN></Id></Acct>"
        '<Ntry><Amt Ccy="CNY">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
        f"<AddtlNtryInf>refund to card {card}</AddtlNtryInf></Ntry>"
        "</Stmt></BkToCstmrStmt></Document>"
    )
    imported = await http.post(
        f"{stack.url('recon')}/v1/settlement-files", content=statement.encode()
    )
    assert imported.status_code == 202, imported.text
    (warning,) = imported.json()["warnings"]
    assert warning["msg"].startswith("1 card numbers (PAN) in the bank's text masked")

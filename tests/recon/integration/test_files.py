"""Settlement files over HTTP (SPEC §9, issue 13), against a real PostgreSQL: a file is imported
whole or rejected with located errors and nothing of it applied; the same bytes are one file;
accounts and CSV mappings are upserted and read back."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from settlewatch.common.config import ReconSettings
from settlewatch.common.db import create_engine
from settlewatch.recon.app import create_app
from settlewatch.schema.settlement_files import file_records
from tests.ingest.integration.conftest import ACQUIRER, TOKENS
from tests.support.apps import app_client
from tests.support.service import served

pytestmark = pytest.mark.asyncio(loop_scope="session")

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
ADYEN_380 = DATA / "OCA-bank-statement-import_adyen" / "settlement_detail_report_batch_380.csv"
CAMT054 = DATA / "genkgo-camt" / "camt054.v8.xml"


def parsing_workers(process: psutil.Process) -> list[psutil.Process]:
    return [c for c in process.children() if "spawn_main" in " ".join(c.cmdline())]


async def records_of(database_url: str, file_id: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            count = await conn.scalar(
                select(func.count())
                .select_from(file_records)
                .where(file_records.c.file_id == file_id)
            )
    finally:
        await engine.dispose()
    return int(count or 0)


async def test_a_report_is_imported_once_with_its_counts_and_totals(
    client: httpx.AsyncClient, database_url: str
) -> None:
    body = ADYEN_380.read_bytes()
    first = await client.post("/v1/settlement-files", content=body)
    assert first.status_code == 202, first.text
    imported = first.json()
    assert imported["status"] == "imported" and imported["format"] == "adyen"
    assert imported["counts"] == {
        "statement": 0,
        "entry": 0,
        "line": 227,
        "payout": 1,
        "flagged": 0,
    }
    assert imported["totals"] == {"USD": {"credits": 5_643_852, "debits": 113_045}}
    assert await records_of(database_url, imported["file_id"]) == 228

    again = await client.post("/v1/settlement-files?format=adyen", content=body)
    assert again.status_code == 200
    assert again.json()["file_id"] == imported["file_id"]
    assert await records_of(database_url, imported["file_id"]) == 228  # not twice

    read = await client.get(f"/v1/settlement-files/{imported['file_id']}")
    assert read.status_code == 200 and read.json() == imported


async def test_a_truncated_file_is_rejected_and_nothing_of_it_is_stored(
    client: httpx.AsyncClient, database_url: str
) -> None:
    body = CAMT054.read_bytes()
    truncated = body[: len(body) * 2 // 3]
    answer = await client.post("/v1/settlement-files?format=camt.054", content=truncated)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["status"] == 422 and problem["file_id"]
    assert problem["errors"][0]["loc"][0] == "line"
    assert await records_of(database_url, problem["file_id"]) == 0
    read = (await client.get(f"/v1/settlement-files/{problem['file_id']}")).json()
    assert read["status"] == "rejected" and read["errors"] == problem["errors"]


async def test_files_are_listed_newest_first_with_how_many_errors(
    client: httpx.AsyncClient,
) -> None:
    report = (await client.post("/v1/settlement-files", content=ADYEN_380.read_bytes())).json()
    truncated = CAMT054.read_bytes()[:2000]
    rejected = (await client.post("/v1/settlement-files?format=camt.054", content=truncated)).json()
    listed = (await client.get("/v1/settlement-files")).json()
    assert [f["file_id"] for f in listed["items"]] == [rejected["file_id"], report["file_id"]]
    assert listed["items"][1] == report | {"errors": 0}
    assert listed["items"][0]["errors"] == len(rejected["errors"]) > 0
    assert listed["next_cursor"] is None
    first = (await client.get("/v1/settlement-files", params={"limit": 1})).json()
    rest = await client.get("/v1/settlement-files", params={"cursor": first["next_cursor"]})
    assert [f["file_id"] for f in first["items"] + rest.json()["items"]] == [
        rejected["file_id"],
        report["file_id"],
    ]
    only = (await client.get("/v1/settlement-files", params={"status": "imported"})).json()
    assert [f["file_id"] for f in only["items"]] == [report["file_id"]]
    assert (await client.get("/v1/settlement-files", params={"cursor": "x"})).status_code == 422


async def test_a_flagged_entry_is_imported_and_counted_as_flagged(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/v1/settlement-files", content=CAMT054.read_bytes())
    assert answer.status_code == 202, answer.text
    assert answer.json()["format"] == "camt.054"
    assert answer.json()["counts"]["flagged"] == 1  # the genkgo batch trap
    # The flagged entry waits in the exception queue, with the finding that says why.
    queue = (await client.get("/v1/exceptions", params={"kind": "flagged"})).json()["items"]
    (flagged,) = [e for e in queue if e["file_id"] == answer.json()["file_id"]]
    assert flagged["status"] == "open"
    seq = flagged["seq"]
    assert flagged["finding_ids"] == [  # both of what is wrong with it
        f"settlement.batch_total_mismatch:{flagged['file_id']}:{seq}",
        f"settlement.duplicate_line:{flagged['file_id']}:{seq}",
    ]
    codes = {p["code"] for p in flagged["evidence"]["problems"]}
    assert {"batch_total_mismatch", "duplicate_line"} <= codes


async def test_a_csv_bill_needs_its_mapping(client: httpx.AsyncClient) -> None:
    bill = b"rrn,amount\n600000000001,128.00\n"
    missing = await client.post("/v1/settlement-files?format=csv:acme", content=bill)
    assert missing.status_code == 422
    assert missing.json()["errors"] == [{"loc": ["query", "format"], "msg": "PUT it first"}]
    mapping = {"columns": {"rrn": "rrn", "net": "amount"}}
    assert (await client.put("/v1/file-mappings/acme", json=mapping)).status_code == 201
    assert (await client.put("/v1/file-mappings/acme", json=mapping)).status_code == 200
    imported = await client.post("/v1/settlement-files?format=csv:acme", content=bill)
    assert imported.status_code == 202, imported.text
    assert imported.json()["totals"] == {"CNY": {"credits": 12800, "debits": 0}}
    bad = await client.put("/v1/file-mappings/acme", json={"columns": {"rrn": "rrn"}})
    assert bad.status_code == 422


async def test_auto_detection_refuses_what_it_cannot_name(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/settlement-files", content=b"a,b\n1,2\n")
    assert answer.status_code == 422
    assert "format=csv:<name>" in answer.json()["errors"][0]["msg"]


async def test_settlement_accounts_are_upserted_and_numbers_unique(
    client: httpx.AsyncClient,
) -> None:
    account = {
        "iban": "CH2801234000123456789",
        "currency": "CHF",
        "bank_code": "UBS",
        "owner": "M1",
    }
    created = await client.put("/v1/settlement-accounts/A1", json=account)
    assert created.status_code == 201 and created.json()["account_id"] == "A1"
    assert (await client.put("/v1/settlement-accounts/A1", json=account)).status_code == 200
    taken = await client.put("/v1/settlement-accounts/A2", json=account)
    assert taken.status_code == 409
    both = await client.put("/v1/settlement-accounts/A3", json=account | {"account_number": "123"})
    assert both.status_code == 422
    assert (await client.get("/v1/settlement-accounts/A1")).json()["owner"] == "M1"
    assert (await client.get("/v1/settlement-accounts/nope")).status_code == 404


async def test_files_have_their_own_size_limit(
    client: httpx.AsyncClient, recon_settings: ReconSettings
) -> None:
    """The JSON body limit (4 MB here) does not apply to files; SETTLEWATCH_MAX_FILE_BYTES does."""
    body = ADYEN_380.read_bytes()
    big = body + b"\n" * (4_100_000 - len(body))  # blank lines: still the same report
    answer = await client.post("/v1/settlement-files", content=big)
    assert answer.status_code == 202, answer.text
    small = recon_settings.model_copy(update={"max_file_bytes": 4096})
    async with app_client(create_app(small), ACQUIRER) as limited:
        refused = await limited.post("/v1/settlement-files", content=body)
        assert refused.status_code == 413
        assert "4096" in refused.json()["detail"]


async def test_the_service_stops_after_an_import_woke_the_matching_loop(
    recon_settings: ReconSettings,
) -> None:
    """An import wakes the line-matching loop; stopping the service right after used to hang
    for good (asyncio.wait_for swallowed the cancellation). The bound only tells a hang."""
    app = create_app(recon_settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {ACQUIRER}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sw", headers=headers
    ) as http:
        assert (await http.post("/v1/settlement-files", content=CAMT054.read_bytes())).is_success
    await asyncio.wait_for(lifespan.__aexit__(None, None, None), 30)


async def test_a_statement_that_breaks_its_schema_is_imported_with_a_warning(
    recon_settings: ReconSettings,
) -> None:
    checking = recon_settings.model_copy(update={"validate_xsd": True})
    breaks = DATA / "viafintech-camt_parser" / "053" / "valid_example_with_batch.xml"
    follows = DATA / "genkgo-camt" / "camt053.v8.xml"
    async with app_client(create_app(checking), ACQUIRER) as client:
        answer = await client.post("/v1/settlement-files", content=breaks.read_bytes())
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "imported"
        (warning,) = answer.json()["warnings"]
        assert "'MsgId': This element is not expected" in warning["msg"]
        clean = await client.post("/v1/settlement-files", content=follows.read_bytes())
        assert clean.status_code in (200, 202) and clean.json()["warnings"] == []


async def test_a_parsing_process_that_died_is_replaced_by_the_next_import(
    client: httpx.AsyncClient, database_url: str
) -> None:
    first = await client.post("/v1/settlement-files", content=CAMT054.read_bytes())
    assert first.status_code == 202, first.text
    (worker,) = parsing_workers(psutil.Process())
    worker.kill()  # the OOM killer, or an operator
    worker.wait(10)
    second = await client.post("/v1/settlement-files", content=ADYEN_380.read_bytes())
    assert second.status_code == 202, second.text
    assert await records_of(database_url, second.json()["file_id"]) == 228


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
async def test_the_parsing_process_ends_with_the_service(
    stop: signal.Signals, database_url: str, broker_bootstrap: str, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": broker_bootstrap,
        "SETTLEWATCH_API_TOKENS": TOKENS,
    }
    with served("recon", env, tmp_path / "recon.log") as url:
        auth = {"authorization": f"Bearer {ACQUIRER}"}
        async with httpx.AsyncClient(base_url=url, headers=auth) as client:
            imported = await client.post("/v1/settlement-files", content=CAMT054.read_bytes())
            assert imported.status_code == 202, imported.text
        (service,) = [
            c for c in psutil.Process().children() if "serve recon" in " ".join(c.cmdline())
        ]
        (worker,) = parsing_workers(service)
        service.send_signal(stop)
        service.wait(15)
    # gone with it, never left behind (an orphan holds its memory and the files it had open)
    worker.wait(10)


MT940_FILES = [
    p
    for p in sorted((DATA / "WoLpH-mt940").rglob("*"))
    + sorted((DATA / "OCA-bank-statement-import_mt940").iterdir())
    if p.is_file() and p.suffix != ".yml" and p.name != "mt940.sta"  # cmxl: Deutsche Mark
]


@pytest.mark.parametrize("path", MT940_FILES, ids=lambda p: p.name)
async def test_every_mt940_sample_is_imported(client: httpx.AsyncClient, path: Path) -> None:
    """Their dates were the mt-940 package's own type, which could not leave the parsing
    process: every MT940 file answered 500 (issue 28)."""
    answer = await client.post("/v1/settlement-files?format=mt940", content=path.read_bytes())
    assert answer.status_code in (200, 202), answer.text
    assert answer.json()["status"] == "imported" and answer.json()["counts"]["entry"] > 0


async def test_a_rejected_file_may_be_sent_again_and_is_linked_to_the_attempt_before(
    client: httpx.AsyncClient,
) -> None:
    bill = b"rrn,amount\n600000000071,128.50\n"
    in_fen = {"columns": {"rrn": "rrn", "net": "amount"}, "amount_unit": "minor"}
    assert (await client.put("/v1/file-mappings/retry", json=in_fen)).status_code == 201
    first = await client.post("/v1/settlement-files?format=csv:retry", content=bill)
    assert first.status_code == 422
    assert first.json()["errors"] == [
        {"loc": ["line", 2, "amount"], "msg": "'128.50' is not a whole number of minor units"}
    ]
    in_yuan = in_fen | {"amount_unit": "major"}
    assert (await client.put("/v1/file-mappings/retry", json=in_yuan)).status_code == 200
    second = await client.post("/v1/settlement-files?format=csv:retry", content=bill)
    assert second.status_code == 202, second.text
    assert second.json()["status"] == "imported"
    assert second.json()["previous_file_id"] == first.json()["file_id"]
    assert second.json()["file_id"] != first.json()["file_id"]
    again = await client.post("/v1/settlement-files?format=csv:retry", content=bill)
    assert again.status_code == 200 and again.json()["file_id"] == second.json()["file_id"]
    earlier = (await client.get(f"/v1/settlement-files/{first.json()['file_id']}")).json()
    assert earlier["status"] == "rejected" and earlier["previous_file_id"] is None


def collective_credit(details: int) -> bytes:
    """A camt.054 with one collective credit of `details` card payments: one long call of the
    parser (a bank's day of one merchant)."""
    detail = (
        "<TxDtls><Refs><EndToEndId>E{n}</EndToEndId></Refs>"
        '<Amt Ccy="CNY">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></TxDtls>'
    )
    return (
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><BkToCstmrDbtCdtNtfctn>'
        "<GrpHdr><MsgId>M</MsgId></GrpHdr><Ntfctn><Id>N1</Id>"
        "<Acct><Id><IBAN>CN00SLOW</IBAN></Id></Acct>"
        f'<Ntry><Amt Ccy="CNY">{details}.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
        "<Sts><Cd>BOOK</Cd></Sts><NtryDtls>"
        + "".join(detail.format(n=n) for n in range(details))
        + "</NtryDtls></Ntry></Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"
    ).encode()


async def test_a_parse_stuck_past_its_time_is_killed_and_holds_no_other_import(
    recon_settings: ReconSettings,
) -> None:
    hurried = recon_settings.model_copy(update={"parse_timeout": timedelta(seconds=0.3)})
    async with app_client(create_app(hurried), ACQUIRER) as client:
        before = parsing_workers(psutil.Process())
        stuck = asyncio.ensure_future(
            client.post("/v1/settlement-files", content=collective_credit(100_000))
        )
        await asyncio.sleep(0.2)  # its parse has started: the next import waits behind it
        other = await client.post("/v1/settlement-files", content=ADYEN_380.read_bytes())
        assert other.status_code in (200, 202), other.text
        assert other.json()["status"] == "imported"  # tried again in the new parsing process
        answer = await stuck
        assert answer.status_code == 422, answer.text
        (error,) = answer.json()["errors"]
        assert error["loc"] == ["file"] and "SETTLEWATCH_PARSE_TIMEOUT" in error["msg"]
        assert parsing_workers(psutil.Process()) != before  # replaced


async def test_a_parse_slow_in_all_is_stopped_too(
    client: httpx.AsyncClient, recon_settings: ReconSettings
) -> None:
    mapping = {"columns": {"rrn": "rrn", "net": "amount"}}
    assert (await client.put("/v1/file-mappings/slow", json=mapping)).status_code in (200, 201)
    big = b"rrn,amount\n" + b"600000000001,128.00\n" * 200_000  # 40 short calls of the parser
    hurried = recon_settings.model_copy(update={"parse_timeout": timedelta(seconds=0.1)})
    async with app_client(create_app(hurried), ACQUIRER) as limited:
        answer = await limited.post("/v1/settlement-files?format=csv:slow", content=big)
        assert answer.status_code == 422
        (error,) = answer.json()["errors"]
        assert error["loc"] == ["file"] and "SETTLEWATCH_PARSE_TIMEOUT" in error["msg"]
        assert await records_of(recon_settings.database_url, answer.json()["file_id"]) == 0

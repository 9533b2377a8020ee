"""Every file a bank or network might send ends `imported` or `rejected` with located errors
(issue 28 item 3): the real files of ../shared/data as they are, and cut short, with bytes
flipped and with cells replaced by hostile values — read as the service reads them (the batches
its parsing process sends back, JSON included). No parser may fail in a way it did not mean:
such a failure would still reject the file (never a 500), but names no place a person can fix.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlewatch.recon.parsing import UNFORESEEN, batches
from settlewatch.settlementfiles.csvmap import FileMapping
from settlewatch.settlementfiles.formats import detect
from settlewatch.settlementfiles.model import FileRejected
from tests.support.examples import examples

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
FILES = sorted(
    p for p in DATA.rglob("*") if p.is_file() and p.name not in ("README.md", "MANIFEST.tsv")
)
CONTENT = {path: path.read_bytes() for path in FILES}
# Readable files that are rightly refused: a Deutsche Mark statement (no ISO 4217 currency
# any more) and a camt.053 without a statement.
REFUSED = {"WoLpH-mt940/cmxl/mt940.sta", "genkgo-camt/camt053.v2.wrong.xml"}
# An Adyen report read as a bank's CSV 对账单, amounts in 分: the path of every mapped CSV.
ADYEN = DATA / "OCA-bank-statement-import_adyen" / "settlement_detail_report_batch_380.csv"
MAPPING = FileMapping(
    columns={
        "psp_ref": "Psp Reference",
        "txn_id": "Merchant Reference",
        "occurred_at": "Creation Date",
        "kind": "Type",
        "currency": "Net Currency",
        "net": "Net Credit (NC)",
        "batch_id": "Batch Number",
    },
    amount_unit="minor",
    thousands_separator=",",
)
HOSTILE_CELLS = [
    "1e100000000",
    "1E+999999",
    "9" * 19,
    "9" * 5000,
    "-" * 3,
    "NaN",
    "Infinity",
    "0x10",
    "１２３",  # full-width digits
    "1.2.3",
    "\x00",
    "",
    "<a/>" * 50,
    "&lt;",
    "]]>",
    "2026-02-30",
    "99999999999999999999999999",
]
_CELL = re.compile(rb"[^,|`<>\n\r\"]+")


def outcome(data: bytes, fmt: str | None = None) -> str:
    """What an import of these bytes ends as: imported, or rejected with located errors."""
    stream = io.BytesIO(data)
    try:
        found = fmt or detect(stream)
        for batch in batches(stream, found, MAPPING if fmt else None, "file_test"):
            assert isinstance(orjson.loads(batch.records), list)
    except FileRejected as rejected:
        assert rejected.issues
        for issue in rejected.issues:
            assert issue.loc, issue
            assert not issue.msg.startswith(UNFORESEEN), issue  # a failure the parser not meant
        return "rejected"
    return "imported"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(DATA)))
def test_every_sample_file_is_imported_unless_it_is_not_a_statement(path: Path) -> None:
    try:
        readable = detect(io.BytesIO(CONTENT[path])) is not None
    except FileRejected:
        readable = False
    expected = "imported" if readable and str(path.relative_to(DATA)) not in REFUSED else "rejected"
    assert outcome(CONTENT[path]) == expected


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str | None]:
    path = draw(st.sampled_from(FILES))
    data = bytearray(CONTENT[path])
    fmt = "csv:adyen" if path == ADYEN and draw(st.booleans()) else None
    how = draw(st.sampled_from(["prefix", "flip", "cell"]))
    if how == "prefix":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "flip" and data:
        for _ in range(draw(st.integers(1, 5))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
    else:
        cells = list(_CELL.finditer(data))
        if cells:
            cell = draw(st.sampled_from(cells))
            value = draw(st.sampled_from(HOSTILE_CELLS)).encode()
            data = data[: cell.start()] + value + data[cell.end() :]
    return bytes(data), fmt


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_a_damaged_file_is_imported_or_rejected_at_a_place(case: tuple[bytes, str | None]) -> None:
    data, fmt = case
    assert outcome(data, fmt) in ("imported", "rejected")


def test_a_card_number_in_the_banks_text_is_masked_with_a_warning() -> None:
    statement = (
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>'
        b"<GrpHdr><MsgId>M</MsgId></GrpHdr><Stmt><Id>S1</Id>"
        b"<Acct><Id><IBAN>CH9300762011623852957</IBAN></Id></Acct>"
        b'<Ntry><Amt Ccy="CNY">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
        b"<AddtlNtryInf>refund to card 4111 1111 1111 1111</AddtlNtryInf><NtryDtls><TxDtls>"
        b"<Refs><EndToEndId>4111111111111111</EndToEndId></Refs>"
        b"<RmtInf><Ustrd>card 5555555555554444 declined</Ustrd></RmtInf></TxDtls></NtryDtls>"
        b"</Ntry></Stmt></BkToCstmrStmt></Document>"
    )
    (batch,) = batches(io.BytesIO(statement), "camt.053", None, "file_test")
    entry, _ = orjson.loads(batch.records)
    assert entry["info"] == "refund to card 411111******1111"
    assert entry["details"][0]["remittance"] == "card 555555******4444 declined"
    assert entry["details"][0]["end_to_end_id"] == "4111111111111111"  # an id, matched on
    (warning,) = batch.warnings
    assert warning.loc == ("Stmt", 0, "Ntry", 0)
    assert warning.msg.startswith("2 card numbers (PAN) in the bank's text masked")

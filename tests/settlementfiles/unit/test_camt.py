"""camt.053/054 on the real files of ../shared/data (issue 13): every one parses, each genkgo
file agrees with genkgo's own expected parse, and the traps are flagged, not matched.

Differences from genkgo, by field: dates are the date the bank wrote (a ``DtTm`` keeps its own
offset's date; genkgo converts to UTC); a detail keeps its own ``CdtDbtInd`` (genkgo signs a
detail by its entry's direction), so amounts are compared without sign; amounts are integer
minor units in both.
"""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from settlewatch.settlementfiles import camt
from settlewatch.settlementfiles.model import Entry, FileRejected, Issue, Statement

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
CAMT_FILES = sorted(
    p
    for folder in ("genkgo-camt", "dvbern-iso20022", "viafintech-camt_parser")
    for p in (DATA / folder).rglob("*.xml")
    if p.name != "camt053.v2.wrong.xml"
) + sorted((DATA / "OCA-bank-statement-import_camt").glob("test-camt05*"))


def parse(path: Path, expected: str | None = None) -> list[Statement | Entry]:
    with path.open("rb") as stream:
        return list(camt.parse(stream, expected))


def entries(records: list[Statement | Entry]) -> list[Entry]:
    return [r for r in records if isinstance(r, Entry)]


def codes(entry: Entry) -> set[str]:
    return {p.code for p in entry.problems}


@pytest.mark.parametrize("path", CAMT_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_file_parses(path: Path) -> None:
    records = parse(path)
    statements = [r for r in records if isinstance(r, Statement)]
    assert statements and all(s.account for s in statements)
    for entry in entries(records):
        assert entry.amount_minor >= 0 and entry.currency and entry.account


GENKGO = sorted((DATA / "genkgo-camt").glob("*.json"))


def _genkgo_date(value: dict[str, Any] | None) -> date | None:
    return None if value is None else datetime.fromisoformat(value["0"]).date()


@pytest.mark.parametrize("expected", GENKGO, ids=lambda p: p.stem)
def test_entries_agree_with_genkgos_expected_parse(expected: Path) -> None:
    # genkgo's dump lists the entries of the last statement only (the others are cut off as
    # "__RECURSIVITY__"): compare those.
    want = json.loads(expected.read_text())["getEntries"]
    got = entries(parse(expected.with_suffix(".xml")))
    last = max((e.loc[1] for e in got), default=0)
    got = [e for e in got if e.loc[1] == last]
    assert len(got) == len(want)
    for ours, theirs in zip(got, want, strict=True):
        amount = theirs["getAmount"]
        assert ours.signed_minor == int(amount["getAmount"])
        assert ours.currency == amount["getCurrency"]["getCode"]
        assert (
            ours.direction == {"CRDT": "credit", "DBIT": "debit"}[theirs["getCreditDebitIndicator"]]
        )
        assert ours.status == {"BOOK": "booked", "PDNG": "pending"}[theirs["getStatus"]]
        assert ours.reversal == bool(theirs["getReversalIndicator"])
        assert ours.servicer_ref == (theirs["getAccountServicerReference"] or None)
        assert ours.entry_ref == theirs["getReference"]
        for mine, genkgo_date in (
            (ours.booking_date, _genkgo_date(theirs["getBookingDate"])),
            (ours.value_date, _genkgo_date(theirs["getValueDate"])),
        ):
            assert mine == genkgo_date or (
                mine and genkgo_date and abs((mine - genkgo_date).days) <= 1
            )  # a DtTm: the bank's date, not UTC's
        details = theirs["getTransactionDetails"]
        assert len(ours.details) == len(details)
        for detail, their_detail in zip(ours.details, details, strict=True):
            if not isinstance(their_detail, dict):  # "__RECURSIVITY__": genkgo's dump cut it
                continue
            reference = their_detail["getReference"] or {}
            assert detail.end_to_end_id == (reference.get("getEndToEndId") or None)
            if their_detail["getAmount"] is not None:
                assert detail.amount_minor == abs(int(their_detail["getAmount"]["getAmount"]))
            else:
                assert detail.amount_minor is None


@pytest.mark.parametrize("version", ["v4", "v8"])
def test_genkgo_camt054_batch_traps_are_flagged(version: str) -> None:
    """Batch header 2 / 6.30 vs 3 items totalling 9.50; a duplicated EndToEndId; CRDT details
    in a DBIT entry; an SEK entry with CHF details."""
    (entry,) = entries(parse(DATA / "genkgo-camt" / f"camt054.{version}.xml", "camt.054"))
    found = {(p.code, p.expected, p.found) for p in entry.problems}
    assert ("batch_total_mismatch", "2", "3") in found
    assert ("batch_total_mismatch", "630", "950") in found
    assert ("direction_mismatch", "debit", "credit") in found
    assert ("currency_mismatch", "SEK", "CHF") in found
    duplicates = [d for d in entry.details if "duplicate_line" in {p.code for p in d.problems}]
    assert [d.end_to_end_id for d in duplicates] == ["UXC06170000006PI00001EE00002"]


def test_a_consistent_collective_credit_is_not_flagged() -> None:
    """PostFinance's camt.054 breakdown of a collective credit: 8 details, charges apart."""
    path = (
        DATA
        / "dvbern-iso20022"
        / "camt.054-ES_P_CH0309000000250090342_38000000_0_2016052723011813.xml"
    )
    (entry,) = entries(parse(path))
    assert entry.problems == ()
    assert entry.batch is not None and entry.batch.count == len(entry.details) == 8
    assert entry.charges_minor == 720 and entry.charges_included is False
    assert sum(d.amount_minor or 0 for d in entry.details) == entry.amount_minor


def test_the_camt053_without_a_statement_is_rejected_with_its_location() -> None:
    with pytest.raises(FileRejected) as rejected:
        parse(DATA / "genkgo-camt" / "camt053.v2.wrong.xml")
    (issue,) = rejected.value.issues
    assert issue.loc == ("Document", "BkToCstmrStmt")
    assert "no Stmt" in issue.msg


def test_a_notification_is_refused_as_a_statement() -> None:
    with pytest.raises(FileRejected, match="camt.054, not a camt.053"):
        parse(DATA / "genkgo-camt" / "camt054.v8.xml", "camt.053")


def test_the_non_standard_namespace_reads_the_same() -> None:
    records = parse(DATA / "viafintech-camt_parser" / "053" / "valid_example_stuzza.xml")
    assert entries(records)


STATEMENT = """<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>M</MsgId></GrpHdr>
<Stmt><Id>S1</Id><Acct><Id><IBAN>CN00TEST</IBAN></Id></Acct>
<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>
<Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp>
<Amt Ccy="EUR">{closing}</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal>
<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
<BookgDt><DtTm>2026-11-26T23:30:00+08:00</DtTm></BookgDt><ValDt><Dt>2026-11-27</Dt></ValDt></Ntry>
</Stmt></BkToCstmrStmt></Document>"""


def statement(amount: str, closing: str = "18.85") -> list[Statement | Entry]:
    body = STATEMENT.format(amount=amount, closing=closing).encode()
    return list(camt.parse(io.BytesIO(body)))


def test_amounts_are_exact_minor_units_and_precision_is_never_lost() -> None:
    (entry, _) = statement("8.850")
    assert isinstance(entry, Entry) and entry.amount_minor == 885
    with pytest.raises(FileRejected) as rejected:
        statement("8.855")
    (issue,) = rejected.value.issues
    assert issue.loc == ("Stmt", 0, "Ntry", 0, "Amt")
    assert "more decimals than EUR has" in issue.msg


def test_a_date_time_keeps_the_banks_own_date() -> None:
    (entry, _) = statement("8.85")
    assert isinstance(entry, Entry)
    assert entry.booking_date == date(2026, 11, 26)  # 15:30 UTC, but the 26th in Beijing
    assert entry.value_date == date(2026, 11, 27)


def test_opening_plus_entries_must_be_closing() -> None:
    (_, good) = statement("8.85", closing="18.85")
    assert isinstance(good, Statement) and good.problems == ()
    assert (good.opening_minor, good.closing_minor) == (1000, 1885)
    (_, bad) = statement("8.85", closing="20.00")
    assert isinstance(bad, Statement)
    assert [(p.code, p.expected, p.found) for p in bad.problems] == [
        ("balance_mismatch", "2000", "1885")
    ]


def test_truncated_xml_is_rejected_with_its_line() -> None:
    body = STATEMENT.format(amount="1.00", closing="11.00").encode()
    with pytest.raises(FileRejected) as rejected:
        list(camt.parse(io.BytesIO(body[: len(body) // 2])))
    (issue,) = rejected.value.issues
    assert issue.loc[0] == "line" and "not well-formed" in issue.msg


def test_entities_are_never_expanded() -> None:
    """XXE: an external entity naming a local file is not read into the statement."""
    body = STATEMENT.format(amount="1.00", closing="11.00").replace("<Id>S1</Id>", "<Id>&xxe;</Id>")
    body = body.replace(
        '<?xml version="1.0"?>',
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>',
    )
    records = list(camt.parse(io.BytesIO(body.encode())))
    (stmt,) = [r for r in records if isinstance(r, Statement)]
    assert (
        stmt.id is None
        or "/" not in stmt.id
        and Path("/etc/hostname").read_text().strip() != stmt.id
    )


def test_an_end_of_day_entry_without_a_status_is_booked_with_a_warning() -> None:
    """A bank's converter left out the mandatory Sts (issue 28): a camt.053 books every entry."""
    body = STATEMENT.format(amount="8.85", closing="18.85").replace("<Sts>BOOK</Sts>", "")
    entry, warning, stmt = camt.parse(io.BytesIO(body.encode()))
    assert isinstance(entry, Entry) and entry.status == "booked"
    assert isinstance(warning, Issue) and warning.loc == ("Stmt", 0, "Ntry", "Sts")
    assert "1 entries without Sts read as booked" in warning.msg
    assert isinstance(stmt, Statement) and stmt.problems == ()  # the entry counts in the balance
    notification = body.replace("camt.053.001.02", "camt.054.001.02")
    notification = notification.replace("BkToCstmrStmt>", "BkToCstmrDbtCdtNtfctn>")
    notification = notification.replace("<Stmt>", "<Ntfctn>").replace("</Stmt>", "</Ntfctn>")
    with pytest.raises(FileRejected, match="unknown entry status None"):
        list(camt.parse(io.BytesIO(notification.encode())))


def test_what_is_read_outside_entries_is_not_kept_either() -> None:
    """A group header of 300 000 empty elements (1.2 MB) held whole took ≈ 45 MB."""
    body = STATEMENT.format(amount="8.85", closing="18.85")
    body = body.replace("<MsgId>M</MsgId>", "<MsgId>M</MsgId>" + "<X/>" * 300_000)
    body = body.replace("</Acct>", "</Acct>" + "<Y/>" * 50_000)
    process = psutil.Process()
    before = process.memory_info().rss
    records = camt.parse(io.BytesIO(body.encode()))
    entry = next(records)  # the header and the statement's start are read, the rest is not
    grown = process.memory_info().rss - before
    assert isinstance(entry, Entry) and entry.amount_minor == 885
    assert grown < 16 * 2**20, f"{grown / 2**20:.0f} MiB"
    assert [type(r) for r in records] == [Statement]


def test_one_part_of_a_statement_holds_a_bounded_number_of_elements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(camt, "MAX_ELEMENTS", 1000)
    body = STATEMENT.format(amount="8.85", closing="18.85")
    body = body.replace(
        "</ValDt></Ntry>", "</ValDt><NtryDtls>" + "<X/>" * 1001 + "</NtryDtls></Ntry>"
    )
    with pytest.raises(FileRejected) as rejected:
        list(camt.parse(io.BytesIO(body.encode())))
    (issue,) = rejected.value.issues
    assert issue.loc == ("Stmt", 0, "Ntry") and "more than 1000 elements" in issue.msg

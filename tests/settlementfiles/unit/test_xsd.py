"""Warn-only schema validation of camt statements: the sample files that follow their ISO 20022
schema pass, those that do not get one warning naming the element, a namespace without a
schema says so — and none of it stops a file from being read (issue 13)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from settlewatch.settlementfiles import camt
from settlewatch.settlementfiles.model import Entry
from settlewatch.settlementfiles.xsd import check

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
VALID = sorted((DATA / "genkgo-camt").glob("camt05*.xml")) + sorted(
    (DATA / "dvbern-iso20022").glob("*.xml")
)


@pytest.mark.parametrize(
    "path", [p for p in VALID if ".wrong." not in p.name], ids=lambda p: p.name
)
def test_files_that_follow_their_schema_pass(path: Path) -> None:
    with path.open("rb") as stream:
        assert check(stream) == []
        assert stream.tell() == 0  # left where the parser starts


def test_the_first_violation_is_a_warning_naming_the_element() -> None:
    with (DATA / "genkgo-camt" / "camt053.v2.wrong.xml").open("rb") as stream:
        (issue,) = check(stream)
    assert issue.msg.startswith("camt.053.001.02: Element 'BkToCstmrStmt': Missing child")
    assert "Stmt" in issue.msg and "urn:iso" not in issue.msg


def test_a_real_file_that_breaks_its_schema_is_still_read() -> None:
    path = DATA / "viafintech-camt_parser" / "053" / "valid_example_with_batch.xml"
    with path.open("rb") as stream:
        (issue,) = check(stream)
        assert "'MsgId': This element is not expected" in issue.msg
        assert any(isinstance(r, Entry) for r in camt.parse(stream))


def test_a_namespace_without_a_schema_is_said_not_validated() -> None:
    document = b'<Document xmlns="urn:example:camt.053"><BkToCstmrStmt/></Document>'
    (issue,) = check(io.BytesIO(document))
    assert issue.msg == "no schema known for namespace 'urn:example:camt.053'"

"""The findings registry (common.findings) is the one list of finding types: no code names a type
it lacks, and every entry can be told to a person in both languages from the evidence it
declares."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, get_args

import orjson
import pytest

from settlewatch.alerts.core.summaries import summary
from settlewatch.common.catalogue import WEBHOOK_TYPES
from settlewatch.common.events import decode_finding
from settlewatch.common.findings import KINDS, FindingType, kind

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = sorted({t.split(".")[0] for t in KINDS})
# A dotted name of a finding family anywhere in a string: "settlement.overdue", or inside SQL
# (not a module's or a template's file name: "calendar.py", "payout.html").
NAMED = re.compile(rf"\b(?:{'|'.join(FAMILIES)})\.(?!py\b|html\b)[a-z_]+\b")
NOT_FINDINGS = set(WEBHOOK_TYPES)  # the webhooks' own types: a digest, a test message


def named_types() -> dict[str, list[str]]:
    """Every finding-like name in a string of the product's code, with where it is."""
    found: dict[str, list[str]] = {}
    for top in ("libs", "services"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    for name in NAMED.findall(node.value):
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        found.setdefault(name, []).append(where)
    return found


def test_no_code_names_a_type_the_registry_lacks() -> None:
    names = named_types()
    unknown = {n: w for n, w in names.items() if n not in KINDS and n not in NOT_FINDINGS}
    assert not unknown, f"finding types missing from common.findings: {unknown}"
    # The scan sees the producers: each type is named somewhere besides the registry.
    unnamed = {t for t in KINDS if not any("findings.py" not in w for w in names.get(t, []))}
    assert not unnamed, f"registered types no code raises: {sorted(unnamed)}"


def test_the_literal_and_the_entries_agree() -> None:
    assert set(get_args(FindingType)) == set(KINDS)
    assert all(k.type == t for t, k in KINDS.items())
    with pytest.raises(KeyError, match="common.findings"):
        kind("settlement.vanished")


@pytest.mark.parametrize("finding_type", sorted(KINDS))
def test_each_type_has_words_in_both_languages(finding_type: str) -> None:
    about = KINDS[finding_type]
    for locale in ("zh-CN", "en"):
        assert about.title[locale].strip() and about.template[locale].strip()
    assert about.resolves and about.producer and about.audience
    # On-call types go to Alertmanager under a name; the others to the merchant.
    assert ("oncall" in about.audience) == (about.alertname is not None)
    assert ("oncall" in about.audience) != ("merchant" in about.audience)


# A plausible value for every evidence key a registry entry may declare.
SAMPLE: dict[str, Any] = {
    "txn_id": "T1001",
    "txn_ids": ["T1001", "T1002"],
    "amount_minor": 12800,
    "currency": "CNY",
    "occurred_at": "2026-11-20T02:02:00+00:00",
    "due_at": "2026-11-21T16:00:00+00:00",
    "settlement_cycle": "T1",
    "settlement_id": "S77",
    "failure_reason": "account frozen",
    "expected_net_minor": 12723,
    "settled_net_minor": 12000,
    "refunded_minor": 13000,
    "refunds": ["R1", "R2"],
    "file_id": "file_1",
    "loc": ["line", 7],
    "problems": [{"code": "batch_total_mismatch", "expected": "100.00", "found": "99.00"}],
    "line_kind": "fee_debit",
    "reference": "PO-9",
    "count": 3,
    "value_date": "2026-11-21",
    "account": "6222020200112233",
    "credit_id": "c-1",
    "credited_minor": 12000,
    "difference_minor": 800,
    "credit": {"entry_ref": "E-5"},
    "terminal_id": "TERM1",
    "regions": ["310000", "440300"],
    "transactions": [{"occurred_at": "2026-11-20T02:02:00+00:00"}],
    "replaced_terminal_id": "TERM0",
    "new_terminal_id": "TERM1",
    "booked_under": "TERM0",
    "business_date": "2026-11-20",
    "window_id": "w-1",
    "bank_code": "ICBC",
    "starts_at": "2026-11-28T16:00:00+00:00",
    "ends_at": "2026-11-29T16:00:00+00:00",
    "reason": "core system upgrade",
    "moved_count": 4,
    "fell_due": 120,
    "overdue": 90,
    "threshold": 60,
    "calendar": "CN",
    "year": 2027,
    "matcher_clock": "2026-11-20T02:02:00+00:00",
}


@pytest.mark.parametrize("finding_type", sorted(KINDS))
@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_the_declared_evidence_fills_the_template(finding_type: str, locale: Any) -> None:
    """Rendered from only the keys it declares, a summary has no unknown ("?") fact: the
    declaration is what a producer must put in the evidence."""
    evidence = {key: SAMPLE[key] for key in KINDS[finding_type].evidence}
    text = summary(
        finding_type,
        evidence,
        locale=locale,
        timezone="Asia/Shanghai",
        probable_cause="bank_maintenance",
    )
    assert "?" not in text and "{" not in text, text


def test_a_type_without_an_entry_has_no_summary() -> None:
    with pytest.raises(KeyError):
        summary("settlement.vanished", {}, locale="en", timezone="UTC", probable_cause=None)


def test_a_finding_of_an_unregistered_type_is_refused_on_the_topic() -> None:
    """The alerts consumer sets a refused record aside as a dead letter (docs/alerts.md)."""
    body = {
        "id": "x",
        "state": "open",
        "at": "2026-12-04T00:00:00Z",
        "merchant_id": "M1",
        "txn_id": "T1",
        "evidence": {},
    }
    assert decode_finding(orjson.dumps(body | {"type": "settlement.overdue"}))["type"]
    with pytest.raises(ValueError, match="type"):
        decode_finding(orjson.dumps(body | {"type": "settlement.vanished"}))

"""Findings become alerts with deterministic identity; statuses only move forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlewatch.alerts.core.lifecycle import (
    AlertStatus,
    Invalid,
    ReceivedFinding,
    Recipient,
    absorb,
    after_action,
)

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
EVIDENCE = {
    "txn_id": "T1",
    "rrn": "123456789012",
    "amount_minor": 12800,
    "currency": "CNY",
    "occurred_at": "2026-11-20T02:02:00+00:00",
    "settlement_cycle": "T1",
    "due_at": "2026-11-21T16:00:00+00:00",
    "bank_code": "ICBC",
}
RECIPIENTS = {"M1": Recipient(locale="en", timezone="Asia/Shanghai", has_webhook=True)}


def finding(kind: str, subject: str, state: str = "open", **extra: Any) -> ReceivedFinding:
    return ReceivedFinding(
        id=f"{kind}:{subject}",
        type=kind,
        state=state,  # type: ignore[arg-type]
        at=NOW,
        merchant_id=extra.pop("merchant_id", "M1"),
        txn_id=subject,
        evidence=EVIDENCE | extra,
    )


def run(findings: list[ReceivedFinding], statuses: dict[str, AlertStatus] | None = None, **kw: Any):
    return absorb(
        findings,
        statuses or {},
        RECIPIENTS,
        kw.get("windows", {}),
        kw.get("incidents", frozenset()),
        NOW,
    )


def test_an_overdue_finding_becomes_one_open_alert_with_evidence_and_summary() -> None:
    new, resolved = run([finding("settlement.overdue", "T1")] * 3)  # duplicated in the batch
    assert resolved == [] and len(new) == 1
    alert = new[0]
    assert (alert.alert_id, alert.status, alert.merchant_id) == (
        "settlement.overdue:T1",
        "open",
        "M1",
    )
    assert alert.evidence["rrn"] == "123456789012" and alert.notify and not alert.oncall
    assert alert.probable_cause == "unknown"
    assert alert.summary.startswith("Transaction T1 (CN¥128.00, Nov 20, 10:02)")


def test_a_known_alert_is_not_created_again_and_a_stale_open_never_reopens() -> None:
    assert run([finding("settlement.overdue", "T1")], {"settlement.overdue:T1": "open"}) == (
        [],
        [],
    )
    stale = run([finding("settlement.overdue", "T1")], {"settlement.overdue:T1": "resolved"})
    assert stale == ([], [])


def test_resolution_of_an_open_or_acknowledged_alert_carries_a_note() -> None:
    for status in ("open", "acknowledged"):
        new, resolved = run(
            [finding("settlement.overdue", "T1", "resolved")], {"settlement.overdue:T1": status}
        )
        assert new == [] and [r.alert_id for r in resolved] == ["settlement.overdue:T1"]
        assert resolved[0].note["by"] == "settlewatch"
        assert "settled or cancelled" in resolved[0].note["note"]


def test_settled_late_is_a_follow_up_created_resolved_and_still_sent() -> None:
    new, _ = run([finding("settlement.settled_late", "T1", settlement_id="S1")])
    assert new[0].status == "resolved" and new[0].notify


def test_opened_and_resolved_in_one_batch_is_created_resolved() -> None:
    new, resolved = run(
        [finding("settlement.overdue", "T1"), finding("settlement.overdue", "T1", "resolved")]
    )
    assert resolved == [] and [a.status for a in new] == ["resolved"]
    assert [n["action"] for n in new[0].notes] == ["resolved"]


def test_probable_cause_maintenance_since_the_transaction_before_incident() -> None:
    window = (datetime(2026, 11, 21, 0, 0, tzinfo=UTC), datetime(2026, 11, 21, 4, 0, tzinfo=UTC))
    before = (window[0] - timedelta(days=5), window[1] - timedelta(days=5))
    new, _ = run([finding("settlement.overdue", "T1")], windows={"ICBC": [window]})
    assert new[0].probable_cause == "bank_maintenance"
    new, _ = run(
        [finding("settlement.overdue", "T1")],
        windows={"ICBC": [before]},
        incidents=frozenset({"ICBC"}),
    )
    assert new[0].probable_cause == "bank_incident"
    new, _ = run([finding("transaction.duplicate_suspected", "T1:T2")])
    assert new[0].probable_cause is None  # not the bank's doing


def test_pipeline_stalled_is_on_call_only() -> None:
    stalled = ReceivedFinding(
        id="pipeline.stalled:x",
        type="pipeline.stalled",
        state="open",
        at=NOW,
        merchant_id=None,
        txn_id=None,
        evidence={"matcher_clock": "2026-11-22T07:59:00+00:00"},
    )
    new, _ = run([stalled])
    assert new[0].oncall and not new[0].notify and "matcher clock stopped" in new[0].summary


def test_a_merchant_without_webhook_gets_alerts_but_no_deliveries() -> None:
    new, _ = run([finding("settlement.overdue", "T9", merchant_id="M-no-hook")])
    assert not new[0].notify and "未按 T+1 到账" in new[0].summary  # zh-CN by default


def test_people_ack_then_resolve_and_cannot_act_on_a_resolved_alert() -> None:
    assert after_action("open", "ack") == "acknowledged"
    assert after_action("acknowledged", "resolve") == "resolved"
    assert after_action("open", "resolve") == "resolved"
    for status, action in (("resolved", "ack"), ("resolved", "resolve"), ("acknowledged", "ack")):
        with pytest.raises(Invalid):
            after_action(status, action)  # type: ignore[arg-type]


FINDINGS = st.lists(
    st.builds(
        finding,
        kind=st.sampled_from(["settlement.overdue", "settlement.failed"]),
        subject=st.sampled_from(["T1", "T2"]),
        state=st.sampled_from(["open", "resolved"]),
    ),
    max_size=12,
)


@given(findings=FINDINGS, cut=st.integers(min_value=0, max_value=12))
def test_absorbing_in_two_batches_ends_like_one_batch(
    findings: list[ReceivedFinding], cut: int
) -> None:
    def final(batches: list[list[ReceivedFinding]]) -> dict[str, AlertStatus]:
        statuses: dict[str, AlertStatus] = {}
        for batch in batches:
            new, resolved = run(batch, dict(statuses))
            statuses |= {a.alert_id: a.status for a in new}
            statuses |= {r.alert_id: "resolved" for r in resolved}
        return statuses

    assert final([findings[:cut], findings[cut:]]) == final([findings])
    assert final([findings, findings]) == final([findings])  # redelivery changes nothing

"""The matcher core's decisions, scenario by scenario (explicit times, Asia/Shanghai, CN, T1)."""

from __future__ import annotations

import pytest

from settlewatch.common.events import MaintenanceWindow
from settlewatch.matcher.core import matcher as matcher_module
from settlewatch.matcher.core.matcher import fee
from settlewatch.matcher.core.model import MerchantTerms
from tests.matcher.unit.scenario import Run, at, merchant, paid, sale, settlement, void

DUE = "2025-11-22T00:00+08:00"  # T1 of a sale on Thursday 2025-11-20 10:00
JUST_BEFORE = "2025-11-21T23:59:59+08:00"


def started(*events: object) -> Run:
    run = Run().feed(merchant())
    run.feed(*events)  # type: ignore[arg-type]
    return run


def test_an_unsettled_payment_is_overdue_at_the_first_tick_past_due_and_never_before() -> None:
    run = started(sale("T1"))
    assert run.tick("2025-11-20T12:00+08:00") == []
    assert run.tick(JUST_BEFORE) == []
    [finding] = run.tick(DUE)
    assert (finding.id, finding.type, finding.state) == (
        "settlement.overdue:T1",
        "settlement.overdue",
        "open",
    )
    assert finding.evidence["due_at"] == at(DUE).isoformat()
    assert finding.evidence["rrn"] == "532410283771"
    assert run.tick("2025-11-22T00:00:05+08:00") == []  # never twice
    assert run.status("T1") == "overdue"


def test_a_payment_settled_in_time_gets_no_finding() -> None:
    run = started(sale("T1"))
    run.tick("2025-11-20T12:00+08:00")
    run.feed(paid("T1"))
    run.tick(JUST_BEFORE)
    run.tick("2025-11-23T00:00+08:00")
    assert run.findings == []
    assert run.status("T1") == "settled"


def test_a_settlement_accepted_before_the_deadline_pulse_counts_as_in_time() -> None:
    run = started(sale("T1"))
    run.feed(paid("T1", occurred="2025-11-21T23:59:59+08:00"))
    assert run.tick(DUE) == []
    assert run.status("T1") == "settled"


def test_a_late_settlement_reports_settled_late_and_resolves_the_overdue() -> None:
    run = started(sale("T1"))
    run.tick(DUE)
    run.feed(paid("T1", occurred="2025-11-22T10:00+08:00"))
    new = run.tick("2025-11-22T10:00:01+08:00")
    assert [(f.id, f.state) for f in new] == [
        ("settlement.settled_late:T1", "open"),
        ("settlement.overdue:T1", "resolved"),
    ]
    assert run.status("T1") == "settled_late"


def test_a_failed_payout_is_reported_and_a_later_payout_recovers_it() -> None:
    run = started(sale("T1"))
    run.feed(
        paid("T1", status="failed", reason="收款账户已冻结", occurred="2025-11-21T09:00+08:00")
    )
    [failed] = run.tick("2025-11-21T09:00:01+08:00")
    assert failed.id == "settlement.failed:T1:S-T1"
    assert failed.evidence["failure_reason"] == "收款账户已冻结"
    assert run.tick(DUE) == []  # a failed payment is not also overdue
    run.feed(settlement("S-retry", [("T1", 12800, 77, 12723)], occurred="2025-11-23T09:00+08:00"))
    new = run.tick("2025-11-23T09:00:01+08:00")
    assert {(f.id, f.state) for f in new} == {
        ("settlement.failed:T1:S-T1", "resolved"),
        ("settlement.recovered:T1", "open"),
    }
    assert run.status("T1") == "settled"


def test_a_return_after_a_payout_fails_the_payment_again() -> None:
    run = started(sale("T1"), paid("T1"))
    run.tick("2025-11-21T10:00+08:00")
    run.feed(
        settlement(
            "S-back",
            [("T1", 12800, 77, 12723)],
            status="returned",
            occurred="2025-11-21T15:00+08:00",
        )
    )
    [finding] = run.tick("2025-11-21T15:00:01+08:00")
    assert finding.id == "settlement.failed:T1:S-back"
    assert run.status("T1") == "failed"


def test_a_short_payout_is_an_amount_mismatch() -> None:
    run = started(sale("T1"))
    run.feed(settlement("S1", [("T1", 12800, 300, 12500)]))  # an unexpected fee
    [finding] = run.tick("2025-11-21T10:00+08:00")
    assert finding.type == "settlement.amount_mismatch"
    assert finding.evidence["expected_net_minor"] == 12723
    assert finding.evidence["settled_net_minor"] == 12500


def test_a_net_within_the_tolerance_is_fine() -> None:
    run = started(sale("T1"), settlement("S1", [("T1", 12800, 78, 12722)]))
    assert run.tick("2025-11-21T10:00+08:00") == []


def test_fees_round_half_up_and_respect_the_cap() -> None:
    terms = Run().feed(merchant(mdr_bps=60)).matcher.state.merchants["M1"]
    on = at("2025-11-20T10:00+08:00")

    def charged(gross: int, of: MerchantTerms) -> int | None:
        applied = fee(gross, of, on)
        return applied.fee_minor if applied else None

    assert charged(12800, terms) == 77  # 76.8
    assert charged(12500, terms) == 75
    assert charged(125, terms) == 1  # 0.75
    assert charged(250, terms) == 2  # 1.5 rounds up
    capped = Run().feed(merchant(mdr_bps=60, fee_cap_minor=2500)).matcher.state.merchants["M1"]
    assert charged(10_000_000, capped) == 2500


def test_a_void_cancels_a_pending_payment_and_no_overdue_ever_comes() -> None:
    run = started(sale("T1"), void("V1", "T1"))
    run.tick(DUE)
    run.tick("2025-12-30T00:00+08:00")
    assert run.findings == []
    assert run.status("T1") == "cancelled"


def test_a_void_that_arrives_before_its_sale_still_cancels_it() -> None:
    run = started(void("V1", "T1"), sale("T1"))
    run.tick(DUE)
    assert run.findings == []
    assert run.status("T1") == "cancelled"


def test_a_settlement_for_an_unknown_transaction_is_reported_after_15_minutes() -> None:
    run = started(paid("T9", occurred="2025-11-21T09:00+08:00"))
    assert run.tick("2025-11-21T09:14:59+08:00") == []
    [finding] = run.tick("2025-11-21T09:15+08:00")
    assert (finding.id, finding.merchant_id) == ("settlement.unknown_transaction:S-T9:T9", "M1")
    run.feed(sale("T9"))
    new = run.tick("2025-11-21T10:00+08:00")
    assert ("settlement.unknown_transaction:S-T9:T9", "resolved") in {(f.id, f.state) for f in new}
    assert run.status("T9") == "settled"


def test_a_settlement_just_ahead_of_its_transaction_is_simply_matched() -> None:
    run = started(paid("T1"), sale("T1"))
    assert run.tick("2025-11-21T12:00+08:00") == []
    assert run.status("T1") == "settled"


def test_two_sales_of_one_card_and_amount_within_10_minutes_are_a_suspected_duplicate() -> None:
    first = sale("T1", card_fingerprint="fp-same")
    second = sale("T2", "2025-11-20T10:09+08:00", card_fingerprint="fp-same")
    run = started(first, second)
    [finding] = run.tick("2025-11-20T10:10+08:00")
    assert finding.id == "transaction.duplicate_suspected:T1:T2"
    assert finding.evidence["txn_ids"] == ["T1", "T2"]


def test_no_duplicate_when_one_was_voided_or_they_are_far_apart() -> None:
    voided = started(
        sale("T1", card_fingerprint="fp-same"),
        sale("T2", "2025-11-20T10:09+08:00", card_fingerprint="fp-same"),
        void("V2", "T2"),
    )
    assert voided.tick("2025-11-20T10:10+08:00") == []
    apart = started(
        sale("T1", card_fingerprint="fp-same"),
        sale("T2", "2025-11-20T10:10:01+08:00", card_fingerprint="fp-same"),
    )
    assert apart.tick("2025-11-20T10:11+08:00") == []


def test_sales_whose_keys_hash_alike_are_paired_only_when_their_card_and_amount_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(matcher_module, "key_hash", lambda key: 7)  # every key collides
    run = started(
        sale("T1", card_fingerprint="fp-a"),
        sale("T2", "2025-11-20T10:01+08:00", card_fingerprint="fp-b"),
        sale("T3", "2025-11-20T10:02+08:00", card_fingerprint="fp-a", amount_minor=5000),
        sale("T4", "2025-11-20T10:03+08:00", card_fingerprint="fp-a"),
    )
    assert [f.id for f in run.tick("2025-11-20T10:10+08:00")] == [
        "transaction.duplicate_suspected:T1:T4"
    ]


def test_the_same_txn_id_with_other_content_is_a_conflict_and_the_first_wins() -> None:
    run = started(sale("T1"), sale("T1", amount_minor=99_999), sale("T1", amount_minor=99_999))
    [finding] = run.tick("2025-11-20T11:00+08:00")
    assert finding.type == "transaction.conflict"
    assert run.matcher.state.payments["T1"].amount_minor == 12800


def test_redelivered_events_change_nothing() -> None:
    run = started(sale("T1"), sale("T1"), paid("T1", status="failed"), paid("T1", status="failed"))
    assert len(run.tick("2025-11-21T10:00+08:00")) == 1
    run.feed(sale("T1"), paid("T1", status="failed"))
    assert run.tick("2025-11-21T11:00+08:00") == []


def test_a_maintenance_window_moves_the_deadline_to_its_end_plus_two_hours() -> None:
    window = MaintenanceWindow(
        id="mw1",
        bank_code="ICBC",
        starts_at=at("2025-11-21T22:00+08:00"),
        ends_at=at("2025-11-22T06:00+08:00"),
        reason="upgrade",
    )
    announcements = []
    for events in ([sale("T1"), window], [window, sale("T1")]):  # either order
        run = started(*events)
        [announced] = run.tick(DUE)  # the bank's merchants are told what moves
        announcements.append(announced)
        assert run.tick("2025-11-22T07:59:59+08:00") == []
        [finding] = run.tick("2025-11-22T08:00+08:00")
        assert finding.evidence["due_at"] == at("2025-11-22T08:00+08:00").isoformat()
    first, second = announcements
    assert first == second and first.id == "bank.maintenance_scheduled:mw1:M1"
    assert first.evidence["moved"] == [
        {"txn_id": "T1", "from": "2025-11-22T00:00:00+08:00", "to": "2025-11-22T08:00:00+08:00"}
    ]
    assert (first.evidence["starts_at"], first.evidence["reason"]) == (
        "2025-11-21T22:00:00+08:00",
        "upgrade",
    )


def test_a_window_is_announced_to_every_merchant_of_the_bank_once() -> None:
    window = MaintenanceWindow(
        id="mw2",
        bank_code="ICBC",
        starts_at=at("2025-11-25T22:00+08:00"),
        ends_at=at("2025-11-26T02:00+08:00"),
        reason="upgrade",
    )
    run = started(merchant("M2"), merchant("M3", settlement_bank="CMB"), sale("T1"), window)
    found = run.tick("2025-11-20T11:00+08:00")
    assert [(f.merchant_id, f.evidence["moved_count"]) for f in found] == [("M1", 0), ("M2", 0)]
    run.feed(window)  # redelivered
    assert run.tick("2025-11-20T11:01+08:00") == []


def test_a_transaction_ingested_after_its_deadline_is_overdue_at_the_next_tick() -> None:
    run = started()
    run.tick("2025-11-25T10:00+08:00")
    run.feed(sale("T-old"))
    [finding] = run.tick("2025-11-25T10:00:01+08:00")
    assert finding.id == "settlement.overdue:T-old"


def test_30_days_after_the_deadline_an_unsettled_payment_expires_for_good() -> None:
    run = started(sale("T1"))
    run.tick(DUE)
    assert run.tick("2025-12-21T23:59+08:00") == []
    [finding] = run.tick("2025-12-22T00:00+08:00")
    assert finding.type == "settlement.expired"
    assert run.status("T1") == "expired"
    assert run.tick("2026-02-01T00:00+08:00") == []  # never fired again


def test_a_refund_is_watched_with_negative_amounts_and_no_fee() -> None:
    refund = sale("R1", type="refund", original_txn_id="T1", amount_minor=2800)
    run = started(refund, settlement("S1", [("R1", -2800, 0, -2800)]))
    assert run.tick("2025-11-21T10:00+08:00") == []
    assert run.status("R1") == "settled"


def test_the_core_notes_settlement_delays_and_calendar_fallbacks_for_metrics() -> None:
    run = started(
        sale("T1"),
        paid("T1", occurred="2025-11-21T09:00+08:00"),
        sale("T-2031", "2031-03-04T10:00+08:00"),
    )
    run.tick("2025-11-21T10:00+08:00")
    state = run.matcher.state
    assert state.settlement_delays == [("ICBC", 23 * 3600.0)]
    assert state.calendar_fallbacks == 1


def test_a_void_after_the_overdue_resolves_it() -> None:
    run = started(sale("T1"))
    run.tick(DUE)
    run.feed(void("V1", "T1", occurred="2025-11-22T09:00+08:00"))
    [finding] = run.tick("2025-11-22T09:00:01+08:00")
    assert (finding.id, finding.state) == ("settlement.overdue:T1", "resolved")
    assert run.status("T1") == "cancelled"


def test_evicted_payments_leave_the_deadline_heap_bounded_and_never_fire_in_memory() -> None:
    run = Run().feed(merchant("M1"))
    for i in range(200):
        run.feed(sale(f"T{i}", "2025-11-20T10:00+08:00"))
        run.tick("2025-11-20T10:00+08:00")  # judged: no longer needed at the next tick
        run.matcher.state.changed.clear()  # as if saved
        run.matcher.evict(5)
        assert len(run.matcher.state.deadlines) <= 2 * len(run.matcher.state.payments) + 5
    kept = set(run.matcher.state.payments)
    # All 200 are due now; only the working set is the core's to decide (the store decides the
    # rest), however many stale entries of evicted payments the heap still holds.
    overdue = {f.txn_id for f in run.tick("2025-11-22T00:00+08:00")}
    assert overdue == kept and len(kept) == 5

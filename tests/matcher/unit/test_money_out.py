"""Money going out (SPEC §11): refunds counted against their sale (partial refunds fine, more
than the sale a finding), a cancelled payment paid anyway, and chargebacks, fee debits and
adjustments watched like the rest with signed amounts; merchants read both in zh-CN and en."""

from __future__ import annotations

from settlewatch.alerts.core.summaries import summary
from tests.matcher.unit.scenario import Run, merchant, paid, sale, settlement, void

SALE = "2025-11-20T10:00+08:00"
NEXT_TICK = "2025-11-20T10:10+08:00"


def refund(txn_id: str, of: str, amount: int, occurred: str = "2025-11-20T10:05+08:00") -> object:
    return sale(txn_id, occurred, type="refund", original_txn_id=of, amount_minor=amount)


def test_partial_refunds_are_fine_until_they_add_up_to_more_than_the_sale() -> None:
    run = Run().feed(
        merchant(), sale("S1", SALE), refund("R1", "S1", 5000), refund("R2", "S1", 7800)
    )
    assert run.tick(NEXT_TICK) == []  # 128.00 refunded of 128.00
    run.feed(refund("R3", "S1", 1, "2025-11-20T10:20+08:00"))
    (found,) = run.tick("2025-11-20T10:30+08:00")
    assert (found.id, found.state, found.txn_id) == ("refund.exceeds_sale:S1", "open", "S1")
    assert found.evidence["refunds"] == ["R1", "R2", "R3"]
    assert found.evidence["refunded_minor"] == 12801
    run.feed(refund("R4", "S1", 100, "2025-11-20T10:40+08:00"))
    assert run.tick("2025-11-20T10:50+08:00") == []  # once


def test_a_refund_before_its_sale_counts_the_same() -> None:
    early = Run().feed(merchant(), refund("R1", "S1", 20000), sale("S1", SALE))
    late = Run().feed(merchant(), sale("S1", SALE), refund("R1", "S1", 20000))
    assert (
        [f.id for f in early.tick(NEXT_TICK)]
        == [f.id for f in late.tick(NEXT_TICK)]
        == ["refund.exceeds_sale:S1"]
    )


def test_a_refund_of_a_refund_is_not_counted_as_a_refund_of_a_sale() -> None:
    run = Run().feed(merchant(), refund("R1", "S-gone", 100), refund("R2", "R1", 500))
    assert run.tick(NEXT_TICK) == []


def test_a_cancelled_payment_paid_anyway_is_reported_once_whichever_came_first() -> None:
    for events in (
        [sale("T1", SALE), void("V1", "T1"), paid("T1")],
        [sale("T1", SALE), paid("T1"), void("V1", "T1")],
    ):
        run = Run().feed(merchant(), *events)  # type: ignore[arg-type]
        found = [f for f in run.tick("2025-11-21T10:00+08:00") if f.type.endswith("after_void")]
        assert [(f.id, f.state) for f in found] == [("settlement.paid_after_void:T1:S-T1", "open")]
        assert found[0].evidence["cancelled_by"] == "V1"
        assert found[0].evidence["settled_net_minor"] == 12723
        run.feed(paid("T1", occurred="2025-11-21T09:30+08:00"))
        assert run.tick("2025-11-21T11:00+08:00") == []


def test_chargebacks_fee_debits_and_adjustments_are_watched_with_signed_amounts() -> None:
    run = Run().feed(
        merchant(),
        sale("S1", SALE),
        sale("CB1", SALE, type="chargeback", original_txn_id="S1", amount_minor=12800),
        sale("FD1", SALE, type="fee_debit", amount_minor=3000, card_fingerprint="-"),
        sale("AD1", SALE, type="adjustment", direction="credit", amount_minor=500),
        sale("AD2", SALE, type="adjustment", direction="debit", amount_minor=200),
    )
    state = run.matcher.state
    signed = {t: (p.kind, p.amount_minor, p.expected_net_minor) for t, p in state.payments.items()}
    assert signed == {
        "S1": ("sale", 12800, 12723),
        "CB1": ("chargeback", -12800, -12800),
        "FD1": ("fee_debit", -3000, -3000),
        "AD1": ("adjustment", 500, 500),
        "AD2": ("adjustment", -200, -200),
    }
    assert state.payments["CB1"].evidence["original_txn_id"] == "S1"
    run.feed(settlement("D1", [("FD1", -3000, 0, -3000)]))
    run.tick(NEXT_TICK)
    assert run.status("FD1") == "settled"
    overdue = {
        f.txn_id for f in run.tick("2025-11-22T00:00+08:00") if f.type == "settlement.overdue"
    }
    assert overdue == {"S1", "CB1", "AD1", "AD2"}  # the debit taken is done; the rest is owed


def test_the_new_findings_read_naturally_in_both_languages() -> None:
    run = Run().feed(merchant(), sale("S1", SALE), refund("R1", "S1", 20000), void("V1", "S1"))
    run.feed(paid("S1"))
    found = {f.type: f for f in run.tick("2025-11-21T10:00+08:00")}
    exceeds, after_void = found["refund.exceeds_sale"], found["settlement.paid_after_void"]

    def said(finding: object, locale: str) -> str:
        return summary(
            finding.type,  # type: ignore[attr-defined]
            finding.evidence,  # type: ignore[attr-defined]
            locale=locale,  # type: ignore[arg-type]
            timezone="Asia/Shanghai",
            probable_cause=None,
        )

    assert "的退款合计 ¥200.00，超过了原交易金额（退款 R1）" in said(exceeds, "zh-CN")
    assert "add up to CN¥200.00, more than the sale (refunds R1)" in said(exceeds, "en")
    assert "已撤销，银行仍然付款了（结算单 S-S1，¥127.23）" in said(after_void, "zh-CN")
    assert "was cancelled, yet the bank paid it (settlement S-S1, CN¥127.23)" in said(
        after_void, "en"
    )


def test_a_one_off_finding_is_saved_with_its_payment_so_a_reload_does_not_repeat_it() -> None:
    """Found by the store-equivalence property: a void after the payout changes no status, so
    the payment was not saved with its paid_after_void flag and, read back, reported again."""
    run = Run().feed(merchant(), sale("T1", SALE), paid("T1"))
    run.tick("2025-11-21T10:00+08:00")
    run.matcher.state.changed.clear()  # saved
    run.feed(void("V1", "T1", "2025-11-21T10:30+08:00"))
    run.matcher.state.changed.clear()  # saved with the void
    [found] = run.tick("2025-11-21T11:00+08:00")
    assert found.type == "settlement.paid_after_void"
    assert "T1" in run.matcher.state.changed  # to be saved with the flag set

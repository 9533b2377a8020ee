"""Terminals (SPEC §12): 跳码 — one terminal's transactions in two regions within the window, or
away from where it is registered — and the books of a migration that the bank kept under the
replaced terminal (账务不一致)."""

from __future__ import annotations

from datetime import timedelta

from settlewatch.matcher.core.matcher import Matcher
from settlewatch.matcher.core.model import PartitionState
from tests.matcher.unit.scenario import Run, merchant, paid, sale, settlement, terminal


def started(*events: object) -> Run:
    return Run().feed(merchant(), *events)  # type: ignore[arg-type]


def jumps(run: Run) -> list[object]:
    return [f for f in run.findings if f.type == "terminal.region_jump"]


def test_beijing_then_shanghai_three_minutes_apart_is_one_finding_with_both_transactions() -> None:
    run = started(
        sale("B1", "2025-11-20T10:00+08:00", region="北京"),
        sale("S1", "2025-11-20T10:03+08:00", region="上海", card_fingerprint="other"),
        sale("S2", "2025-11-20T10:04+08:00", region="上海", card_fingerprint="third"),
    )
    run.tick("2025-11-20T10:05+08:00")
    [jump] = jumps(run)
    assert jump.merchant_id == "M1" and jump.evidence["terminal_id"] == "POS-1"
    assert jump.evidence["txn_ids"] == ["B1", "S1"]
    assert [t["region"] for t in jump.evidence["transactions"]] == ["北京", "上海"]
    # More of the same on the same day, in any later tick: nothing new.
    run.feed(sale("B2", "2025-11-20T10:06+08:00", region="北京", card_fingerprint="4"))
    run.tick("2025-11-20T10:07+08:00")
    assert len(jumps(run)) == 1


def test_either_order_and_either_tick_give_the_same_finding() -> None:
    beijing = sale("B1", "2025-11-20T10:00+08:00", region="北京")
    shanghai = sale("S1", "2025-11-20T10:03+08:00", region="上海", card_fingerprint="x")
    together = started(shanghai, beijing)
    together.tick("2025-11-20T10:05+08:00")
    apart = started(beijing)
    apart.tick("2025-11-20T10:01+08:00")
    apart.feed(shanghai)
    apart.tick("2025-11-20T10:05+08:00")
    assert [(f.id, f.evidence) for f in jumps(together)] == [
        (f.id, f.evidence) for f in jumps(apart)
    ]


def test_two_merchants_terminals_of_the_same_id_are_two_terminals() -> None:
    """The index was keyed by terminal id alone: M2's sale in Shanghai was M1's terminal jumping,
    and M2's transaction was in M1's evidence (issue 28 item 6)."""
    run = started(
        merchant("M2"),
        terminal("POS-1", region="北京"),  # M1's
        sale("B1", "2025-11-20T10:00+08:00", region="北京"),
        sale("S1", "2025-11-20T10:03+08:00", region="上海", merchant_id="M2", card_fingerprint="x"),
    )
    run.tick("2025-11-20T10:05+08:00")
    assert jumps(run) == []
    run.feed(
        sale("S2", "2025-11-20T10:06+08:00", region="广州", merchant_id="M2", card_fingerprint="y")
    )
    run.tick("2025-11-20T10:07+08:00")
    [jump] = jumps(run)
    assert jump.merchant_id == "M2" and jump.evidence["txn_ids"] == ["S1", "S2"]


def test_two_hours_apart_is_no_jump() -> None:
    run = started(
        sale("B1", "2025-11-20T10:00+08:00", region="北京"),
        sale("S1", "2025-11-20T12:00+08:00", region="上海", card_fingerprint="x"),
    )
    run.tick("2025-11-20T12:01+08:00")
    assert jumps(run) == []


def test_the_window_is_a_setting() -> None:
    state = PartitionState(region_jump_window=timedelta(hours=3))
    run = Run(matcher=Matcher(state)).feed(
        merchant(),
        sale("B1", "2025-11-20T10:00+08:00", region="北京"),
        sale("S1", "2025-11-20T12:00+08:00", region="上海", card_fingerprint="x"),
    )
    run.tick("2025-11-20T12:01+08:00")
    assert len(jumps(run)) == 1


def test_a_terminal_registered_in_beijing_seen_in_shanghai_is_one_finding() -> None:
    run = started(
        terminal("POS-1", region="北京"),
        sale("S1", "2025-11-20T10:00+08:00", region="上海"),
        sale("S2", "2025-11-20T11:00+08:00", region="上海", card_fingerprint="x"),
        sale("B1", "2025-11-20T11:30+08:00", region="北京", card_fingerprint="y"),
    )
    run.tick("2025-11-20T12:00+08:00")
    [jump] = jumps(run)
    assert jump.evidence["registered_region"] == "北京"
    at_home = started(terminal("POS-1", region="北京"), sale("B1", region="北京"))
    at_home.tick("2025-11-20T12:00+08:00")
    assert jumps(at_home) == []


MIGRATED = (terminal("POS-A"), terminal("POS-B", replaces="POS-A"))


def test_sales_of_the_new_terminal_booked_under_the_replaced_one_are_one_books_mismatch() -> None:
    lines = [(t, 12800, 77, 12723) for t in ("B1", "B2")]
    run = started(
        *MIGRATED,
        sale("A1", "2025-11-20T09:00+08:00", terminal_id="POS-A"),
        sale("B1", "2025-11-20T14:00+08:00", terminal_id="POS-B", card_fingerprint="1"),
        sale("B2", "2025-11-20T15:00+08:00", terminal_id="POS-B", card_fingerprint="2"),
        paid("A1"),
        settlement("S-B", lines)
        | {"items": [i | {"terminal_id": "POS-A"} for i in settlement("S-B", lines)["items"]]},  # type: ignore[operator]
    )
    run.tick("2025-11-21T10:00+08:00")
    [mismatch] = [f for f in run.findings if f.type == "terminal.books_mismatch"]
    assert mismatch.id == "terminal.books_mismatch:M1:2025-11-20:POS-A:POS-B"
    assert mismatch.evidence["books"] == "/v1/merchants/M1/books?date=2025-11-20"
    assert {run.status(t) for t in ("A1", "B1", "B2")} == {"settled"}


def test_a_clean_migration_is_no_finding() -> None:
    run = started(
        *MIGRATED,
        sale("A1", "2025-11-20T09:00+08:00", terminal_id="POS-A"),
        sale("B1", "2025-11-20T14:00+08:00", terminal_id="POS-B", card_fingerprint="1"),
        paid("A1"),
        settlement("S-B", [("B1", 12800, 77, 12723)])
        | {
            "items": [
                {
                    "txn_id": "B1",
                    "gross_minor": 12800,
                    "fee_minor": 77,
                    "net_minor": 12723,
                    "terminal_id": "POS-B",
                }
            ]
        },  # type: ignore[operator]
    )
    run.tick("2025-11-21T10:00+08:00")
    assert [f.type for f in run.findings] == []

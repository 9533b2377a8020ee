"""Grouping merchant alerts into deliveries: per merchant and type, within the group wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from settlewatch.alerts.core.grouping import Pending, ready_groups

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
WAIT = timedelta(seconds=10)


def alert(n: int, seconds: float, merchant: str = "M1", kind: str = "settlement.overdue"):
    return Pending(f"a{n:04d}", merchant, kind, T0 + timedelta(seconds=seconds))


def ids(groups: list[list[Pending]]) -> list[list[str]]:
    return [[p.alert_id for p in group] for group in groups]


def test_a_group_waits_for_its_window_then_takes_everything_created_within_it() -> None:
    pending = [alert(1, 0), alert(2, 4), alert(3, 9.9), alert(4, 10.5)]
    assert ready_groups(pending, T0 + timedelta(seconds=9), WAIT) == []
    assert ids(ready_groups(pending, T0 + timedelta(seconds=10), WAIT)) == [
        ["a0001", "a0002", "a0003"]  # a0004 came after the window closed: next group
    ]
    assert ids(ready_groups(pending, T0 + timedelta(seconds=21), WAIT)) == [
        ["a0001", "a0002", "a0003"],
        ["a0004"],
    ]


def test_merchants_and_types_never_share_a_delivery() -> None:
    pending = [
        alert(1, 0),
        alert(2, 1, merchant="M2"),
        alert(3, 2, kind="settlement.failed"),
        alert(4, 3),
    ]
    groups = ready_groups(pending, T0 + timedelta(minutes=1), WAIT)
    assert sorted(ids(groups)) == [["a0001", "a0004"], ["a0002"], ["a0003"]]


def test_a_window_holding_more_than_500_alerts_goes_out_in_several_deliveries_at_once() -> None:
    pending = [alert(n, n / 1000) for n in range(1201)]  # all within 1.2 s
    groups = ready_groups(pending, T0 + timedelta(seconds=10), WAIT)
    assert [len(g) for g in groups] == [500, 500, 201]
    assert sorted(p.alert_id for g in groups for p in g) == sorted(p.alert_id for p in pending)

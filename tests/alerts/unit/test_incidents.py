"""bank.incident thresholds: max(20, 5 %) to open, below half of it to resolve (SPEC §6)."""

from __future__ import annotations

import pytest

from settlewatch.alerts.core.incidents import BankDue, judge


@pytest.mark.parametrize(
    ("fell_due", "overdue", "opens"),
    [
        (25, 19, False),  # 76 % overdue, but fewer than 20
        (25, 20, True),
        (1000, 49, False),  # 20 ≤ 49 < 5 % of 1000
        (1000, 50, True),
        (10_000, 499, False),
        (10_000, 500, True),
        (0, 0, False),
    ],
)
def test_an_incident_opens_at_max_20_or_5_percent(fell_due: int, overdue: int, opens: bool) -> None:
    decision = judge(BankDue("ICBC", fell_due, overdue), incident_open=False)
    assert decision == ("open" if opens else None)


@pytest.mark.parametrize(
    ("fell_due", "overdue", "resolves"),
    [
        (100, 20, False),
        (100, 10, False),  # half of 20 is 10: not below it
        (100, 9, True),
        (1000, 25, False),  # half of 50
        (1000, 24, True),
        (0, 0, True),  # nothing fell due in the last hour any more
    ],
)
def test_an_open_incident_resolves_below_half_the_threshold(
    fell_due: int, overdue: int, resolves: bool
) -> None:
    decision = judge(BankDue("ICBC", fell_due, overdue), incident_open=True)
    assert decision == ("resolve" if resolves else None)

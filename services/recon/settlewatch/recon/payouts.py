"""Expected payouts against statement credits (SPEC §9): pure.

A report says batch B pays X to the merchant with value date D; the statements of the
settlement accounts say what was credited. A credit is the payout's when it has the payout's
currency and amount and a value date within one business day of D — and, where the credit's
text names the payout's reference, that credit before any other, however late. A credit that
names the reference but carries another amount is the payout arriving short (or over).

The account a credit is booked on may allow a tolerance (SPEC §16, issue 31): an amount within
so many minor units of the payout's and a value date within so many business days of D still
pair, the payout ``arrived`` with the difference recorded (a bank's rounding, a fee taken
on the way); beyond it, a credit named by the reference is ``short``. An
expected payout without its credit by D + the grace is missing; a credit nobody expected, by
its own value date + the grace, is unexpected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from settlewatch.common.calendar import BusinessCalendar, next_business_day

__all__ = ["Credit", "Expected", "Pair", "Tolerance", "due", "pair", "within"]


@dataclass(frozen=True)
class Expected:
    payout_id: str
    currency: str
    amount_minor: int
    value_date: date | None
    reference: str | None  # the batch's payout reference, as a bank statement may repeat it


@dataclass(frozen=True)
class Tolerance:
    """How far a credit may be from its payout and still be it: by default the same amount,
    within one business day."""

    amount_minor: int = 0
    days: int = 1


@dataclass(frozen=True)
class Credit:
    credit_id: str  # <file_id>:<seq>, or <file_id>:<seq>:<detail> for a collective entry's line
    currency: str
    amount_minor: int
    value_date: date | None
    text: str  # references and remittance information, where a reference may appear
    tolerance: Tolerance = Tolerance()  # its account's


@dataclass(frozen=True)
class Pair:
    expected: Expected
    credit: Credit
    status: Literal["arrived", "short"]  # short: named by reference, another amount beyond it

    @property
    def difference_minor(self) -> int:
        """Credited − expected: 0, within the tolerance when arrived, beyond it when short."""
        return self.credit.amount_minor - self.expected.amount_minor


def _business_days_before(calendar: BusinessCalendar, day: date, count: int) -> date:
    for _ in range(count):
        day -= timedelta(days=1)
        while not calendar.is_business_day(day):
            day -= timedelta(days=1)
    return day


def within(
    calendar: BusinessCalendar, expected: date | None, credited: date | None, days: int = 1
) -> bool:
    """Whether a credit's value date is within `days` business days of the expected one."""
    if expected is None or credited is None:
        return False  # a payout without a date can only be paired by its reference
    high = expected
    for _ in range(days):
        high = next_business_day(calendar, high)
    return _business_days_before(calendar, expected, days) <= credited <= high


def due(calendar: BusinessCalendar, value_date: date, grace_days: int) -> date:
    """The first day on which a payout (or a credit) still unpaired is reported: the value date
    plus `grace_days` business days, the day after."""
    day = value_date
    for _ in range(grace_days):
        day = next_business_day(calendar, day)
    return day + timedelta(days=1)


def _by_reference(calendar: BusinessCalendar, payout: Expected, credit: Credit) -> bool:
    """The credit names the payout's reference, and is not from before its value date: a late
    payout named by its reference is still that payout (it resolves a missing one)."""
    return (
        credit.currency == payout.currency
        and payout.reference is not None
        and payout.reference in credit.text
        and (
            payout.value_date is None
            or credit.value_date is None
            or credit.value_date
            >= _business_days_before(calendar, payout.value_date, credit.tolerance.days)
        )
    )


def _by_amount(calendar: BusinessCalendar, payout: Expected, credit: Credit) -> bool:
    return (
        credit.currency == payout.currency
        and abs(credit.amount_minor - payout.amount_minor) <= credit.tolerance.amount_minor
        and within(calendar, payout.value_date, credit.value_date, credit.tolerance.days)
    )


def pair(
    expected: Sequence[Expected], credits: Iterable[Credit], calendar: BusinessCalendar
) -> list[Pair]:
    """One-to-one pairs, deterministic (by id order): first by reference — the strongest
    evidence, and the only way a credit of another amount is this payout's (short) — then by
    currency, amount and date."""
    free = sorted(credits, key=lambda c: c.credit_id)
    waiting = sorted(expected, key=lambda e: e.payout_id)
    pairs: list[Pair] = []
    for rule in (_by_reference, _by_amount):
        for payout in list(waiting):
            credit = next((c for c in free if rule(calendar, payout, c)), None)
            if credit is not None:
                near = (
                    abs(credit.amount_minor - payout.amount_minor) <= credit.tolerance.amount_minor
                )
                pairs.append(Pair(payout, credit, "arrived" if near else "short"))
                free.remove(credit)
                waiting.remove(payout)
    return pairs

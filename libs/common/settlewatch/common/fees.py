"""Merchant fee schedules (SPEC §11): versions from a date, rules by card type and channel.

A payment's fee is decided by the version in force on its local date (the merchant's time
zone) and the first rule of it that fits the payment: round-half-up(gross × rate_bps / 10000) +
fixed_minor, capped at cap_minor — integers only. The older profile fields ``mdr_bps`` and
``fee_cap_minor`` are a schedule of one version, in force since ever, with one rule for any card
and channel.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from settlewatch.common.events import MerchantProfile
from settlewatch.common.money import fee_minor

__all__ = ["Applied", "CardType", "Channel", "FeeRule", "FeeSchedule", "FeeVersion"]

CardType = Literal["debit", "credit", "any"]
Channel = Literal["instant", "scheduled", "any"]


@dataclass(frozen=True)
class FeeRule:
    card_type: CardType = "any"
    channel: Channel = "any"
    rate_bps: int = 0
    fixed_minor: int = 0
    cap_minor: int | None = None

    def fits(self, card_type: str | None, channel: str) -> bool:
        return self.card_type in ("any", card_type) and self.channel in ("any", channel)

    def fee(self, gross_minor: int) -> int:
        amount = fee_minor(gross_minor, self.rate_bps) + self.fixed_minor
        return min(amount, self.cap_minor) if self.cap_minor is not None else amount


@dataclass(frozen=True)
class FeeVersion:
    effective_from: date
    rules: tuple[FeeRule, ...]


@dataclass(frozen=True)
class Applied:
    """The fee of a payment and what decided it (shown in an amount_mismatch's evidence)."""

    fee_minor: int
    version: date  # the effective_from of the version in force
    rule: int  # 1-based position of the rule in that version
    terms: FeeRule

    def describe(self) -> dict[str, object]:
        return {
            "version_effective_from": self.version.isoformat()
            if self.version != date.min
            else None,
            "rule": self.rule,
            "card_type": self.terms.card_type,
            "channel": self.terms.channel,
            "rate_bps": self.terms.rate_bps,
            "fixed_minor": self.terms.fixed_minor,
            "cap_minor": self.terms.cap_minor,
        }


@dataclass(frozen=True)
class FeeSchedule:
    versions: tuple[FeeVersion, ...]  # by effective_from, strictly increasing
    # Per version, the first fitting rule (and its number) for each card type and channel a
    # payment can have: deciding a fee is then a bisect and a lookup (bench/fees.py).
    _starts: tuple[date, ...] = field(init=False, repr=False, compare=False)
    _first: tuple[dict[tuple[str | None, str], tuple[int, FeeRule]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(v.effective_from for v in self.versions))
        first = []
        for version in self.versions:
            fitting = {}
            for card_type in ("debit", "credit", None):
                for channel in ("instant", "scheduled"):
                    numbered = enumerate(version.rules, start=1)
                    found = next(((n, r) for n, r in numbered if r.fits(card_type, channel)), None)
                    if found is not None:
                        fitting[(card_type, channel)] = found
            first.append(fitting)
        object.__setattr__(self, "_first", tuple(first))

    @classmethod
    def one_rule(cls, rate_bps: int, cap_minor: int | None) -> FeeSchedule:
        """``mdr_bps``/``fee_cap_minor``: one rule for everything, in force since ever."""
        return cls((FeeVersion(date.min, (FeeRule(rate_bps=rate_bps, cap_minor=cap_minor),)),))

    @classmethod
    def of(cls, profile: MerchantProfile) -> FeeSchedule:
        if profile.fee_schedule is None:
            return cls.one_rule(profile.mdr_bps, profile.fee_cap_minor)
        return cls(
            tuple(
                FeeVersion(v.effective_from, tuple(FeeRule(**r.model_dump()) for r in v.rules))
                for v in profile.fee_schedule
            )
        )

    def rule(self, version: date, number: int) -> FeeRule | None:
        """Rule `number` (1-based) of the version from `version`, if the schedule still has it."""
        for candidate in self.versions:
            if candidate.effective_from == version and 0 < number <= len(candidate.rules):
                return candidate.rules[number - 1]
        return None

    def applied(
        self, gross_minor: int, on: date, card_type: str | None, channel: str
    ) -> Applied | None:
        """The fee of a payment of `gross_minor` made on local date `on`; None when no version
        is in force yet or no rule of it fits (the fee is then unknown, not zero)."""
        index = bisect.bisect_right(self._starts, on) - 1
        if index < 0:
            return None
        found = self._first[index].get((card_type, channel))
        if found is None:
            return None
        number, rule = found
        return Applied(rule.fee(gross_minor), self._starts[index], number, rule)

"""Merchant fee schedules (SPEC §11): versions from a date, rules by card type and channel.

A payment's fee is decided by the version in force on its local date (the merchant's time
zone) and the first rule of it that fits the payment: round-half-up(gross × rate_bps / 10000) +
fixed_minor, capped at cap_minor — integers only. The older profile fields ``mdr_bps`` and
``fee_cap_minor`` are a schedule of one version, in force since ever, with one rule for any card
and channel.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date
from typing import Literal

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

    @classmethod
    def one_rule(cls, rate_bps: int, cap_minor: int | None) -> FeeSchedule:
        """``mdr_bps``/``fee_cap_minor``: one rule for everything, in force since ever."""
        return cls((FeeVersion(date.min, (FeeRule(rate_bps=rate_bps, cap_minor=cap_minor),)),))

    def applied(
        self, gross_minor: int, on: date, card_type: str | None, channel: str
    ) -> Applied | None:
        """The fee of a payment of `gross_minor` made on local date `on`; None when no version
        is in force yet or no rule of it fits (the fee is then unknown, not zero)."""
        index = bisect.bisect_right([v.effective_from for v in self.versions], on) - 1
        if index < 0:
            return None
        version = self.versions[index]
        for number, rule in enumerate(version.rules, start=1):
            if rule.fits(card_type, channel):
                return Applied(rule.fee(gross_minor), version.effective_from, number, rule)
        return None

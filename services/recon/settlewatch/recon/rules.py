"""Which payment a report line is (SPEC §9), decided from candidates: pure.

A line that carries the acquirer's ``txn_id`` is that payment and nothing else. Otherwise the
rules are tried in order, and the first that finds exactly one payment makes the match; when
none does but one found several, the line is ambiguous — never a guess. Every match records the
rule that made it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["RULES", "Candidate", "Decision", "Rule", "applicable", "decide", "line_keys"]


@dataclass(frozen=True)
class Rule:
    name: str
    fields: tuple[str, ...]  # what the line must carry; the payment must equal it on each


RULES = (
    Rule("txn_id", ("txn_id",)),
    Rule("merchant_terminal_rrn", ("merchant_id", "terminal_id", "rrn")),
    Rule("rrn_auth_amount", ("rrn", "auth_code", "amount_minor")),
    Rule("terminal_stan_date_amount", ("terminal_id", "stan", "business_date", "amount_minor")),
)


@dataclass(frozen=True)
class Candidate:
    txn_id: str
    merchant_id: str
    bank_code: str


@dataclass(frozen=True)
class Decision:
    status: Literal["matched", "ambiguous", "unmatched"]
    rule: str | None = None
    candidates: tuple[Candidate, ...] = ()


def line_keys(body: Mapping[str, Any]) -> dict[str, Any]:
    """The values the rules compare, from a stored report line: its ids, the payment's amount
    (the gross, else the net, without sign) and the business date it was made on."""
    amount = body.get("gross_minor")
    if amount is None:
        amount = body.get("net_minor")
    occurred = body.get("occurred_at")
    return {
        "txn_id": body.get("txn_id"),
        "merchant_id": body.get("merchant_id"),
        "terminal_id": body.get("terminal_id"),
        "rrn": body.get("rrn"),
        "auth_code": body.get("auth_code"),
        "stan": body.get("stan"),
        "amount_minor": abs(amount) if amount is not None else None,
        "business_date": occurred[:10] if isinstance(occurred, str) else None,
    }


def applicable(keys: Mapping[str, Any]) -> list[Rule]:
    """The rules a line can be matched by: only txn_id when it has one."""
    if keys.get("txn_id"):
        return [RULES[0]]
    return [rule for rule in RULES[1:] if all(keys.get(f) is not None for f in rule.fields)]


def decide(found: Sequence[tuple[Rule, Sequence[Candidate]]]) -> Decision:
    """`found`: each applicable rule, in order, with the payments it finds."""
    several: tuple[Rule, Sequence[Candidate]] | None = None
    for rule, candidates in found:
        if len(candidates) == 1:
            return Decision("matched", rule.name, tuple(candidates))
        if len(candidates) > 1 and several is None:
            several = (rule, candidates)
    if several is not None:
        return Decision("ambiguous", several[0].name, tuple(several[1]))
    return Decision("unmatched")

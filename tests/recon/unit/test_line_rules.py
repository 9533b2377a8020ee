"""The SPEC §9 matching rules, pure: txn_id alone when the line has one; else the first rule
that finds exactly one payment; several and no single → ambiguous, never a guess."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from settlewatch.recon.rules import RULES, Candidate, applicable, decide, line_keys

ONE = Candidate("T1", "M1", "ICBC")
TWO = Candidate("T2", "M1", "ICBC")


def test_a_line_with_a_txn_id_is_matched_by_it_alone() -> None:
    keys = line_keys({"txn_id": "T1", "merchant_id": "M1", "terminal_id": "P", "rrn": "R"})
    assert [rule.name for rule in applicable(keys)] == ["txn_id"]


def test_rules_apply_only_when_the_line_carries_their_fields() -> None:
    keys = line_keys(
        {
            "rrn": "R",
            "auth_code": "A",
            "gross_minor": -12800,
            "net_minor": -12800,
            "occurred_at": "2026-11-25T10:00:00+08:00",
            "terminal_id": "P",
            "stan": "000123",
        }
    )
    assert keys["amount_minor"] == 12800 and keys["business_date"] == "2026-11-25"
    assert [rule.name for rule in applicable(keys)] == [
        "rrn_auth_amount",
        "terminal_stan_date_amount",
    ]
    assert applicable(line_keys({"net_minor": 5})) == []  # a fee line names no payment


def test_the_first_rule_with_exactly_one_payment_wins() -> None:
    _, by_terminal, by_auth, by_stan = RULES
    decision = decide([(by_terminal, [ONE, TWO]), (by_auth, [TWO]), (by_stan, [ONE])])
    assert (decision.status, decision.rule, decision.candidates) == (
        "matched",
        by_auth.name,
        (TWO,),
    )


def test_several_payments_and_no_single_one_is_ambiguous() -> None:
    _, by_terminal, by_auth, _ = RULES
    decision = decide([(by_terminal, []), (by_auth, [ONE, TWO])])
    assert (decision.status, decision.rule) == ("ambiguous", by_auth.name)
    assert decide([(by_terminal, []), (by_auth, [])]).status == "unmatched"


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=4))
def test_a_match_is_never_made_from_several_candidates(sizes: list[int]) -> None:
    pool = [Candidate(f"T{i}", "M1", "ICBC") for i in range(3)]
    found = [(rule, pool[:n]) for rule, n in zip(RULES, sizes, strict=False)]
    decision = decide(found)
    if decision.status == "matched":
        assert len(decision.candidates) == 1
        first_single = next(rule for rule, c in found if len(c) == 1)
        assert decision.rule == first_single.name
    else:
        assert all(len(c) != 1 for _, c in found)

"""The deadline fast path builds a finding's evidence with one jsonb merge, the payment's
evidence first: that equals the core's (txn_id, then the evidence, then the facts) only while no
evidence field is one of the facts."""

from __future__ import annotations

import re

from settlewatch.matcher import timer_sql
from settlewatch.matcher.core.matcher import EVIDENCE_FIELDS


def test_no_evidence_field_is_one_of_the_facts_the_database_adds() -> None:
    facts = set(re.findall(r"'(\w+)',", timer_sql._EVIDENCE))
    assert {"txn_id", "occurred_at", "due_at", "settlement_id"} <= facts  # read as meant
    assert facts.isdisjoint(EVIDENCE_FIELDS)

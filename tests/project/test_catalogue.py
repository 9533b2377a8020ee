"""common.catalogue names every value the APIs return that a person reads — payments' statuses
and kinds, payouts' and alerts' statuses, the desk's exception kinds, statuses and actions — in
both languages; a value added to an API without its words fails here."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

from settlewatch.alerts.core.lifecycle import AlertStatus
from settlewatch.common import catalogue
from settlewatch.matcher.core.model import PaymentKind, Status
from settlewatch.recon import desk_items
from settlewatch.recon.desk_items import Age, Kind
from settlewatch.recon.desk_items import Status as DeskStatus

RECON = Path(desk_items.__file__).parent


def desk_actions() -> set[str]:
    """Every `action` recon writes into an exception's history."""
    found = set()
    for path in RECON.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "action":
                if isinstance(node.value, ast.Constant):
                    found.add(node.value.value)
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "history_entry"
                and isinstance(node.args[2], ast.Constant)
            ):
                found.add(node.args[2].value)
            elif isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == [
                "action"
            ]:  # action = "unassign" if … else "assign"
                found |= {
                    c.value
                    for c in ast.walk(node.value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                }
    return found


@pytest.mark.parametrize(
    ("names", "values"),
    [
        (catalogue.PAYMENT_STATUSES, set(get_args(Status))),
        (catalogue.PAYMENT_KINDS, set(get_args(PaymentKind))),
        (catalogue.ALERT_STATUSES, set(get_args(AlertStatus))),
        (catalogue.DESK_KINDS, set(get_args(Kind))),
        (catalogue.DESK_STATUSES, set(get_args(DeskStatus))),
        (catalogue.DESK_ACTIONS, desk_actions()),
    ],
)
def test_every_value_has_its_words_in_both_languages(
    names: catalogue.Names, values: set[str]
) -> None:
    assert set(names) == values
    assert all(set(words) == {"zh-CN", "en"} and all(words.values()) for words in names.values())


def test_the_desks_age_filter_takes_the_buckets_its_summary_counts() -> None:
    assert get_args(Age) == catalogue.DESK_AGES

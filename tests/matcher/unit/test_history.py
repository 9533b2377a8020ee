"""A payment's history is data — (at, code, args) — worded in each language from the catalogue,
so rewording an entry changes no stored row and the zh-CN timeline is not a translation of
English sentences."""

from __future__ import annotations

import re
from typing import get_args

from settlewatch.common.catalogue import (
    PAYMENT_KINDS,
    SETTLEMENT_OUTCOMES,
    HistoryCode,
    history_text,
)
from settlewatch.common.events import MaintenanceWindow
from settlewatch.matcher.core.matcher import EXPIRY
from settlewatch.matcher.core.model import HistoryEntry
from tests.matcher.unit.scenario import Run, at, merchant, paid, sale, void
from tests.matcher.unit.test_calendars import cn_2027

CJK = re.compile(r"[\u4e00-\u9fff]")


def every_kind_of_entry() -> list[HistoryEntry]:
    """One run in which each kind of entry happens at least once."""
    window = MaintenanceWindow(
        id="mw1",
        bank_code="ICBC",
        starts_at=at("2027-02-15T22:00+08:00"),
        ends_at=at("2027-02-16T06:00+08:00"),
        reason="upgrade",
    )
    run = Run().feed(
        merchant("M1"),
        sale("T-late", "2027-02-04T10:00+08:00"),
        sale("T-void", "2027-02-04T10:00+08:00"),
        void("V1", "T-void", "2027-02-04T10:05+08:00"),
        sale("T-paid", "2027-02-04T10:00+08:00"),
        paid("T-paid", occurred="2027-02-05T09:00+08:00"),
    )
    run.tick("2027-02-06T00:00+08:00")  # estimated: Friday the 5th a working day; T-late overdue
    run.feed(cn_2027(), window)  # the deadline moves after the Spring Festival, then the window
    run.tick("2027-02-16T08:00+08:00")  # overdue again
    run.tick(at("2027-02-16T08:00+08:00") + EXPIRY)
    return [entry for p in run.matcher.state.payments.values() for entry in p.history]


def test_every_history_code_is_written_by_the_core_and_worded_in_both_languages() -> None:
    entries = every_kind_of_entry()
    assert {code for _, code, _ in entries} == set(get_args(HistoryCode))
    for _, code, args in entries:
        zh, en = history_text(code, args, "zh-CN"), history_text(code, args, "en")
        assert CJK.search(zh) and not CJK.search(en), (code, zh, en)
        for name, value in args.items():
            # Each fact of the entry is shown: a kind or an outcome by its name in the language.
            names = {"kind": PAYMENT_KINDS, "status": SETTLEMENT_OUTCOMES}.get(name)
            for text, locale in ((zh, "zh-CN"), (en, "en")):
                shown = names[str(value)][locale] if names else str(value)  # type: ignore[index]
                assert shown in text, (code, name, text)


def test_a_code_of_a_newer_matcher_is_shown_as_it_is() -> None:
    assert history_text("refunded_in_full", {}, "zh-CN") == "refunded_in_full"

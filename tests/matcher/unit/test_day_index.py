"""The index of where stored payments lie answers as a dict of txn_id → business date would,
but for ids that share a hash, which get every day that hash is on (never none)."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from settlewatch.matcher import day_index
from settlewatch.matcher.day_index import DayIndex

DAYS = [date(2025, 11, d) for d in range(1, 6)]
ids = st.text(alphabet="ABCT0123456789-", min_size=1, max_size=6)


@given(
    stored=st.dictionaries(ids, st.sampled_from(DAYS), max_size=60),
    added=st.dictionaries(ids, st.sampled_from(DAYS), max_size=60),
    asked=st.lists(ids, max_size=20),
    compact_at=st.integers(1, 10),
    forgotten=st.sets(st.sampled_from(DAYS), max_size=2),
)
def test_it_answers_as_a_dict_across_loads_adds_compactions_and_drops(
    stored: dict[str, date],
    added: dict[str, date],
    asked: list[str],
    compact_at: int,
    forgotten: set[date],
) -> None:
    truth = dict(stored)
    index = DayIndex()
    for day in set(stored.values()):
        index.add_day(day, [t for t, d in stored.items() if d == day])
    original = day_index.COMPACT_AT
    day_index.COMPACT_AT = compact_at  # merges happen between the adds
    try:
        for txn_id, day in added.items():
            day = truth.setdefault(txn_id, day)  # a payment's business date never changes
            index.add(txn_id, day)
    finally:
        day_index.COMPACT_AT = original
    index.forget(forgotten)
    truth = {t: d for t, d in truth.items() if d not in forgotten}

    for txn_id in [*asked, *stored, *added]:
        expected = [truth[txn_id]] if txn_id in truth else []
        assert index.days_of(txn_id) == expected
    assert index.days() == set(truth.values())


def test_ids_that_share_a_hash_get_every_day_of_that_hash() -> None:
    index = DayIndex(hash_id=lambda _: 7)
    index.add("A", DAYS[0])
    index.add("B", DAYS[1])
    index.compact()
    # The store reads each candidate day by txn_id: a day that does not hold it finds nothing.
    assert sorted(index.days_of("A")) == [DAYS[0], DAYS[1]]
    assert sorted(index.days_of("C")) == [DAYS[0], DAYS[1]]
    index.add("C", DAYS[2])
    assert index.days_of("C") == [DAYS[2]]  # still held apart: added, not yet merged
    index.compact()
    assert sorted(index.days_of("C")) == DAYS[:3]

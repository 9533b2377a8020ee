"""The fixed-width index of recent transactions (matcher.core.recent) answers as a plain list
of entries would, through growth, shrinking, wrap-around and the deletions of its table."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from settlewatch.matcher.core.recent import RecentIndex
from tests.support.examples import examples

Entry = tuple[int, int, int, int]  # at, group, tag, ref

# Few groups, some negative (Python's hashes are), so that runs collide and wrap in small tables;
# times mostly increasing with some late ones, as a partition's log brings them.
groups = st.integers(-3, 12)
adds = st.tuples(st.integers(0, 1000), groups, st.integers(0, 3), st.integers(0, 10**6))
steps = st.lists(
    st.one_of(
        st.tuples(st.just("add"), adds),
        st.tuples(st.just("forget"), st.integers(0, 1000)),
    ),
    max_size=400,
)


@settings(max_examples=examples(300), deadline=None)
@given(steps, st.sampled_from([1, 2, 4, 1024]))
def test_it_answers_as_a_list_of_entries_would(steps_: list[tuple[str, object]], size: int) -> None:
    index = RecentIndex(min_slots=size if size > 1 else 2)
    model: list[Entry] = []
    floor: int | None = None
    clock = 0
    for kind, arg in steps_:
        if kind == "add":
            at, group, tag, ref = arg  # type: ignore[misc]
            at = clock + at - 100  # mostly after the last, sometimes before
            clock = max(clock, at)
            index.add(at, group, tag, ref)
            model.append((at, group, tag, ref))
        else:
            floor = max(floor or 0, clock - int(arg))  # type: ignore[call-overload]
            index.forget_before(floor)
            while model and model[0][0] < floor:
                model.pop(0)
        for group in range(-3, 13):
            expected = sorted(
                (at, tag, ref)
                for at, g, tag, ref in model
                if g == group and (floor is None or at >= floor)
            )
            assert sorted(index.of(group)) == expected
    assert index.entries() == model


def test_an_hour_of_sales_is_forgotten_and_the_table_shrinks_back() -> None:
    index = RecentIndex()
    for n in range(50_000):
        index.add(n, hash(("M1", f"card{n % 7000}")), 0, n)
    grown = len(index._slots)
    assert len(index) == 50_000 and grown >= 100_000
    index.forget_before(49_990)
    assert len(index) == 10 and len(index._slots) < grown // 8
    assert [at for at, _, _ in index.of(hash(("M1", "card993")))] == [49_993]
    assert len(index.entries()) == 10

"""The last hour's transactions by group, in fixed-width arrays: a few machine words each.

The duplicate index (sales by card and amount, an hour) and the region index (a terminal's
transactions, the jump window) keep every recent transaction of a partition: at 1 000 sales a
second an hour is 3.6 M of them. As Python tuples with their txn_id strings they took ≈ 300 B
each and, being long-lived among the batches' short-lived objects, pinned the allocator's
memory (docs/benchmarks.md). Here an entry is four 64-bit numbers — when it occurred (µs), its
group (a hash: the sale's card and amount, the terminal), a tag (a hash: the region) and a
reference (a hash of its txn_id) — in arrays in the order added, plus an open-addressing table
from group to entry: ≈ 50 B an entry, no object per entry.

A hash only proposes: the core resolves a reference to a payment (loaded from the store by its
time, `times_of`) and checks it, so a collision costs a read, never a wrong finding.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

__all__ = ["RecentIndex"]

_MIN_SLOTS = 1 << 10


class RecentIndex:
    """Entries (at, group, tag, ref), found by group, forgotten oldest-added first."""

    def __init__(self, min_slots: int = _MIN_SLOTS) -> None:
        self._min_slots = min_slots  # a power of two (small in tests, to wrap and resize)
        self._at = array("q")
        self._group = array("q")
        self._tag = array("q")
        self._ref = array("q")
        self._base = 0  # the position of the arrays' first element
        self._front = 0  # entries before it (positions) are forgotten
        self._floor: int | None = None  # entries that occurred before it are not answered
        # Open addressing, linear probing: position + 1 of an entry, 0 for an empty slot.
        self._slots = array("q", bytes(8 * min_slots))
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def __eq__(self, other: object) -> bool:
        """The same entries answered (a state compared with another, in tests and checks)."""
        if not isinstance(other, RecentIndex):
            return NotImplemented
        return sorted(self._answered()) == sorted(other._answered())

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"RecentIndex({self._live} entries, floor={self._floor})"

    def entries(self) -> list[tuple[int, int, int, int]]:
        """(at, group, tag, ref) of every entry kept, in the order added."""
        start, end = self._front - self._base, len(self._at)
        return list(
            zip(
                self._at[start:end],
                self._group[start:end],
                self._tag[start:end],
                self._ref[start:end],
                strict=True,
            )
        )

    def add(self, at: int, group: int, tag: int, ref: int) -> None:
        """Index an entry (its time in µs and three 64-bit hashes)."""
        if 2 * (self._live + 1) > len(self._slots):
            self._resize(2 * len(self._slots))
        position = self._base + len(self._at)
        self._at.append(at)
        self._group.append(group)
        self._tag.append(tag)
        self._ref.append(ref)
        self._place(position)
        self._live += 1

    def of(self, group: int) -> Iterator[tuple[int, int, int]]:
        """(at, tag, ref) of the entries of `group` that occurred at or after the floor."""
        slots, mask, base = self._slots, len(self._slots) - 1, self._base
        floor = self._floor
        i = group & mask
        while (held := slots[i]) != 0:
            k = held - 1 - base
            if self._group[k] == group and (floor is None or self._at[k] >= floor):
                yield self._at[k], self._tag[k], self._ref[k]
            i = (i + 1) & mask

    def forget_before(self, floor: int) -> None:
        """Entries that occurred before `floor` (µs) are no longer answered, and those added
        before the first one at or after it are dropped (entries come roughly in time order:
        one added late stays until those before it go, unanswered)."""
        self._floor = floor if self._floor is None else max(self._floor, floor)
        at, base = self._at, self._base
        end = base + len(at)
        while self._front < end and at[self._front - base] < self._floor:
            self._remove(self._front)
            self._front += 1
            self._live -= 1
        if self._front - base > max(len(at) // 2, 4096):  # reclaim the forgotten head
            drop = self._front - base
            for column in (self._at, self._group, self._tag, self._ref):
                del column[:drop]
            self._base = self._front
        if len(self._slots) > self._min_slots and 8 * self._live < len(self._slots):
            self._resize(max(self._min_slots, 1 << (4 * self._live).bit_length()))

    def _answered(self) -> list[tuple[int, int, int, int]]:
        floor = self._floor
        return [e for e in self.entries() if floor is None or e[0] >= floor]

    def _place(self, position: int) -> None:
        slots, mask = self._slots, len(self._slots) - 1
        i = self._group[position - self._base] & mask
        while slots[i] != 0:
            i = (i + 1) & mask
        slots[i] = position + 1

    def _remove(self, position: int) -> None:
        """Take `position` out of the table, shifting the rest of its run back (no tombstones:
        a lookup stops at the first empty slot)."""
        slots, mask, base, groups = self._slots, len(self._slots) - 1, self._base, self._group
        i = groups[position - base] & mask
        while slots[i] != position + 1:
            i = (i + 1) & mask
        j = i
        while True:
            j = (j + 1) & mask
            if (held := slots[j]) == 0:
                break
            home = groups[held - 1 - base] & mask
            # The entry at j may move to the hole at i unless its home lies cyclically in (i, j].
            if (j > i and (home <= i or home > j)) or (j < i and i >= home > j):
                slots[i] = held
                i = j
        slots[i] = 0

    def _resize(self, size: int) -> None:
        self._slots = array("q", bytes(8 * size))
        for position in range(self._front, self._base + len(self._at)):
            self._place(position)

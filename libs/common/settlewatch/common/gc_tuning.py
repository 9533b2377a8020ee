"""The garbage collector tuned for processes that handle records in bulk."""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_gc"]

# CPython collects cycles after every 700 net new container objects (gen 0), and walks the older
# generations every 10 of those. A service decodes and builds thousands of dicts, tuples and
# payments a batch while it holds a large long-lived state, so the collector ran every few dozen
# records and rewalked survivors it could never free: larger generations made the matcher 30 %
# and ingest 20 % faster (docs/benchmarks.md). Garbage without cycles is freed by reference
# counting regardless; only cycles wait, for about 100 000 new objects.
GC_THRESHOLDS = (100_000, 20, 100)


def tune_gc() -> None:
    """Collect cycles in larger, rarer passes (for a process that handles records in bulk)."""
    gc.set_threshold(*GC_THRESHOLDS)

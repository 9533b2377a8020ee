"""How many examples a property test tries: its full budget under `make test-deep`
(HYPOTHESIS_PROFILE=deep), a fifth of it (at least 20) in `make test` — the same properties,
run every time, with the long search kept for a deliberate run."""

from __future__ import annotations

import os

from hypothesis import settings

DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"

# Properties without a budget of their own: Hypothesis' default of 100 when deep, else 40.
settings.register_profile("ci", max_examples=40)
settings.register_profile("deep", max_examples=100)
settings.load_profile("deep" if DEEP else "ci")


def examples(full: int) -> int:
    return full if DEEP else max(full // 5, 20)

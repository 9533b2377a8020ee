"""The console's own metrics (its requests are timed by route like every service's)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["API_SECONDS", "SIGN_INS"]

# A page's time is mostly its API calls: this shows which service a slow page waits on.
API_SECONDS = Histogram(
    "settlewatch_console_api_seconds",
    "Time of one call from the console to a service's API, answer read.",
    ["service"],
)
SIGN_INS = Counter(
    "settlewatch_console_sign_ins_total",
    "Sign-in attempts, by outcome (ok; refused: the token was not accepted; limited: too many "
    "refused from the address, ingest not asked).",
    ["outcome"],
)

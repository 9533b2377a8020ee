"""Metrics every service exposes, whatever it does."""

from __future__ import annotations

from prometheus_client import Gauge, Info

__all__ = ["BUILD_INFO", "DEPENDENCY_UP"]

BUILD_INFO = Info("settlewatch_build", "Version and service name of this process.")
DEPENDENCY_UP = Gauge(
    "settlewatch_dependency_up",
    "1 when the last readiness probe reached the dependency (database, broker), else 0.",
    ["dependency"],
)

"""Metrics every service exposes, whatever it does."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

__all__ = [
    "BUILD_INFO",
    "DEAD_LETTERS",
    "DEPENDENCY_UP",
    "HTTP_REQUEST_SECONDS",
    "LOOP_FAILING",
    "LOOP_RESTARTS",
]

BUILD_INFO = Info("settlewatch_build", "Version and service name of this process.")
DEPENDENCY_UP = Gauge(
    "settlewatch_dependency_up",
    "1 when the last readiness probe reached the dependency (database, broker), else 0.",
    ["dependency"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "settlewatch_http_request_duration_seconds",
    "HTTP request latency by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DEAD_LETTERS = Counter(
    "settlewatch_dead_letters_total",
    "Records sent to the dead-letter topic, by the topic they were read from.",
    ["topic"],
)
LOOP_RESTARTS = Counter(
    "settlewatch_loop_restarts_total",
    "Times a service loop (consumer, deliverer, on-call…) failed and was started again.",
    ["loop"],
)
LOOP_FAILING = Gauge(
    "settlewatch_loop_failing",
    "1 while a service loop is failing (from its failure until a new run has lasted 10 s).",
    ["loop"],
)

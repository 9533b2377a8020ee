"""The ingest service's metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCH_SIZE",
    "EVENTS",
    "FILES",
    "FILE_LINES",
    "FILE_RECORDS",
    "IMPORT_SECONDS",
    "OPEN_EXCEPTIONS",
    "PAYOUTS",
    "PAYOUT_AMOUNT",
    "PUBLISH_SECONDS",
    "PULSES",
]

EVENTS = Counter(
    "settlewatch_ingest_events_total",
    "Events received, by kind (transaction, settlement, merchant, terminal, maintenance, calendar) "
    "and "
    "outcome (accepted, rejected = bad input, unavailable = broker did not acknowledge).",
    ["kind", "outcome"],
)
BATCH_SIZE = Histogram(
    "settlewatch_ingest_batch_size",
    "Items per accepted POST /v1/transactions or /v1/settlements request.",
    ["kind"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
PUBLISH_SECONDS = Histogram(
    "settlewatch_ingest_publish_duration_seconds",
    "Time from handing a request's records to the producer until all were acknowledged.",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PULSES = Counter(
    "settlewatch_ingest_pulses_total",
    "Clock pulse rounds (one record per partition of each topic), by outcome (written, failed).",
    ["outcome"],
)
FILES = Counter(
    "settlewatch_ingest_files_total",
    "Settlement files received, by format (camt.053, mt940, adyen, csv:<mapping>…) and outcome "
    "(imported, rejected = unreadable as its format, duplicate = the same bytes came before).",
    ["format", "outcome"],
)
FILE_RECORDS = Counter(
    "settlewatch_ingest_file_records_total",
    "Records imported from settlement files, by kind (statement, entry, line, payout) and "
    "whether they carry a problem (flagged) or not (clean).",
    ["kind", "state"],
)
FILE_LINES = Counter(
    "settlewatch_ingest_file_lines_total",
    "Report lines decided: matched to a payment (by rule: txn_id, merchant_terminal_rrn, "
    "rrn_auth_amount, terminal_stan_date_amount; manual: by hand), ambiguous (several fit) or "
    "invalid (matched, but its settlement would break the API's rules).",
    ["outcome", "rule"],
)
IMPORT_SECONDS = Histogram(
    "settlewatch_ingest_file_import_duration_seconds",
    "Time to receive, parse and store one settlement file.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
PAYOUTS = Gauge(
    "settlewatch_ingest_payouts",
    "Payouts by status (expected, arrived, short, missing, unexpected), as of the reconciler's "
    "last round (every minute and after each import).",
    ["status"],
)
PAYOUT_AMOUNT = Gauge(
    "settlewatch_ingest_payout_amount_minor",
    "Sum of the expected amounts of payouts (a credit's own for unexpected ones), in minor "
    "units, by status and currency.",
    ["status", "currency"],
)
OPEN_EXCEPTIONS = Gauge(
    "settlewatch_ingest_open_exceptions",
    "Exceptions of the settlement files waiting for a person, by kind (unmatched_line, "
    "ambiguous_line, invalid_line, flagged, missing_payout, short_payout, unexpected_credit, "
    "unexpected_debit).",
    ["kind"],
)

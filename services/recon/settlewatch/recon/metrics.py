"""The recon service's metrics (until issue 29 they were ingest's, named settlewatch_ingest_*)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "DESK_OPEN",
    "FILES",
    "FILE_LINES",
    "FILE_RECORDS",
    "IMPORT_SECONDS",
    "PAYOUTS",
    "PAYOUT_AMOUNT",
]

FILES = Counter(
    "settlewatch_recon_files_total",
    "Settlement files received, by format (camt.053, mt940, adyen, csv:<mapping>…) and outcome "
    "(imported, rejected = unreadable as its format, duplicate = the same bytes came before).",
    ["format", "outcome"],
)
FILE_RECORDS = Counter(
    "settlewatch_recon_file_records_total",
    "Records imported from settlement files, by kind (statement, entry, line, payout) and "
    "whether they carry a problem (flagged) or not (clean).",
    ["kind", "state"],
)
FILE_LINES = Counter(
    "settlewatch_recon_file_lines_total",
    "Report lines decided: matched to a payment (by rule: txn_id, merchant_terminal_rrn, "
    "rrn_auth_amount, terminal_stan_date_amount; manual: by hand), ambiguous (several fit) or "
    "invalid (matched, but its settlement would break the API's rules).",
    ["outcome", "rule"],
)
IMPORT_SECONDS = Histogram(
    "settlewatch_recon_file_import_duration_seconds",
    "Time to receive, parse and store one settlement file.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
PAYOUTS = Gauge(
    "settlewatch_recon_payouts",
    "Payouts by status (expected, arrived, short, missing, unexpected), as of the reconciler's "
    "last round (every minute and after each import).",
    ["status"],
)
PAYOUT_AMOUNT = Gauge(
    "settlewatch_recon_payout_amount_minor",
    "Sum of the expected amounts of payouts (a credit's own for unexpected ones), in minor "
    "units, by status and currency.",
    ["status", "currency"],
)
DESK_OPEN = Gauge(
    "settlewatch_recon_desk_open",
    "Desk items (/v1/exceptions) waiting for a person, by kind (unmatched_line, ambiguous_line, "
    "invalid_line, flagged, missing_payout, short_payout, unexpected_credit, unexpected_debit) "
    "and age (whole days open: 0-1, 2-7, 8-30, >30).",
    ["kind", "age"],
)

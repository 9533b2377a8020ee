"""Each service's read views for the others (issue 29): a service reads another's data only
through views named ``<owner>_read_*``, as the matcher's of 0006, 0007 and 0011, so that an
owner can change its tables without breaking a reader it cannot see. What each reader needs:

- ``ingest_read_merchants(merchant_id, profile)``: the profile as the API took it (the webhook
  secret is not in it: 0015) — the evidence's account and locale, the alerts' recipients.
- ``ingest_read_windows(bank_code, starts_at, ends_at)``: bank maintenance windows (alerts).
- ``ingest_read_webhook_secrets(id, merchant_id, sealed, retires_at)``: sealed, for signing.
- ``ingest_read_calendars(calendar, year, version, holidays, workdays, source)``: each loaded
  year's version in force (recon's business days).
- ``recon_read_report_lines(txn_id, file_id, seq, format, received_at, match_rule, body)``: the
  report lines matched to a payment (the evidence).
- ``recon_read_payouts(txn_id, payout_id, amount_minor, currency, count, value_date, status,
  reference)``: the payouts of a payment's report lines (the evidence).
- ``alerts_read_alerts(alert_id, type, status, created_at, merchant_id, txn_id, txn_ids)``.

PostgreSQL inlines a simple view into the query that reads it, so the owners' indexes still
serve the readers' conditions.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

VIEWS = {
    "ingest_read_merchants": "SELECT merchant_id, profile FROM merchants",
    "ingest_read_windows": "SELECT bank_code, starts_at, ends_at FROM maintenance_windows",
    "ingest_read_webhook_secrets": (
        "SELECT id, merchant_id, sealed, retires_at FROM webhook_secrets"
    ),
    "ingest_read_calendars": (
        "SELECT DISTINCT ON (calendar, year) calendar, year, version, holidays, workdays, source "
        "FROM calendar_years ORDER BY calendar, year, version DESC"
    ),
    "recon_read_report_lines": (
        "SELECT r.txn_id, r.file_id, r.seq, f.format, f.received_at, r.match_rule, r.body "
        "FROM settlement_file_records r JOIN settlement_files f USING (file_id) "
        "WHERE r.kind = 'line' AND r.txn_id IS NOT NULL"
    ),
    # A line's payout: the payout record of its file and batch (payout_id is "<file>:<seq>").
    "recon_read_payouts": (
        "SELECT DISTINCT l.txn_id, p.payout_id, p.amount_minor, p.currency, p.count, "
        "p.value_date, p.status, p.reference "
        "FROM settlement_file_records l "
        "JOIN settlement_file_records r ON r.file_id = l.file_id AND r.kind = 'payout' "
        "AND r.body ->> 'batch_id' = l.body ->> 'batch_id' "
        "JOIN payouts p ON p.payout_id = r.file_id || ':' || r.seq "
        "WHERE l.kind = 'line' AND l.txn_id IS NOT NULL"
    ),
    "alerts_read_alerts": (
        "SELECT alert_id, type, status, created_at, merchant_id, txn_id, txn_ids FROM alerts"
    ),
}


def upgrade() -> None:
    for name, query in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {query}")


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW {name}")

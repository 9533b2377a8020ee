"""Access and safety (SPEC §14): tokens issued through the API (hashes only), the append-only
audit log, and webhook secrets moved out of the merchant profile into a table of their own,
encrypted under `SETTLEWATCH_SECRET_KEY` (needed here only when secrets exist).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from settlewatch.common.errors import ConfigError
from settlewatch.common.sealing import Sealer, parse_keys

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_APPEND_ONLY = (
    """CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP;
    END $$""",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)


def _sealer() -> Sealer:
    keys = parse_keys(os.environ.get("SETTLEWATCH_SECRET_KEY", ""))
    if not keys:
        raise ConfigError(
            "merchants have webhook secrets: set SETTLEWATCH_SECRET_KEY to encrypt them"
        )
    return Sealer(keys)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.Text, primary_key=True),
        sa.Column("digest", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("details", JSONB),
    )
    op.create_index("audit_log_by_time", "audit_log", ["at"])
    op.create_index("audit_log_by_actor", "audit_log", ["actor", "at"])
    for statement in _APPEND_ONLY:
        op.execute(statement)
    op.create_table(
        "webhook_secrets",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("merchant_id", sa.Text, nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("sealed", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("retires_at", sa.DateTime(timezone=True)),
    )
    op.create_index("webhook_secrets_by_merchant", "webhook_secrets", ["merchant_id"])
    op.create_index("webhook_secrets_by_key", "webhook_secrets", ["key_id"])
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT merchant_id, profile->'webhook'->>'secret' AS secret FROM merchants "
            "WHERE profile->'webhook' ? 'secret'"
        )
    ).all()
    if rows:
        sealer = _sealer()
        bind.execute(
            sa.text(
                "INSERT INTO webhook_secrets (merchant_id, key_id, sealed) VALUES (:m, :k, :s)"
            ),
            [{"m": r.merchant_id, "k": sealer.key_id, "s": sealer.seal(r.secret)} for r in rows],
        )
        op.execute(
            "UPDATE merchants SET profile = profile #- '{webhook,secret}' "
            "WHERE profile->'webhook' ? 'secret'"
        )


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT DISTINCT ON (merchant_id) merchant_id, sealed FROM webhook_secrets "
            "ORDER BY merchant_id, retires_at DESC NULLS FIRST, id DESC"
        )
    ).all()
    if rows:
        sealer = _sealer()
        bind.execute(
            sa.text(
                "UPDATE merchants SET profile = jsonb_set(profile, '{webhook,secret}', "
                "to_jsonb(CAST(:s AS text))) WHERE merchant_id = :m AND profile ? 'webhook'"
            ),
            [{"m": r.merchant_id, "s": sealer.open(r.sealed)} for r in rows],
        )
    op.drop_table("webhook_secrets")
    op.drop_table("audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_table("api_tokens")

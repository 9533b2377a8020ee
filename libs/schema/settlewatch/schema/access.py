"""Who may use the API and what they did with it (SPEC §14): tokens issued through the API (their
hash only), the append-only audit log, and the merchants' webhook secrets (encrypted)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    LargeBinary,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from settlewatch.schema.reference import metadata

__all__ = ["api_tokens", "audit_log", "webhook_secrets"]

# A token is never stored: its SHA-256 (`digest`) finds it, a prefix of that names it.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", Text, primary_key=True),
    Column("digest", LargeBinary, nullable=False, unique=True),
    Column("scope", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    info={"owner": "common"},
)

# Every change made through the API; a trigger refuses UPDATE, DELETE and TRUNCATE.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("service", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("details", JSONB),
    info={"owner": "common"},
)

# A merchant's webhook secrets, encrypted (Fernet, `key_id` names the key): the current one has
# no `retires_at`; a replaced one signs too until then (SPEC §14).
webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("merchant_id", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("sealed", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("retires_at", DateTime(timezone=True)),
    info={"owner": "ingest"},
)

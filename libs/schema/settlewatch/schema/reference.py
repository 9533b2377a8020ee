"""The tables several services read: merchant profiles and maintenance windows (written by
ingest), and the one ``metadata`` every table of the schema is registered in."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["maintenance_windows", "merchants", "metadata"]

metadata = MetaData()

# The merchant profile as accepted by PUT /v1/merchants (webhook secret included, for signing).
merchants = Table(
    "merchants",
    metadata,
    Column("merchant_id", Text, primary_key=True),
    Column("settlement_bank", Text, nullable=False),
    Column("profile", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("id", Text, primary_key=True),
    Column("bank_code", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

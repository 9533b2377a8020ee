"""The tables several services read: merchant profiles, terminals, maintenance windows and loaded
calendar years (written by ingest), and the one ``metadata`` every table of the schema is
registered in."""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, Integer, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

__all__ = ["calendar_years", "maintenance_windows", "merchants", "metadata", "terminals"]

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
    info={"owner": "ingest"},
)

# POS terminals as registered (SPEC §12): a migrated terminal names the one it `replaces`.
terminals = Table(
    "terminals",
    metadata,
    Column("terminal_id", Text, primary_key=True),
    Column("merchant_id", Text, nullable=False),
    Column("region", Text),
    Column("replaces", Text),
    Column("status", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    info={"owner": "ingest"},
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
    info={"owner": "ingest"},
)

# Every load of a calendar year (SPEC §10), kept: the highest version is in force; who loaded
# what, and when, stays readable.
calendar_years = Table(
    "calendar_years",
    metadata,
    Column("calendar", Text, primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("holidays", ARRAY(Date), nullable=False),
    Column("workdays", ARRAY(Date), nullable=False),
    Column("source", Text, nullable=False),
    Column("published_at", DateTime(timezone=True)),
    Column("loaded_by", Text, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    info={"owner": "ingest"},
)

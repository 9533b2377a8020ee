"""Settlement files in PostgreSQL: one import is one transaction, so a file is stored whole with
every record parsed from it, or — when its format cannot be read — stored as rejected with the
located reasons and nothing else. The same bytes again are the same file (SHA-256) once it is
imported; after a rejection they are a new attempt, linked to the one before. A record
that contradicts itself is stored flagged, never matched: it is a ``flagged`` exception, and
raises ``settlement.batch_total_mismatch`` or ``settlement.duplicate_line`` when that is what
is wrong with it (both, when both are)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from settlewatch.common import audit
from settlewatch.common.db import driver_connection, transaction
from settlewatch.recon.desk_items import open_items
from settlewatch.recon.parsing import Tally, WorkerLost, parsed
from settlewatch.recon.spool import Spooled
from settlewatch.schema.settlement_files import settlement_files
from settlewatch.settlementfiles import xsd
from settlewatch.settlementfiles.csvmap import FileMapping
from settlewatch.settlementfiles.formats import detect
from settlewatch.settlementfiles.model import FileRejected, Issue

__all__ = ["FileRow", "SettlementFiles", "file_id_of"]

# A batch travels as one JSON array (one orjson call, parsed by PostgreSQL) — serialising the
# records one by one took longer than parsing them.
_INSERT_RECORDS = """
INSERT INTO settlement_file_records (file_id, seq, kind, body, problems, match_status)
SELECT $1, $2 + r.n - 1, k.kind, r.body, r.body -> 'problems', k.match_status
FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS r(body, n)
JOIN unnest($4::text[], $5::text[]) WITH ORDINALITY AS k(kind, match_status, i) ON k.i = r.n
"""


_ATTEMPTS = 3  # imports of one file tried when the parsing process ends under them
_WARNINGS = 100  # kept on a file; more are counted


def file_id_of(sha256: str, attempt: int = 1) -> str:
    """The first attempt at a file's bytes is ``file_<sha256 prefix>``; a later one (after a
    rejection) adds its number."""
    return f"file_{sha256[:24]}" + (f"_{attempt}" if attempt > 1 else "")


def _next_attempt(sha256: str, attempts: list[FileRow]) -> tuple[str, str | None]:
    """The id of the next attempt at these bytes, and the attempt before it."""
    return file_id_of(sha256, len(attempts) + 1), attempts[-1].file_id if attempts else None


@dataclass(frozen=True)
class FileRow:
    file_id: str
    sha256: str
    format: str
    status: str
    size_bytes: int
    summary: dict[str, Any]
    errors: list[dict[str, Any]]
    received_at: str
    previous_file_id: str | None

    def json(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "status": self.status,
            "format": self.format,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "received_at": self.received_at,
            **self.summary,
            "errors": self.errors,
            "previous_file_id": self.previous_file_id,
        }


class SettlementFiles:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Callable[[], datetime],
        on_findings: Callable[[], None],
        *,
        parse_timeout: float,
        validate_xsd: bool = False,
    ) -> None:
        self._engine = engine
        self._parse_timeout = parse_timeout
        self._validate_xsd = validate_xsd
        self._clock = clock
        self._on_findings = on_findings  # wakes the findings outbox

    async def get(self, file_id: str) -> FileRow | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(settlement_files).where(settlement_files.c.file_id == file_id)
                )
            ).one_or_none()
        return None if row is None else _file_row(row)

    async def newest(
        self, status: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[FileRow]:
        """Files newest first, from after `after` (received_at, file_id)."""
        table = settlement_files.c
        query = select(settlement_files).order_by(table.received_at.desc(), table.file_id.desc())
        if status is not None:
            query = query.where(table.status == status)
        if after is not None:
            query = query.where(tuple_(table.received_at, table.file_id) < after)
        async with self._engine.connect() as conn:
            rows = await conn.execute(query.limit(limit))
        return [_file_row(row) for row in rows]

    async def _attempts(self, sha256: str) -> list[FileRow]:
        """Every attempt at these bytes, first first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(settlement_files)
                .where(settlement_files.c.sha256 == sha256)
                .order_by(settlement_files.c.received_at, settlement_files.c.file_id)
            )
        return [_file_row(row) for row in rows]

    async def import_file(
        self, spooled: Spooled, fmt: str, mapping: FileMapping | None
    ) -> tuple[FileRow, bool]:
        """The file's row and whether this call imported or rejected it (False: the same bytes
        were imported before). A file that cannot be read is stored as rejected, with nothing
        of it; the same bytes may then be sent again (with another format or mapping)."""
        for tried in range(1, _ATTEMPTS + 1):
            try:
                return await self._import(spooled, fmt, mapping)
            except WorkerLost:
                if tried == _ATTEMPTS:
                    lost = Issue(("file",), "the parsing process ended while reading this file")
                    attempts = await self._attempts(spooled.sha256)
                    file_id, previous = _next_attempt(spooled.sha256, attempts)
                    return await self._reject(spooled, fmt, FileRejected([lost]), file_id, previous)
        raise AssertionError("unreachable")

    async def _import(
        self, spooled: Spooled, fmt: str, mapping: FileMapping | None
    ) -> tuple[FileRow, bool]:
        attempts = await self._attempts(spooled.sha256)
        if imported := [row for row in attempts if row.status == "imported"]:
            return imported[0], False
        file_id, previous = _next_attempt(spooled.sha256, attempts)
        tally = Tally()  # stays empty unless this call imports the file
        claimed = True
        try:
            if fmt == "auto":
                fmt = await asyncio.to_thread(detect, spooled.file)
            warnings: list[Issue] = []
            if self._validate_xsd and fmt.startswith("camt."):
                warnings = await asyncio.to_thread(xsd.check, spooled.file)
            async with transaction(self._engine) as conn:
                claimed = await self._claim(conn, file_id, previous, spooled, fmt, "imported", [])
                if not claimed:  # the same bytes were imported concurrently, and committed
                    await conn.rollback()
                else:
                    tally = await self._store(conn, file_id, spooled, fmt, mapping, warnings)
                    kept = [w.json() for w in warnings[:_WARNINGS]]
                    if len(warnings) > _WARNINGS:
                        more = len(warnings) - _WARNINGS
                        kept.append({"loc": ["file"], "msg": f"and {more} more warnings"})
                    await conn.execute(
                        update(settlement_files)
                        .where(settlement_files.c.file_id == file_id)
                        .values(summary=tally.json() | {"warnings": kept})
                    )
            tally.count()
            self._on_findings()
        except FileRejected as rejected:
            return await self._reject(spooled, fmt, rejected, file_id, previous)
        if not claimed:
            return await self._import(spooled, fmt, mapping)
        row = await self.get(file_id)
        assert row is not None
        return row, True

    async def _reject(
        self,
        spooled: Spooled,
        fmt: str,
        rejected: FileRejected,
        file_id: str,
        previous: str | None,
    ) -> tuple[FileRow, bool]:
        errors = [issue.json() for issue in rejected.issues]
        async with transaction(self._engine) as conn:
            await self._claim(conn, file_id, previous, spooled, fmt, "rejected", errors)
            audit.describe(status=422)  # recorded, and answered as unreadable
        row = await self.get(file_id)
        assert row is not None
        return row, True

    async def _claim(
        self,
        conn: AsyncConnection,
        file_id: str,
        previous: str | None,
        spooled: Spooled,
        fmt: str,
        status: str,
        errors: list[dict[str, Any]],
    ) -> bool:
        claim = (
            insert(settlement_files)
            .values(
                file_id=file_id,
                sha256=spooled.sha256,
                format=fmt,
                status=status,
                size_bytes=spooled.size,
                errors=errors,
                received_at=self._clock(),
                previous_file_id=previous,
            )
            .on_conflict_do_nothing()
            .returning(settlement_files.c.file_id)
        )
        return (await conn.execute(claim)).one_or_none() is not None

    async def _store(
        self,
        conn: AsyncConnection,
        file_id: str,
        spooled: Spooled,
        fmt: str,
        mapping: FileMapping | None,
        warnings: list[Issue],
    ) -> Tally:
        """Every record, in set-based batches, parsed in the parsing process meanwhile; the
        parser's warnings are added to `warnings`."""
        driver = await driver_connection(conn)
        tally = Tally()
        batches = parsed(spooled.path, fmt, mapping, file_id, timeout=self._parse_timeout)
        async with aclosing(batches):
            async for batch in batches:
                warnings += batch.warnings
                await open_items(driver, self._clock(), batch.flagged)
                await driver.execute(
                    _INSERT_RECORDS,
                    file_id,
                    batch.first_seq,
                    batch.records.decode(),
                    batch.kinds,
                    batch.match_statuses,
                )
                tally.merge(batch.tally)
        return tally


def _file_row(row: Any) -> FileRow:
    return FileRow(
        file_id=row.file_id,
        sha256=row.sha256,
        format=row.format,
        status=row.status,
        size_bytes=row.size_bytes,
        summary=row.summary,
        errors=row.errors,
        received_at=row.received_at.isoformat(),
        previous_file_id=row.previous_file_id,
    )

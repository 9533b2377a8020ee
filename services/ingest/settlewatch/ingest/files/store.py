"""Settlement files in PostgreSQL: one import is one transaction, so a file is stored whole with
every record parsed from it, or — when its format cannot be read — stored as rejected with the
located reasons and nothing else. The same bytes again are the same file (SHA-256). A record
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

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from settlewatch.common.db import driver_connection, invalidated_on_error
from settlewatch.ingest.files.exceptions import open_exceptions
from settlewatch.ingest.files.parsing import Tally, parsed
from settlewatch.ingest.files.spool import Spooled
from settlewatch.schema.settlement_files import settlement_files
from settlewatch.settlementfiles import xsd
from settlewatch.settlementfiles.csvmap import FileMapping
from settlewatch.settlementfiles.formats import detect
from settlewatch.settlementfiles.model import Issue, Rejected

__all__ = ["FileRow", "SettlementFiles", "file_id_of"]

# A batch travels as one JSON array (one orjson call, parsed by PostgreSQL) — serialising the
# records one by one took longer than parsing them.
_INSERT_RECORDS = """
INSERT INTO settlement_file_records (file_id, seq, kind, body, problems, match_status)
SELECT $1, $2 + r.n - 1, k.kind, r.body, r.body -> 'problems', k.match_status
FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS r(body, n)
JOIN unnest($4::text[], $5::text[]) WITH ORDINALITY AS k(kind, match_status, i) ON k.i = r.n
"""


def file_id_of(sha256: str) -> str:
    return f"file_{sha256[:24]}"


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
        }


class SettlementFiles:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Callable[[], datetime],
        on_findings: Callable[[], None],
        *,
        validate_xsd: bool = False,
    ) -> None:
        self._engine = engine
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

    async def import_file(
        self, spooled: Spooled, fmt: str, mapping: FileMapping | None
    ) -> tuple[FileRow, bool]:
        """The file's row and whether this call imported it (False: the same bytes came
        before). A file that cannot be read is stored as rejected, with nothing of it."""
        file_id = file_id_of(spooled.sha256)
        if (known := await self.get(file_id)) is not None:
            return known, False
        tally = Tally()  # stays empty unless this call imports the file
        claimed = True
        try:
            if fmt == "auto":
                fmt = await asyncio.to_thread(detect, spooled.file)
            warnings: list[Issue] = []
            if self._validate_xsd and fmt.startswith("camt."):
                warnings = await asyncio.to_thread(xsd.check, spooled.file)
            async with self._engine.connect() as conn, invalidated_on_error(conn), conn.begin():
                claimed = await self._claim(conn, file_id, spooled, fmt, "imported", [])
                if not claimed:  # the same bytes were imported concurrently, and committed
                    await conn.rollback()
                else:
                    tally = await self._store(conn, file_id, spooled, fmt, mapping)
                    await conn.execute(
                        update(settlement_files)
                        .where(settlement_files.c.file_id == file_id)
                        .values(summary=tally.json() | {"warnings": [w.json() for w in warnings]})
                    )
            tally.count()
            self._on_findings()
        except Rejected as rejected:
            errors = [issue.json() for issue in rejected.issues]
            async with self._engine.begin() as conn:
                await self._claim(conn, file_id, spooled, fmt, "rejected", errors)
        row = await self.get(file_id)
        assert row is not None
        return row, claimed

    async def _claim(
        self,
        conn: AsyncConnection,
        file_id: str,
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
    ) -> Tally:
        """Every record, in set-based batches, parsed in the parsing process meanwhile."""
        driver = await driver_connection(conn)
        tally = Tally()
        async with aclosing(parsed(spooled.path, fmt, mapping, file_id)) as batches:
            async for batch in batches:
                await open_exceptions(driver, self._clock(), batch.flagged)
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
    )

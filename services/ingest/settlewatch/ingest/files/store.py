"""Settlement files in PostgreSQL: one import is one transaction, so a file is stored whole with
every record parsed from it, or — when its format cannot be read — stored as rejected with the
located reasons and nothing else. The same bytes again are the same file (SHA-256). A record
that contradicts itself is stored flagged, never matched: it is a ``flagged`` exception, and
raises ``settlement.batch_total_mismatch`` or ``settlement.duplicate_line`` when that is what
is wrong with it (both, when both are)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from settlewatch.common.db import driver_connection, invalidated_on_error
from settlewatch.ingest.files.exceptions import Opened, open_exceptions
from settlewatch.ingest.files.rules import applicable, line_keys
from settlewatch.ingest.files.spool import Spooled
from settlewatch.ingest.metrics import FILE_RECORDS
from settlewatch.schema.settlement_files import settlement_files
from settlewatch.settlementfiles import xsd
from settlewatch.settlementfiles.csvmap import FileMapping
from settlewatch.settlementfiles.formats import detect, read
from settlewatch.settlementfiles.model import (
    Entry,
    Issue,
    Payout,
    Problem,
    Record,
    Rejected,
    ReportLine,
    Statement,
    Summary,
)

__all__ = ["BATCH", "FileRow", "SettlementFiles", "file_id_of"]

BATCH = 5000  # records per round trip: parsed in a thread, written with one statement
_KINDS: dict[type, str] = {
    Statement: "statement",
    Entry: "entry",
    ReportLine: "line",
    Payout: "payout",
    Summary: "summary",
}
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


@dataclass
class _Tally:
    """Counts and per-currency totals of what a file says."""

    counts: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    flagged: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    totals: defaultdict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: {"credits": 0, "debits": 0})
    )

    def add(self, record: Record, kind: str) -> None:
        self.counts[kind] += 1
        self.flagged[kind] += bool(record.problems)
        signed = None
        if isinstance(record, Entry):
            signed, currency = record.signed_minor, record.currency
        elif isinstance(record, ReportLine):
            signed, currency = record.net_minor, record.currency
        if signed is not None:
            side = "credits" if signed >= 0 else "debits"
            self.totals[currency][side] += abs(signed)

    def count(self) -> None:
        """Into the metrics, once the file is committed."""
        for kind, count in self.counts.items():
            FILE_RECORDS.labels(kind, "flagged").inc(self.flagged[kind])
            FILE_RECORDS.labels(kind, "clean").inc(count - self.flagged[kind])

    def json(self) -> dict[str, Any]:
        return {
            "counts": {kind: self.counts[kind] for kind in ("statement", "entry", "line", "payout")}
            | {"flagged": sum(self.flagged.values())},
            "totals": dict(self.totals),
        }


def _take(records: Iterator[Record], n: int) -> list[Record]:
    return list(islice(records, n))


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
        tally = _Tally()  # stays empty unless this call imports the file
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
                    tally = await self._store(conn, file_id, read(spooled.file, fmt, mapping))
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
        self, conn: AsyncConnection, file_id: str, records: Iterator[Record]
    ) -> _Tally:
        """Every record, in set-based batches; the parse runs in a thread meanwhile — always the
        same one: lxml's parser must not move between threads."""
        driver = await driver_connection(conn)
        tally = _Tally()
        seq = 0
        loop = asyncio.get_running_loop()
        parser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="settlement-file")
        try:
            # The next batch is parsed while this one is written: the parse holds the GIL, the
            # write mostly waits for PostgreSQL.
            parsing = loop.run_in_executor(parser, _take, records, BATCH)
            while batch := await parsing:
                parsing = loop.run_in_executor(parser, _take, records, BATCH)
                await open_exceptions(driver, self._clock(), _flagged(file_id, seq, batch))
                seq = await _insert(driver, file_id, seq, batch, tally)
        finally:
            parser.shutdown(wait=False, cancel_futures=True)
        return tally


async def _insert(driver: Any, file_id: str, seq: int, batch: list[Record], tally: _Tally) -> int:
    """One batch of records from `seq` on; the next seq."""
    kinds = [_KINDS[type(record)] for record in batch]
    for record, kind in zip(batch, kinds, strict=True):
        tally.add(record, kind)
    await driver.execute(
        _INSERT_RECORDS,
        file_id,
        seq,
        orjson.dumps(batch).decode(),
        kinds,
        [_match_status(record) for record in batch],
    )
    return seq + len(batch)


# The problems that are findings of their own (SPEC §9); the others only flag their record.
_FINDINGS = {
    "batch_total_mismatch": "settlement.batch_total_mismatch",
    "summary_mismatch": "settlement.batch_total_mismatch",
    "duplicate_line": "settlement.duplicate_line",
}


def _problems(record: Record) -> list[Problem]:
    """A record's problems and, for an entry, those of its details."""
    problems = list(record.problems)
    if isinstance(record, Entry):
        problems += [p for detail in record.details for p in detail.problems]
    return problems


def _flagged(file_id: str, first_seq: int, batch: list[Record]) -> list[Opened]:
    """The exceptions of a batch of records numbered from `first_seq`: one per flagged record."""
    opened = []
    for seq, record in enumerate(batch, first_seq):
        problems = _problems(record)
        if not problems:
            continue
        findings = tuple(dict.fromkeys(_FINDINGS[p.code] for p in problems if p.code in _FINDINGS))
        signed = next(
            (
                getattr(record, a)
                for a in ("signed_minor", "net_minor", "amount_minor")
                if hasattr(record, a)
            ),
            None,
        )
        currency = getattr(record, "currency", None)
        evidence = {
            "file_id": file_id,
            "seq": seq,
            "loc": list(record.loc),
            "record": _KINDS[type(record)],
            "problems": orjson.loads(orjson.dumps(problems)),
        }
        if signed is not None and currency:
            evidence |= {"currency": currency, "amount_minor": abs(signed)}
        opened.append(
            Opened(
                f"flagged:{file_id}:{seq}",
                "flagged",
                file_id,
                evidence,
                seq=seq,
                currency=currency,
                amount_minor=signed,
                findings=findings,
            )
        )
    return opened


_LINE_FIELDS = (
    "txn_id",
    "merchant_id",
    "terminal_id",
    "rrn",
    "auth_code",
    "stan",
    "gross_minor",
    "net_minor",
)


def _fields(line: ReportLine) -> dict[str, Any]:
    """A line's fields as they are stored (what `line_keys` reads)."""
    fields = {name: getattr(line, name) for name in _LINE_FIELDS}
    fields["occurred_at"] = line.occurred_at.isoformat() if line.occurred_at else None
    return fields


def _match_status(record: Record) -> str | None:
    """What waits to be reconciled: a report line that names a payment, an expected payout, a
    booked statement entry. A flagged record never is."""
    if isinstance(record, ReportLine):
        # A line naming its txn_id is matched by it (the first rule); only others need the
        # keys of the rest — the common case costs nothing.
        waits = bool(record.txn_id) or bool(applicable(line_keys(_fields(record))))
    elif isinstance(record, Entry):
        waits = record.status == "booked"
    else:
        waits = isinstance(record, Payout)
    if not waits:
        return None
    return "flagged" if record.problems else "unmatched"


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

"""An import's parse, in a process of its own, batch by batch.

A parser holds the GIL for its whole run: in the service's own process it shared one core with
the event loop writing its records, and every wake of the loop (PostgreSQL's answer, a socket
ready for more) waited for the parser's switch interval — an import ran at 0.4 of a bare parse.
In a process of its own the parse takes one core and PostgreSQL the other. What the service
writes comes back ready: the records as one JSON array, their kinds and match statuses, the
exceptions of the flagged ones; the counts and totals when the file ends.

One worker process serves every import of the service, started on the first (``spawn``: the
service's threads are not copied); an import's parser stays in it between its batches, under a
key of its own. A worker that died is replaced at the next import.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

import orjson

from settlewatch.ingest.files.exceptions import Opened
from settlewatch.ingest.files.rules import applicable, line_keys
from settlewatch.ingest.metrics import FILE_RECORDS
from settlewatch.settlementfiles.csvmap import FileMapping
from settlewatch.settlementfiles.formats import read
from settlewatch.settlementfiles.model import (
    Entry,
    Payout,
    Problem,
    Record,
    ReportLine,
    Statement,
    Summary,
)

__all__ = ["RecordBatch", "Tally", "parsed"]

BATCH = 5000  # records per round trip: parsed in the worker, written with one statement
_KINDS: dict[type, str] = {
    Statement: "statement",
    Entry: "entry",
    ReportLine: "line",
    Payout: "payout",
    Summary: "summary",
}


@dataclass
class Tally:
    """Counts and per-currency totals of what a file says."""

    counts: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    totals: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, record: Record, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.flagged[kind] = self.flagged.get(kind, 0) + bool(record.problems)
        signed = None
        if isinstance(record, Entry):
            signed, currency = record.signed_minor, record.currency
        elif isinstance(record, ReportLine):
            signed, currency = record.net_minor, record.currency
        if signed is not None:
            side = "credits" if signed >= 0 else "debits"
            totals = self.totals.setdefault(currency, {"credits": 0, "debits": 0})
            totals[side] += abs(signed)

    def merge(self, other: Tally) -> None:
        for kind, n in other.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
            self.flagged[kind] = self.flagged.get(kind, 0) + other.flagged[kind]
        for currency, sides in other.totals.items():
            totals = self.totals.setdefault(currency, {"credits": 0, "debits": 0})
            for side, amount in sides.items():
                totals[side] += amount

    def count(self) -> None:
        """Into the metrics, once the file is committed."""
        for kind, count in self.counts.items():
            FILE_RECORDS.labels(kind, "flagged").inc(self.flagged[kind])
            FILE_RECORDS.labels(kind, "clean").inc(count - self.flagged[kind])

    def json(self) -> dict[str, Any]:
        return {
            "counts": {
                kind: self.counts.get(kind, 0) for kind in ("statement", "entry", "line", "payout")
            }
            | {"flagged": sum(self.flagged.values())},
            "totals": self.totals,
        }


@dataclass(frozen=True)
class RecordBatch:
    """Records `first_seq`… of a file, as they are written, with their counts and totals."""

    first_seq: int
    records: bytes  # one JSON array
    kinds: list[str]
    match_statuses: list[str | None]
    flagged: list[Opened]
    tally: Tally


@dataclass
class _Parse:
    file: IO[bytes]
    records: Iterator[Record]
    file_id: str
    seq: int = 0


# In the worker: the imports under way, by key.
_PARSES: dict[str, _Parse] = {}


def _start(key: str, path: str, fmt: str, mapping: FileMapping | None, file_id: str) -> None:
    file = open(path, "rb")  # noqa: SIM115 (closed by _finish)
    _PARSES[key] = _Parse(file, read(file, fmt, mapping), file_id)


def _next(key: str) -> RecordBatch | None:
    parse = _PARSES[key]
    records = list(islice(parse.records, BATCH))
    if not records:
        return None
    kinds = [_KINDS[type(record)] for record in records]
    tally = Tally()
    for record, kind in zip(records, kinds, strict=True):
        tally.add(record, kind)
    batch = RecordBatch(
        parse.seq,
        orjson.dumps(records),
        kinds,
        [_match_status(record) for record in records],
        _flagged(parse.file_id, parse.seq, records),
        tally,
    )
    parse.seq += len(records)
    return batch


def _finish(key: str) -> None:
    parse = _PARSES.pop(key, None)
    if parse is not None:
        parse.file.close()


def _watch(parent: int) -> None:
    """In the worker: end with the service, however the service ended (SIGKILL included)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class _Worker:
    """The one worker process, started when first needed, replaced when it died."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:  # spawn: none of the service's threads and connections copied
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=_watch, initargs=(os.getpid(),)
            )
        return self._pool

    def broken(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
            pool.shutdown(wait=False)


_WORKER = _Worker()


async def parsed(
    path: Path, fmt: str, mapping: FileMapping | None, file_id: str
) -> AsyncGenerator[RecordBatch, None]:
    """The file's records in batches; the next batch is parsed while the caller writes this
    one. Close it (``contextlib.aclosing``) to drop a parse left before its end."""
    loop = asyncio.get_running_loop()
    pool = _WORKER.pool()
    key = uuid.uuid4().hex
    try:
        try:
            await loop.run_in_executor(pool, _start, key, str(path), fmt, mapping, file_id)
        except BrokenProcessPool:  # the worker died since the last import: a new one
            _WORKER.broken(pool)
            pool = _WORKER.pool()
            await loop.run_in_executor(pool, _start, key, str(path), fmt, mapping, file_id)
        parsing = loop.run_in_executor(pool, _next, key)
        while (batch := await parsing) is not None:
            parsing = loop.run_in_executor(pool, _next, key)
            yield batch
    except BrokenProcessPool:
        _WORKER.broken(pool)
        raise
    finally:
        # Nobody waits: the next import queues behind it. A worker gone took its parsers along.
        with suppress(BrokenProcessPool, RuntimeError):
            pool.submit(_finish, key)


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

"""An import's parse, in a process of its own, batch by batch.

A parser holds the GIL for its whole run: in the service's own process it shared one core with
the event loop writing its records, and every wake of the loop (PostgreSQL's answer, a socket
ready for more) waited for the parser's switch interval — an import ran at 0.4 of a bare parse.
In a process of its own the parse takes one core and PostgreSQL the other. What the service
writes comes back ready: the records as one JSON array, their kinds and match statuses, the
exceptions of the flagged ones; the counts and totals when the file ends.

One worker process serves every import of the service, started on the first (``spawn``: the
service's threads are not copied); an import's parser stays in it between its batches, under a
key of its own. Only plain data crosses back (JSON bytes, strings, numbers, dataclasses of
them). A parse that runs out of time is killed with its worker; a worker that died is replaced
at the next call.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson

from settlewatch.common.errors import Unavailable
from settlewatch.common.findings import FindingType
from settlewatch.common.pan import mask_pans
from settlewatch.recon.desk_items import Opened
from settlewatch.recon.metrics import FILE_RECORDS
from settlewatch.recon.rules import applicable, line_keys
from settlewatch.settlementfiles.csvmap import FileMapping
from settlewatch.settlementfiles.formats import read
from settlewatch.settlementfiles.model import (
    Entry,
    FileRecord,
    FileRejected,
    Issue,
    Loc,
    Payout,
    Problem,
    ReportLine,
    Statement,
    Summary,
)

__all__ = ["UNFORESEEN", "RecordBatch", "Tally", "WorkerLost", "batches", "parsed"]

_T = TypeVar("_T")

BATCH = 5000  # records per round trip: parsed in the worker, written with one statement
UNFORESEEN = "parser failure"  # names a parser's unforeseen failure in a file's errors
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

    def add(self, record: FileRecord, kind: str) -> None:
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
    """Records `first_seq`… of a file, as they are written, with their counts and totals, and
    the warnings the parser gave while reading them."""

    first_seq: int
    records: bytes  # one JSON array
    kinds: list[str]
    match_statuses: list[str | None]
    flagged: list[Opened]
    tally: Tally
    warnings: list[Issue]


class WorkerLost(Unavailable):
    """The parsing process ended under an import that did nothing wrong (another import's parse
    was stopped, or the process died): the import may be tried again."""


@dataclass
class _Parse:
    file: IO[bytes]
    batches: Iterator[RecordBatch]
    timeout: float
    seconds: float = 0.0  # spent parsing so far


# In the worker: the imports under way, by key, and which one it is parsing since when — shared
# with the service, which stops a parse that ran out of time (a call stuck in C cannot be
# interrupted from inside: ``int(Decimal("1e100000000"))`` held the GIL until it ended).
_PARSES: dict[int, _Parse] = {}
_NOW: Any = None  # multiprocessing Array: [key being parsed (0: none), started, seconds before]


def batches(
    file: IO[bytes], fmt: str, mapping: FileMapping | None, file_id: str
) -> Iterator[RecordBatch]:
    """The records of a file as the service writes them, `BATCH` at a time, each batch with
    the parser's warnings; a card number in the bank's free text is masked, with a warning.
    Whatever a parser raises that it did not mean (a bug, a library's own error) rejects the
    file at the record reached, as a malformed file is: an import ends `imported` or
    `rejected`, never in an error of the service."""
    seq = 0
    records: list[FileRecord] = []
    warnings: list[Issue] = []
    masked: list[Loc] = []  # where the batch's card numbers were
    try:
        for item in read(file, fmt, mapping):
            if isinstance(item, Issue):
                warnings.append(item)
                continue
            if isinstance(item, Entry):
                item, pans = _without_pans(item)
                masked += [item.loc] * pans
            records.append(item)
            if len(records) == BATCH:
                yield _batch(file_id, seq, records, warnings + _masked(masked))
                seq, records, warnings, masked = seq + len(records), [], [], []
        if records or warnings:
            yield _batch(file_id, seq, records, warnings + _masked(masked))
    except FileRejected:
        raise
    except Exception as exc:  # noqa: BLE001 (a parser's failure is the file's rejection)
        where = ("record", seq + len(records))
        message = f"{UNFORESEEN}: {type(exc).__name__}: {exc}"[:500]
        raise FileRejected([Issue(where, message)]) from None


def _without_pans(entry: Entry) -> tuple[Entry, int]:
    """The entry with every card number in the bank's free text (camt ``Ustrd``,
    ``AddtlNtryInf``, MT940 ``:86:``) cut to its first 6 and last 4 digits, and how many there
    were: the PAN guard holds for what a file brings too (SPEC §3). References are ids, matched
    on, and left as written."""
    found = 0

    def mask(text: str | None) -> str | None:
        nonlocal found
        if text is None:
            return None
        masked, count = mask_pans(text)
        found += count
        return masked

    details = tuple(replace(d, remittance=mask(d.remittance)) for d in entry.details)
    cleaned = replace(
        entry, remittance=mask(entry.remittance), info=mask(entry.info), details=details
    )
    return (cleaned, found) if found else (entry, 0)


def _masked(where: list[Loc]) -> list[Issue]:
    if not where:
        return []
    message = (
        f"{len(where)} card numbers (PAN) in the bank's text masked to their first 6 and last 4 "
        "digits"
    )
    return [Issue(where[0], message)]


def _batch(file_id: str, seq: int, records: list[FileRecord], warnings: list[Issue]) -> RecordBatch:
    kinds = [_KINDS[type(record)] for record in records]
    tally = Tally()
    for record, kind in zip(records, kinds, strict=True):
        tally.add(record, kind)
    return RecordBatch(
        seq,
        orjson.dumps(records),
        kinds,
        [_match_status(record) for record in records],
        _flagged(file_id, seq, records),
        tally,
        warnings,
    )


def _start(
    key: int, path: str, fmt: str, mapping: FileMapping | None, file_id: str, timeout: float
) -> None:
    file = open(path, "rb")  # noqa: SIM115 (closed by _finish)
    _PARSES[key] = _Parse(file, batches(file, fmt, mapping, file_id), timeout)


def _next(key: int) -> RecordBatch | None:
    """The next batch of import `key`, timed on the parse clock: a call stuck past the timeout
    is killed by the service, which watches the clock; a parse slow in all is stopped here."""
    parse = _PARSES[key]
    started = time.monotonic()
    with _NOW.get_lock():
        _NOW[:] = [key, started, parse.seconds]
    try:
        batch = next(parse.batches, None)
    finally:
        with _NOW.get_lock():
            _NOW[0] = 0
        parse.seconds += time.monotonic() - started
    if parse.seconds > parse.timeout:
        raise _out_of_time(parse.timeout)
    return batch


def _out_of_time(timeout: float) -> FileRejected:
    message = f"parsing took longer than {timeout:g} s (SETTLEWATCH_PARSE_TIMEOUT)"
    return FileRejected([Issue(("file",), message)])


def _finish(key: int) -> None:
    parse = _PARSES.pop(key, None)
    if parse is not None:
        parse.file.close()


def _prepare(parent: int, now: Any) -> None:
    """In the worker, first: share the parse clock, and end with the service however the
    service ended (SIGKILL included)."""
    global _NOW
    _NOW = now

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class _Worker:
    """The one worker process, started when first needed, replaced when it died or was
    stopped."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._pid = 0  # of the pool's process, known before the pool is handed out
        self._starting = asyncio.Lock()
        self._context = multiprocessing.get_context("spawn")
        self.now: Any = None  # the parse clock, made with the first worker

    async def pool(self) -> ProcessPoolExecutor:
        async with self._starting:
            if self._pool is None:  # spawn: none of the service's threads, connections copied
                if self.now is None:
                    self.now = self._context.Array("d", 3)
                pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=self._context,
                    initializer=_prepare,
                    initargs=(os.getpid(), self.now),
                )
                self._pid = await asyncio.get_running_loop().run_in_executor(pool, os.getpid)
                self._pool = pool
            return self._pool

    def parsing(self, key: int) -> float | None:
        """How long the import `key` has been parsed in all, when the worker is parsing it."""
        with self.now.get_lock():
            current, started, before = self.now[:]
        return before + time.monotonic() - started if current == key else None

    def stop(self, pool: ProcessPoolExecutor) -> None:
        """Kill the worker (its parse ran out of time); the next call starts another."""
        if self._pool is pool and self._pid > 0:
            with suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
        self.broken(pool)

    def broken(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
            pool.shutdown(wait=False)


_WORKER = _Worker()
_KEYS = itertools.count(1)
_POLL = 0.5  # seconds between looks at the parse clock while a call runs


async def parsed(
    path: Path, fmt: str, mapping: FileMapping | None, file_id: str, *, timeout: float
) -> AsyncGenerator[RecordBatch, None]:
    """The file's records in batches; the next batch is parsed while the caller writes this
    one. Close it (``contextlib.aclosing``) to drop a parse left before its end.

    A parse that has run for `timeout` seconds in all is stopped with its worker: the file is
    rejected (:class:`FileRejected`), and the other imports the worker served raise
    :class:`WorkerLost`. Time an import spends queued behind another is not its own."""
    loop = asyncio.get_running_loop()
    pool = await _WORKER.pool()
    key = next(_KEYS)

    async def call(function: Callable[..., _T], *args: Any) -> _T:
        try:
            future = loop.run_in_executor(pool, function, key, *args)
            while True:
                done, _ = await asyncio.wait({future}, timeout=_POLL)
                if done:
                    return future.result()
                spent = _WORKER.parsing(key)
                if spent is not None and spent > timeout:
                    _WORKER.stop(pool)
                    with suppress(BrokenProcessPool):
                        await future
                    raise _out_of_time(timeout)
        except BrokenProcessPool:
            _WORKER.broken(pool)
            raise WorkerLost from None

    try:
        await call(_start, str(path), fmt, mapping, file_id, timeout)
        parsing = asyncio.ensure_future(call(_next))
        try:
            while (batch := await parsing) is not None:
                parsing = asyncio.ensure_future(call(_next))
                yield batch
        finally:
            if not parsing.done():  # the caller left: its next batch is not wanted
                parsing.cancel()
                with suppress(asyncio.CancelledError, FileRejected, WorkerLost):
                    await parsing
    finally:
        # Nobody waits: the next import queues behind it. A worker gone took its parsers along.
        with suppress(BrokenProcessPool, RuntimeError):
            pool.submit(_finish, key)


# The problems that are findings of their own (SPEC §9); the others only flag their record.
_FINDINGS: dict[str, FindingType] = {
    "batch_total_mismatch": "settlement.batch_total_mismatch",
    "summary_mismatch": "settlement.batch_total_mismatch",
    "duplicate_line": "settlement.duplicate_line",
}


def _problems(record: FileRecord) -> list[Problem]:
    """A record's problems and, for an entry, those of its details."""
    problems = list(record.problems)
    if isinstance(record, Entry):
        problems += [p for detail in record.details for p in detail.problems]
    return problems


def _flagged(file_id: str, first_seq: int, batch: list[FileRecord]) -> list[Opened]:
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


def _match_status(record: FileRecord) -> str | None:
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

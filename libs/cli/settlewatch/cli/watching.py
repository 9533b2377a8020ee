"""``settlewatch import --watch DIR`` (SPEC §16): the bank's files taken from the folder they land
in (an SFTP drop, a share), each imported once through recon's API as ``settlewatch import``
does, then moved to ``DIR/done/`` (imported, or the same bytes imported before: recon answers
a file's SHA-256 once) or ``DIR/rejected/``, with a ``.json`` report beside it — recon's answer,
the file's SHA-256, when. It keeps watching until stopped.

A file still being written is waited for: it is taken only once its size and modification time
have not changed for ``SETTLE_S``, and never under an upload's temporary name (``.part``,
``.filepart``, ``.tmp``, a leading dot) — an upload that can pause longer should use one and
rename the file when it is whole, as SFTP clients do. Nothing is kept but the folder: a
restart finds what is left in DIR and sends it again, and recon answers what it already has as
a duplicate. When recon cannot be reached, or refuses the token, the file stays where it is and
is tried again (every ``RETRY_S``), so nothing dropped is lost. The format is the file's own
(recon finds it), or ``DIR/.settlewatch.json``'s: ``{"format": "csv:bank"}``, or by name
``{"formats": {"*.csv": "csv:bank", "*.xml": "auto"}}``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from settlewatch.cli.importing import ImportFailed, post_file
from settlewatch.common.errors import UsageError

__all__ = ["FolderError", "Settling", "folder_format", "watch"]

CONFIG = ".settlewatch.json"
SETTLE_S = 2.0  # unchanged this long: the writer is done with it
POLL_S = 1.0
RETRY_S = 10.0  # after recon could not take a file
PARTIAL = (".part", ".partial", ".filepart", ".tmp")  # an upload's name until it is renamed
Stat = tuple[int, int]  # size, mtime in ns


class FolderError(UsageError):
    """The folder cannot be watched: missing, or its .settlewatch.json unreadable."""


@dataclass
class Settling:
    """Which files have stopped changing (pure: the folder's listing and a clock in, the names
    ready to import out). A file is ready once its (size, mtime) has held for `settle`
    seconds and it is not empty; after it is taken it is not ready again until it changes. A
    writer that pauses longer than `settle` may have a part taken (recon rejects a part that
    is not a whole file; what is left is taken when it is whole)."""

    settle: float = SETTLE_S
    _seen: dict[str, tuple[Stat, float]] = field(default_factory=dict)  # stat, since when
    _taken: dict[str, Stat] = field(default_factory=dict)

    def ready(self, listing: Mapping[str, Stat], now: float) -> list[str]:
        for gone in self._seen.keys() - listing.keys():
            del self._seen[gone]
        for gone in self._taken.keys() - listing.keys():
            del self._taken[gone]
        names = []
        for name, stat in sorted(listing.items()):
            before = self._seen.get(name)
            if before is None or before[0] != stat:
                self._seen[name] = (stat, now)
                continue
            empty = stat[0] == 0  # being created: no bank's file is empty
            if not empty and now - before[1] >= self.settle and self._taken.get(name) != stat:
                names.append(name)
        return names

    def taken(self, name: str) -> None:
        """Not ready again unless it changes (a file recon could not take is let go with
        `retry`)."""
        self._taken[name] = self._seen[name][0]

    def retry(self, name: str) -> None:
        self._taken.pop(name, None)


def folder_format(config: Mapping[str, Any], name: str, given: str) -> str:
    """The format to send `name` with: the command's `--format` if not auto, else the
    folder's by name, else its one format, else auto (recon finds it from the file)."""
    if given != "auto":
        return given
    for pattern, fmt in (config.get("formats") or {}).items():
        if fnmatch.fnmatch(name, pattern):
            return str(fmt)
    return str(config.get("format") or "auto")


def _config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG
    if not path.exists():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FolderError(f"{path}: not JSON: {exc}") from None
    if not isinstance(config, dict) or not set(config) <= {"format", "formats"}:
        raise FolderError(f'{path}: expected {{"format": …}} or {{"formats": {{pattern: …}}}}')
    return config


def _listing(folder: Path) -> dict[str, Stat]:
    """The files directly in the folder, but its own (dotfiles) and those an upload is still
    writing under a temporary name (WinSCP's .filepart, curl's and rsync's .part/.tmp)."""
    found = {}
    for entry in folder.iterdir():
        if entry.name.startswith(".") or entry.suffix in PARTIAL or not entry.is_file():
            continue
        stat = entry.stat()
        found[entry.name] = (stat.st_size, stat.st_mtime_ns)
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _move(path: Path, to: Path, report: dict[str, Any]) -> Path:
    """`path` into `to` with its report beside it; a name taken there gets the time before it."""
    to.mkdir(exist_ok=True)
    target = to / path.name
    if target.exists() or target.with_name(target.name + ".json").exists():
        target = to / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{path.name}"
    report_path = target.with_name(target.name + ".json")
    report_path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    path.rename(target)
    return target


def _take(path: Path, fmt: str, url: str, token: str) -> tuple[str, dict[str, Any]]:
    """Send one file; where it goes (done, rejected) and its report. ImportFailed when recon
    could not take it (the file stays)."""
    sha256 = _sha256(path)
    status, body = post_file(path, fmt, url, token, None)
    if status >= 500 or status == 429:  # recon's trouble, or too many at once: later
        raise ImportFailed(f"recon answered {status}: {body.get('detail', '')}")
    imported = status in (200, 202) and body.get("status") != "rejected"
    outcome = ("duplicate" if status == 200 else "imported") if imported else "rejected"
    report = {
        "file": path.name,
        "sha256": sha256,
        "format": fmt,
        "outcome": outcome,
        "at": datetime.now(UTC).isoformat(),
        "recon": body,
    }
    return ("done" if imported else "rejected"), report


def watch(
    folder: Path,
    given_format: str,
    url: str,
    token: str,
    out: TextIO,
    *,
    keep_going: Callable[[], bool] = lambda: True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Watch `folder` until `keep_going` says no (Ctrl-C otherwise), a line on `out` per file."""
    if not folder.is_dir():
        raise FolderError(f"no such folder: {folder}")
    config = _config(folder)
    settling = Settling()
    waiting_until: dict[str, float] = {}  # a file recon could not take: not before then
    print(f"watching {folder} (done/ and rejected/ beside it); Ctrl-C stops", file=out, flush=True)
    while keep_going():
        now = clock()
        for name in settling.ready(_listing(folder), now):
            if waiting_until.get(name, 0.0) > now:
                continue
            settling.taken(name)
            path = folder / name
            fmt = folder_format(config, name, given_format)
            try:
                where, report = _take(path, fmt, url, token)
            except ImportFailed as exc:
                settling.retry(name)
                waiting_until[name] = now + RETRY_S
                print(
                    f"{name}: not sent, tried again in {RETRY_S:.0f} s: {exc}", file=out, flush=True
                )
                continue
            waiting_until.pop(name, None)
            moved = _move(path, folder / where, report)
            print(f"{name}: {report['outcome']} → {where}/{moved.name}", file=out, flush=True)
        sleep(POLL_S)

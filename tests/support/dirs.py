"""Folders for an embedded PostgreSQL's data, outside pytest's temporary tree.

Run as root (CI), the embedded server runs as its own system user, which must be able to enter
every folder above its data. pytest keeps its tree private to the user running it (mode 700),
and puts that back whenever a pytest process starts: a second suite on the machine, or one in a
fresh clone, then locks a running server out of its data (initdb or a restart fails with
"Permission denied"). So such data lives in a folder of its own under the system's temp folder.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["server_dir"]


@contextmanager
def server_dir(name: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"settlewatch-{name}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

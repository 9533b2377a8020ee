"""A request body written to a temporary file as it arrives, hashed on the way: a settlement file
is never held whole in memory, and its SHA-256 (the file's identity) is known when it ends."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["Spooled", "spool"]


@dataclass(frozen=True)
class Spooled:
    file: IO[bytes]  # rewound; deleted when closed
    sha256: str
    size: int

    @property
    def path(self) -> Path:
        """Where the parsing process reads it."""
        return Path(self.file.name)

    def close(self) -> None:
        self.file.close()


async def spool(chunks: AsyncIterator[bytes], directory: Path | None = None) -> Spooled:
    """Write `chunks` to a temporary file (the size limit is the middleware's); it has a name,
    for the parsing process to open."""
    file = tempfile.NamedTemporaryFile(dir=directory)  # noqa: SIM115 (closed by Spooled.close)
    digest = hashlib.sha256()
    size = 0
    try:
        async for chunk in chunks:
            if chunk:
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(file.write, chunk)
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return Spooled(file, digest.hexdigest(), size)

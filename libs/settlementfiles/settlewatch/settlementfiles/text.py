"""The lines and CSV rows of a text file, decoded one line at a time: a byte the encoding does
not allow, or a row the CSV dialect cannot read, rejects the file at its line."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO

from settlewatch.settlementfiles.model import FileRejected, Issue

__all__ = ["lines", "rows"]


def lines(stream: IO[bytes], encoding: str) -> Iterator[str]:
    """Decoded lines, line endings kept, without a byte order mark."""
    for number, raw in enumerate(stream, start=1):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            message = f"not {encoding}: {exc.reason} at byte {exc.start + 1} of the line"
            raise FileRejected([Issue(("line", number), message)]) from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def rows(stream: IO[bytes], encoding: str, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each row; a row's number is that of its last line."""
    reader = csv.reader(lines(stream, encoding), delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileRejected([Issue(("line", reader.line_num), f"not CSV: {exc}")]) from None
        yield reader.line_num, row

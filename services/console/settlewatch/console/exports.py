"""Every list exported as CSV (UTF-8 with a BOM, so that Excel reads the Chinese; headers in the
page's language) or XLSX (SPEC §15): everything matching the list's filter, not only its page.

Times are written in the desk's zone (the lists' zone), as the pages show them; dates as dates.
The rows come page by page from the service's API and leave as they come: the CSV is streamed,
the XLSX written row by row to a temporary file (XlsxWriter's constant_memory mode) and streamed
from it. Memory stays that of one page however many rows match.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import xlsxwriter
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from settlewatch.common.events import profile_default

__all__ = ["Column", "Fetch", "export"]

Cell = str | int | Decimal | datetime | date | None
# One page of a list: its items and the cursor of the next (None: the last).
Page = tuple[Sequence[Any], str | None]
Fetch = Callable[[str | None], Awaitable[Page]]
CHUNK = 64 * 1024
DESK_ZONE = ZoneInfo(profile_default("timezone"))


@dataclass(frozen=True)
class Column:
    title: str  # in the page's language
    value: Callable[[Any], Cell]

    def cell(self, item: Any) -> Cell:
        value = self.value(item)
        if isinstance(value, datetime):  # the desk's wall time: a spreadsheet has no zones
            return value.astimezone(DESK_ZONE).replace(tzinfo=None)
        return value


async def _rows(fetch: Fetch, first: Page) -> AsyncIterator[Any]:
    items, cursor = first
    while True:
        for item in items:
            yield item
        if cursor is None:
            return
        items, cursor = await fetch(cursor)


def _text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    return str(value)


async def _csv(columns: Sequence[Column], fetch: Fetch, first: Page) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c.title for c in columns])
    yield "\ufeff".encode() + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    async for item in _rows(fetch, first):
        writer.writerow([_text(c.cell(item)) for c in columns])
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def _xlsx(columns: Sequence[Column], fetch: Fetch, first: Page) -> Path:
    handle, name = tempfile.mkstemp(suffix=".xlsx")
    os.close(handle)  # XlsxWriter writes it by name
    path = Path(name)
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet()
    formats = {
        Decimal: book.add_format({"num_format": "#,##0.00"}),
        datetime: book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        date: book.add_format({"num_format": "yyyy-mm-dd"}),
    }
    for col, column in enumerate(columns):
        sheet.write_string(0, col, column.title, book.add_format({"bold": True}))
    written = 0

    def write(items: Sequence[Any]) -> None:  # off the event loop: a page is ≈ 1 000 rows
        nonlocal written
        for item in items:
            written += 1
            for col, column in enumerate(columns):
                value = column.cell(item)
                if isinstance(value, Decimal):
                    sheet.write_number(written, col, float(value), formats[Decimal])
                elif isinstance(value, datetime):
                    sheet.write_datetime(written, col, value, formats[datetime])
                elif isinstance(value, date):
                    sheet.write_datetime(written, col, value, formats[date])
                elif isinstance(value, int):
                    sheet.write_number(written, col, value)
                elif value is not None:
                    sheet.write_string(written, col, str(value))

    try:
        items, cursor = first
        while True:
            await asyncio.to_thread(write, items)
            if cursor is None:
                break
            items, cursor = await fetch(cursor)
        await asyncio.to_thread(book.close)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def _file(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


async def export(
    fmt: Literal["csv", "xlsx"], name: str, columns: Sequence[Column], fetch: Fetch
) -> StreamingResponse:
    """The whole list as `name`.csv or `name`.xlsx, downloaded. The first page is asked for
    before the answer starts, so that an API's refusal (a bad filter) is still an error page;
    a later page's failure can only end the download short (the browser says it failed)."""
    first = await fetch(None)
    headers = {"content-disposition": f'attachment; filename="{name}.{fmt}"'}
    if fmt == "csv":
        return StreamingResponse(
            _csv(columns, fetch, first), media_type="text/csv; charset=utf-8", headers=headers
        )
    path = await _xlsx(columns, fetch, first)
    return StreamingResponse(
        _file(path),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=headers,
        background=BackgroundTask(path.unlink, missing_ok=True),
    )

"""Files (SPEC §15): the bank statements and clearing reports received, newest first; upload one
(a plain form, with a progress bar where the browser runs the page's script); a file's page with
its counts, totals, warnings, and the errors that rejected it, each at its line or element."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from settlewatch.console.clients import ApiRefused
from settlewatch.console.clients.recon import File
from settlewatch.console.context import Console, Desk
from settlewatch.console.exports import Column, export
from settlewatch.console.session import check_csrf

router = APIRouter()

PAGE_SIZE = 50
CHUNK = 1024 * 1024
# Besides the file, a form holds a few short fields and the multipart framing.
FORM_OVERHEAD = 64 * 1024


@router.get("/files")
async def files(
    request: Request,
    desk: Desk,
    status: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    return await _list(request, desk, status, cursor)


async def _list(
    request: Request,
    desk: Desk,
    status: str = "",
    cursor: str = "",
    problem: str = "",
    code: int = 200,
) -> Response:
    console: Console = request.app.state.console
    page = await desk.clients.recon.files({"status": status, "cursor": cursor, "limit": PAGE_SIZE})
    context = {
        "session": desk.session,
        "items": page["items"],
        "next_cursor": page["next_cursor"],
        "status": status,
        "problem": problem,
    }
    return console.pages.render(request, "files.html", context, code)


@router.post("/files")
async def upload(request: Request, desk: Desk) -> Response:
    """The file is streamed on to recon as it is read from the form (spooled by the form
    parser); too big a form is refused before it is read."""
    console: Console = request.app.state.console
    declared = int(request.headers.get("content-length") or 0)
    if not 0 < declared <= console.settings.max_file_bytes + FORM_OVERHEAD:
        return await _list(request, desk, problem="size", code=413)
    async with request.form(max_files=1, max_fields=5) as form:
        check_csrf(desk.session.csrf, str(form.get("csrf") or ""))
        upload = form.get("file")
        fmt = str(form.get("format") or "auto").strip() or "auto"
        if not isinstance(upload, UploadFile) or not upload.size:
            return await _list(request, desk, problem="empty", code=422)
        try:
            imported = await desk.clients.recon.import_file(_chunks(upload), upload.size, fmt)
        except ApiRefused as refused:
            file_id = refused.problem.get("file_id")
            if refused.status == 422 and isinstance(file_id, str):  # recorded as rejected
                return RedirectResponse(f"/files/{file_id}", status_code=303)
            if refused.status in (401, 403):
                raise
            return await _list(request, desk, problem=_named(refused), code=refused.status)
    return RedirectResponse(f"/files/{imported['file_id']}", status_code=303)


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


def _named(refused: ApiRefused) -> str:
    fields = "; ".join(f"{message}" for _, message in refused.fields)
    return f"{refused.detail}{': ' + fields if fields else ''}"


@router.get("/files/export.{fmt}")
async def export_files(
    request: Request,
    desk: Desk,
    fmt: Literal["csv", "xlsx"],
    status: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    console: Console = request.app.state.console
    _ = console.pages.gettext(request)

    async def fetch(cursor: str | None) -> tuple[list[File], str | None]:
        page = await desk.clients.recon.files({"status": status, "cursor": cursor, "limit": 500})
        return page["items"], page["next_cursor"]

    def count(of: str) -> Callable[[File], int | None]:
        return lambda f: f["counts"][of] if f.get("counts") else None

    columns = [
        Column(_("Received"), lambda f: datetime.fromisoformat(f["received_at"])),
        Column(_("File"), lambda f: f["file_id"]),
        Column(_("Format"), lambda f: f["format"]),
        Column(
            _("Status"), lambda f: _("Imported") if f["status"] == "imported" else _("Rejected")
        ),
        Column(_("Lines"), count("line")),
        Column(_("Entries"), count("entry")),
        Column(_("Payout records"), count("payout")),
        Column(_("Errors"), lambda f: f["errors"]),
        Column(_("Size (KB)"), lambda f: round(f["size_bytes"] / 1024)),
    ]
    return await export(fmt, "files", columns, fetch)


@router.get("/files/{file_id}")
async def file(request: Request, desk: Desk, file_id: str) -> Response:
    console: Console = request.app.state.console
    found: dict[str, Any] = dict(await desk.clients.recon.file(file_id))
    context = {"session": desk.session, "file": found}
    return console.pages.render(request, "file.html", context)

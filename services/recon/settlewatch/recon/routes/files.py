"""Settlement files (SPEC §9): the accounts statements are about, CSV column mappings, and the
files themselves — bank statements and clearing reports, posted as their own bytes."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError

from settlewatch.common.auth import AcquirerOnly
from settlewatch.common.cursors import decode_cursor, encode_cursor
from settlewatch.common.openapi import json_body
from settlewatch.common.problems import ProblemError
from settlewatch.common.responses import ERRORS
from settlewatch.common.validation import check_path_id, parse_body
from settlewatch.recon import examples
from settlewatch.recon.context import ReconDep
from settlewatch.recon.metrics import FILES, IMPORT_SECONDS
from settlewatch.recon.reference import SettlementAccount
from settlewatch.recon.spool import spool
from settlewatch.settlementfiles.csvmap import FileMapping
from settlewatch.settlementfiles.formats import FORMATS, HELP

router = APIRouter(tags=["settlement files"])

_ACCOUNT = TypeAdapter(SettlementAccount)
_MAPPING = TypeAdapter(FileMapping)
_UPSERTED = {200: {"description": "Updated."}, 201: {"description": "Created."}, **ERRORS}
_FILE_TYPES = ("application/octet-stream", "application/xml", "text/xml", "text/csv", "text/plain")


@router.put(
    "/v1/settlement-accounts/{account_id}",
    summary="Register or update a settlement account: whose money its statement entries are.",
    openapi_extra=json_body(SettlementAccount, {"merchant": examples.SETTLEMENT_ACCOUNT}),
    responses=_UPSERTED | {409: ERRORS[422] | {"description": "Another account has this number."}},
)
async def put_account(
    account_id: str, request: Request, _: AcquirerOnly, recon: ReconDep
) -> JSONResponse:
    check_path_id("account_id", account_id)
    account = parse_body(await request.body(), _ACCOUNT).valid
    try:
        created = await recon.references.put_account(account_id, account)
    except IntegrityError:
        raise ProblemError(
            409,
            f"another settlement account already has the number {account.number}",
            [{"loc": ["body", "iban" if account.iban else "account_number"], "msg": "taken"}],
        ) from None
    body = await recon.references.account(account_id)
    return JSONResponse(body, status_code=201 if created else 200)


@router.get("/v1/settlement-accounts/{account_id}", summary="A settlement account.")
async def get_account(account_id: str, _: AcquirerOnly, recon: ReconDep) -> JSONResponse:
    body = await recon.references.account(account_id)
    if body is None:
        raise ProblemError(404, "settlement account not found")
    return JSONResponse(body)


@router.put(
    "/v1/file-mappings/{name}",
    summary="Define how a CSV 对账单 is written: columns, encoding, delimiter, formats.",
    openapi_extra=json_body(FileMapping, {"bank": examples.FILE_MAPPING}),
    responses=_UPSERTED,
)
async def put_mapping(
    name: str, request: Request, _: AcquirerOnly, recon: ReconDep
) -> JSONResponse:
    check_path_id("name", name)
    mapping = parse_body(await request.body(), _MAPPING).valid
    created = await recon.references.put_mapping(name, mapping)
    return JSONResponse(
        {"name": name, **mapping.model_dump(mode="json")}, status_code=201 if created else 200
    )


@router.get("/v1/file-mappings/{name}", summary="A CSV column mapping.")
async def get_mapping(name: str, _: AcquirerOnly, recon: ReconDep) -> JSONResponse:
    mapping = await recon.references.mapping(name)
    if mapping is None:
        raise ProblemError(404, "file mapping not found")
    return JSONResponse({"name": name, **mapping.model_dump(mode="json")})


@router.post(
    "/v1/settlement-files",
    summary="Import a bank statement or clearing report, posted as the file's own bytes.",
    description=(
        "202: imported (every record stored, matching follows). 200: the same bytes came "
        "before (the first import's file_id). 422: the file cannot be read as its format — "
        "it is recorded as rejected with located `errors`, and nothing of it is applied. "
        "The body is streamed to disk, up to SETTLEWATCH_MAX_FILE_BYTES."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                kind: {"schema": {"type": "string", "format": "binary"}} for kind in _FILE_TYPES
            },
        }
    },
    status_code=202,
    responses={200: {"description": "Already imported."}, **ERRORS},
)
async def post_file(
    request: Request,
    _: AcquirerOnly,
    recon: ReconDep,
    format: Annotated[str, Query(description=HELP)] = "auto",  # noqa: A002 (SPEC's name)
) -> JSONResponse:
    mapping = None
    if format.startswith("csv:"):
        mapping = await recon.references.mapping(format.removeprefix("csv:"))
        if mapping is None:
            raise ProblemError(
                422, "no such file mapping", [{"loc": ["query", "format"], "msg": "PUT it first"}]
            )
    elif format != "auto" and format not in FORMATS:
        raise ProblemError(
            422, "unknown format", [{"loc": ["query", "format"], "msg": f"one of {HELP}"}]
        )
    started = time.perf_counter()
    spooled = await spool(request.stream())
    try:
        row, new = await recon.files.import_file(spooled, format, mapping)
    finally:
        spooled.close()
    IMPORT_SECONDS.observe(time.perf_counter() - started)
    if new and row.status == "imported":
        recon.line_matcher.wake()
        recon.reconciler.wake()
    FILES.labels(row.format, row.status if new else "duplicate").inc()
    if new and row.status == "rejected":
        raise ProblemError(
            422,
            f"the file cannot be read as {row.format}; nothing of it was applied",
            row.errors,
            extensions={"file_id": row.file_id},
        )
    return JSONResponse(row.json(), status_code=202 if new else 200)


@router.get(
    "/v1/settlement-files",
    summary="Files received, newest first: status, counts, totals (each file's errors in its "
    "own answer; here how many).",
    responses={401: ERRORS[401], 403: ERRORS[403], 422: ERRORS[422]},
)
async def list_files(
    _: AcquirerOnly,
    recon: ReconDep,
    status: Literal["imported", "rejected"] | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    rows = await recon.files.newest(status, decode_cursor(cursor), limit)
    items = [{**row.json(), "errors": len(row.errors)} for row in rows]
    last = rows[-1] if len(rows) == limit else None
    next_cursor = encode_cursor(last.received_at, last.file_id) if last else None
    return JSONResponse({"items": items, "next_cursor": next_cursor})


@router.get("/v1/settlement-files/{file_id}", summary="A file's status, counts, totals, errors.")
async def get_file(file_id: str, _: AcquirerOnly, recon: ReconDep) -> JSONResponse:
    row = await recon.files.get(file_id)
    if row is None:
        raise ProblemError(404, "settlement file not found")
    return JSONResponse(row.json())

"""RFC 9457 problem+json responses, with an ``errors`` array of ``{loc, msg}`` (SPEC §4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from settlewatch.common.errors import BadInput, Unavailable

__all__ = ["PROBLEM_JSON", "Problem", "ProblemError", "install_problem_handlers", "problem"]

PROBLEM_JSON = "application/problem+json"
# Clients retry after this long; the outage that caused a 503 is usually seconds.
RETRY_AFTER_S = 1


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """The body of every error response (for the OpenAPI document)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] = []


def problem(
    status: int,
    detail: str | None = None,
    *,
    errors: Sequence[dict[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        **(extensions or {}),  # RFC 9457 extension members, e.g. the file_id of a rejected file
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


class ProblemError(BadInput):
    """Raised by a handler to answer with a problem+json, e.g. 422 listing every bad field."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: Sequence[dict[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers
        self.extensions = extensions


async def _problem_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem(
        exc.status, exc.detail, errors=exc.errors, headers=exc.headers, extensions=exc.extensions
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, exc.detail, headers=exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(err["loc"]), "msg": err["msg"]} for err in exc.errors()]
    return problem(422, "The request is not valid.", errors=errors)


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    detail = "A dependency did not answer in time; nothing is promised. Resending is safe."
    return problem(503, detail, headers={"Retry-After": str(RETRY_AFTER_S)})


def install_problem_handlers(app: FastAPI) -> None:
    """The one mapping from the error tree (common.errors) to HTTP answers."""
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(Unavailable, _unavailable)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

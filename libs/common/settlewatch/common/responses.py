"""The accepted answer and the documented error answers of the ingest and recon routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from settlewatch.common.problems import PROBLEM_JSON

__all__ = ["Accepted", "ERRORS"]


class Accepted(BaseModel):
    accepted: int


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _problem("The body is not valid JSON."),
    401: _problem("Missing or unknown bearer token."),
    403: _problem("The token's scope does not allow this."),
    413: _problem("The body is larger than SETTLEWATCH_MAX_BODY_BYTES."),
    422: _problem("Bad fields; `errors` names each one. Nothing was accepted."),
    503: _problem("The broker is unavailable; retry after `Retry-After` seconds."),
}

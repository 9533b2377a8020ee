"""OpenAPI for bodies a handler validates itself from the raw bytes.

Ingest validates request bodies with pydantic's JSON mode directly on the raw bytes (strict
types, one pass, all errors at once), so FastAPI does not see the body models; these helpers put
them, with examples, into ``/openapi.json`` all the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter

__all__ = ["json_body", "register_schemas"]

_REF = "#/components/schemas/{model}"


def json_body(model: type, examples: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` declaring `model` (a pydantic model or TypedDict) as the JSON request
    body, with named examples."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": _REF.format(model=model.__name__)},
                    "examples": {name: {"value": value} for name, value in examples.items()},
                }
            },
        }
    }


def register_schemas(app: FastAPI, models: Sequence[type]) -> None:
    """Add the schemas of `models` (and what they refer to) to the app's OpenAPI components."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                model_schema = TypeAdapter(model).json_schema(ref_template=_REF)
                components.update(model_schema.pop("$defs", {}))
                components[model.__name__] = model_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

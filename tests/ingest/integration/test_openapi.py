"""The API reference: /openapi.json describes every body, with examples that are valid."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.ingest.integration.conftest import PROFILE

pytestmark = pytest.mark.asyncio(loop_scope="session")

WRITES = [
    ("put", "/v1/merchants/{merchant_id}"),
    ("post", "/v1/transactions"),
    ("post", "/v1/settlements"),
    ("post", "/v1/maintenance-windows"),
]


async def test_every_body_has_a_schema_and_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for method, path in WRITES:
        content = spec["paths"][path][method]["requestBody"]["content"]["application/json"]
        assert content["schema"]["$ref"].removeprefix("#/components/schemas/") in schemas
        assert content["examples"], f"{method} {path} has no example"
    assert "CNY" in schemas["Transaction"]["properties"]["currency"]["enum"]
    assert (await client.get("/docs")).status_code == 200


async def test_the_documented_examples_are_accepted(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    def examples(method: str, path: str) -> list[Any]:
        content = spec["paths"][path][method]["requestBody"]["content"]["application/json"]
        return [example["value"] for example in content["examples"].values()]

    for profile in examples("put", "/v1/merchants/{merchant_id}"):
        assert (await client.put("/v1/merchants/M-10001", json=profile)).status_code in (200, 201)
    assert (await client.put("/v1/merchants/M-10001", json=PROFILE)).status_code == 200
    for method, path in WRITES[1:]:
        for body in examples(method, path):
            response = await client.request(method.upper(), path, json=body)
            assert response.status_code in (201, 202), (path, response.text)

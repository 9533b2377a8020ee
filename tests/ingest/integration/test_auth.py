"""Who may do what (SPEC §4): 401 without a valid token, 403 for a wrong scope, 404 across
merchants."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, PROFILE, sale

pytestmark = pytest.mark.asyncio(loop_scope="session")

NONE, WRONG = None, "not-a-real-token"
WINDOW = {
    "bank_code": "ICBC",
    "starts_at": "2025-11-22T00:00:00Z",
    "ends_at": "2025-11-22T06:00:00Z",
    "reason": "x",
}

# (method, path, json) → expected status for: no token, wrong token, merchant M1's token, acquirer
MATRIX = [
    ("POST", "/v1/transactions", {"items": [sale()]}, (401, 401, 403, 202)),
    (
        "POST",
        "/v1/settlements",
        {
            "items": [
                {
                    "settlement_id": "S1",
                    "merchant_id": "M1",
                    "bank_code": "ICBC",
                    "status": "settled",
                    "occurred_at": "2025-11-21T09:15:00+08:00",
                    "items": [{"txn_id": "T1", "gross_minor": 1, "fee_minor": 0, "net_minor": 1}],
                }
            ]
        },
        (401, 401, 403, 202),
    ),
    ("PUT", "/v1/merchants/M1", PROFILE, (401, 401, 403, 200)),
    ("GET", "/v1/merchants/M1", None, (401, 401, 200, 200)),
    ("PUT", "/v1/calendars/CN/2030", {"holidays": [], "source": "x"}, (401, 401, 403, 201)),
    ("GET", "/v1/calendars/CN", None, (401, 401, 200, 200)),
    ("GET", "/v1/merchants/M2", None, (401, 401, 404, 404)),  # M2 is not registered
    ("POST", "/v1/maintenance-windows", WINDOW, (401, 401, 403, 201)),
    ("GET", "/v1/maintenance-windows", None, (401, 401, 403, 200)),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, *_ in MATRIX]
)
async def test_auth_matrix(
    client: httpx.AsyncClient, method: str, path: str, body: object, expected: tuple[int, ...]
) -> None:
    statuses = []
    for token in (NONE, WRONG, MERCHANT_M1, ACQUIRER):
        headers = {"authorization": f"Bearer {token}"} if token else {"authorization": ""}
        response = await client.request(method, path, json=body, headers=headers)
        statuses.append(response.status_code)
        if response.status_code == 401:
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.headers["content-type"] == "application/problem+json"
    assert tuple(statuses) == expected


async def test_a_merchant_token_cannot_tell_other_merchants_exist(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.put("/v1/merchants/M2", json=PROFILE)).status_code == 201
    as_m1 = {"authorization": f"Bearer {MERCHANT_M1}"}
    other = await client.get("/v1/merchants/M2", headers=as_m1)
    missing = await client.get("/v1/merchants/M404", headers=as_m1)
    assert (other.status_code, missing.status_code) == (404, 404)
    assert other.json() == missing.json() | {"detail": other.json()["detail"]}


async def test_tokens_are_never_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.get("/v1/merchants/M1", headers={"authorization": f"Bearer {WRONG}"})
    await client.post("/v1/transactions", json={"items": [sale()]})
    assert ACQUIRER not in caplog.text
    assert WRONG not in caplog.text


async def test_scheme_other_than_bearer_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/merchants/M1", headers={"authorization": f"Basic {ACQUIRER}"})
    assert response.status_code == 401

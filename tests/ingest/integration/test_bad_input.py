"""Bad input gets a problem+json naming each bad item and field, and nothing is published."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from settlewatch.common.config import IngestSettings
from settlewatch.common.kafka import Topics
from tests.ingest.integration.conftest import PROFILE, sale, settlement
from tests.support.kafka import data_events

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAN = "4111111111111111"  # a Luhn-valid test card number


JSON = {"content-type": "application/json"}


def items(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(entries)}


def with_duplicate(item: dict[str, Any], key: str, first: Any) -> bytes:
    """A batch of `item` whose object gives `key` twice: first `first`, then its own value."""
    pairs = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in item.items() if k != key)
    body = f"{json.dumps(key)}: {json.dumps(first)}, {json.dumps(key)}: {json.dumps(item[key])}"
    return f'{{"items": [{{{body}, {pairs}}}]}}'.encode()


AN_HOUR_AHEAD = (datetime.now(UTC) + timedelta(hours=1)).isoformat()


async def published_kinds(settings: IngestSettings) -> list[str]:
    """The kinds of every non-pulse event on any of the prefix's topics."""
    topics = Topics(settings.topic_prefix).all()
    return [event["kind"] for event in await data_events(settings.kafka_bootstrap_servers, *topics)]


BAD_TRANSACTIONS: list[tuple[str, Any, int, list[str | int]]] = [
    (
        "PAN as fingerprint",
        items(sale(card_fingerprint=PAN)),
        422,
        ["items", 0, "card_fingerprint"],
    ),
    (
        "PAN in free text",
        items(sale(region=f"card {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}")),
        422,
        ["items", 0, "region"],
    ),
    ("PAN as txn_id", items(sale(txn_id=PAN)), 422, ["items", 0, "txn_id"]),
    ("PAN as rrn", items(sale(rrn="6011000990139424")), 422, ["items", 0, "rrn"]),
    ("PAN in an unknown field", items(sale(pan=PAN)), 422, ["items", 0, "pan"]),
    (
        "naive time",
        items(sale(occurred_at="2025-11-20T10:02:31")),
        422,
        ["items", 0, "occurred_at"],
    ),
    ("unix time", items(sale(occurred_at=1763604151)), 422, ["items", 0, "occurred_at"]),
    ("date only", items(sale(occurred_at="2025-11-20")), 422, ["items", 0, "occurred_at"]),
    ("negative amount", items(sale(amount_minor=-100)), 422, ["items", 0, "amount_minor"]),
    ("zero amount", items(sale(amount_minor=0)), 422, ["items", 0, "amount_minor"]),
    ("float amount", items(sale(amount_minor=128.5)), 422, ["items", 0, "amount_minor"]),
    ("integral float amount", items(sale(amount_minor=12800.0)), 422, ["items", 0, "amount_minor"]),
    ("string amount", items(sale(amount_minor="12800")), 422, ["items", 0, "amount_minor"]),
    ("huge amount", items(sale(amount_minor=10**16)), 422, ["items", 0, "amount_minor"]),
    ("unknown currency", items(sale(currency="XYZ")), 422, ["items", 0, "currency"]),
    ("lower-case currency", items(sale(currency="cny")), 422, ["items", 0, "currency"]),
    ("id with a space", items(sale(txn_id="T 1")), 422, ["items", 0, "txn_id"]),
    ("id too long", items(sale(txn_id="T" * 65)), 422, ["items", 0, "txn_id"]),
    ("unknown merchant", items(sale(merchant_id="M-NOPE")), 422, ["items", 0, "merchant_id"]),
    ("void without original", items(sale(type="void")), 422, ["items", 0, "original_txn_id"]),
    ("refund without original", items(sale(type="refund")), 422, ["items", 0, "original_txn_id"]),
    ("unknown type", items(sale(type="cashback")), 422, ["items", 0, "type"]),
    (
        "missing field",
        items({k: v for k, v in sale().items() if k != "terminal_id"}),
        422,
        ["items", 0, "terminal_id"],
    ),
    (
        "bad second item",
        items(sale("T1"), sale("T2", currency="RMB")),
        422,
        ["items", 1, "currency"],
    ),
    ("empty batch", items(), 422, ["items"]),
    ("oversized batch", items(*(sale(f"T{i}") for i in range(5001))), 422, ["items"]),
    ("no items key", {"transactions": [sale()]}, 422, ["items"]),
    ("malformed JSON", b'{"items": [', 400, ["body"]),
    ("NaN amount", b'{"items": [{"amount_minor": NaN}]}', 400, ["body"]),
    # Schema-valid times that made the matcher's deadline arithmetic overflow (issue 11).
    (
        "year 9999",
        items(sale(occurred_at="9999-12-31T23:59:59+14:00")),
        422,
        ["items", 0, "occurred_at"],
    ),
    (
        "year 1",
        items(sale(occurred_at="0001-01-01T00:00:00-12:00")),
        422,
        ["items", 0, "occurred_at"],
    ),
    (
        "before 2000",
        items(sale(occurred_at="1999-12-31T23:59:59Z")),
        422,
        ["items", 0, "occurred_at"],
    ),
    ("an hour ahead", items(sale(occurred_at=AN_HOUR_AHEAD)), 422, ["items", 0, "occurred_at"]),
    ("duplicate key", with_duplicate(sale(), "txn_id", "A1"), 422, ["items", 0, "txn_id"]),
    (
        "PAN hidden by a duplicate key",
        with_duplicate(sale(terminal_id="T"), "terminal_id", PAN),
        422,
        ["items", 0, "terminal_id"],
    ),
    ("duplicate top-level key", b'{"items": [], "items": []}', 422, ["items"]),
]


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [c[1:] for c in BAD_TRANSACTIONS],
    ids=[c[0] for c in BAD_TRANSACTIONS],
)
async def test_bad_transactions_are_rejected_naming_item_and_field(
    client: httpx.AsyncClient,
    ingest_settings: IngestSettings,
    body: Any,
    status: int,
    loc: list[str | int],
) -> None:
    response = await (
        client.post("/v1/transactions", content=body)
        if isinstance(body, bytes)
        else client.post("/v1/transactions", json=body)
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert loc in [error["loc"] for error in response.json()["errors"]]
    assert PAN not in response.text  # a rejected PAN is never echoed
    assert await published_kinds(ingest_settings) == ["merchant"]  # only M1's registration


BAD_SETTLEMENTS: list[tuple[str, Any, list[str | int]]] = [
    ("unknown status", items(settlement(status="paid")), ["items", 0, "status"]),
    ("no lines", items(settlement(items=[])), ["items", 0, "items"]),
    (
        "float net",
        items(
            settlement(
                items=[{"txn_id": "T1", "gross_minor": 100, "fee_minor": 1, "net_minor": 99.0}]
            )
        ),
        ["items", 0, "items", 0, "net_minor"],
    ),
    (
        "PAN as line txn_id",
        items(
            settlement(items=[{"txn_id": PAN, "gross_minor": 1, "fee_minor": 0, "net_minor": 1}])
        ),
        ["items", 0, "items", 0, "txn_id"],
    ),
    (
        "PAN in failure reason",
        items(settlement(status="failed", failure_reason=f"card {PAN} closed")),
        ["items", 0, "failure_reason"],
    ),
    (
        "value date with time",
        items(settlement(value_date="2025-11-21T00:00:00Z")),
        ["items", 0, "value_date"],
    ),
    ("unknown merchant", items(settlement(merchant_id="M-NOPE")), ["items", 0, "merchant_id"]),
    (
        "year 9999",
        items(settlement(occurred_at="9999-12-31T23:59:59+14:00")),
        ["items", 0, "occurred_at"],
    ),
    ("an hour ahead", items(settlement(occurred_at=AN_HOUR_AHEAD)), ["items", 0, "occurred_at"]),
    ("value date 9999", items(settlement(value_date="9999-12-31")), ["items", 0, "value_date"]),
    (
        "value date two months ahead",
        items(settlement(value_date=(date.today() + timedelta(days=60)).isoformat())),
        ["items", 0, "value_date"],
    ),
    (
        "duplicate key in a line",
        b'{"items": [{"settlement_id": "S1", "merchant_id": "M1", "bank_code": "ICBC", '
        b'"status": "settled", "occurred_at": "2025-11-21T09:15:00+08:00", "items": [{"txn_id": '
        b'"T1", "gross_minor": 1, "gross_minor": 9, "fee_minor": 0, "net_minor": 1}]}]}',
        ["items", 0, "items", 0, "gross_minor"],
    ),
]


@pytest.mark.parametrize(
    ("body", "loc"), [c[1:] for c in BAD_SETTLEMENTS], ids=[c[0] for c in BAD_SETTLEMENTS]
)
async def test_bad_settlements_are_rejected_naming_item_and_field(
    client: httpx.AsyncClient, ingest_settings: IngestSettings, body: Any, loc: list[str | int]
) -> None:
    response = await (
        client.post("/v1/settlements", content=body, headers=JSON)
        if isinstance(body, bytes)
        else client.post("/v1/settlements", json=body)
    )
    assert response.status_code == 422, response.text
    assert loc in [error["loc"] for error in response.json()["errors"]]
    assert await published_kinds(ingest_settings) == ["merchant"]


async def test_every_bad_item_of_a_batch_is_listed(client: httpx.AsyncClient) -> None:
    body = items(
        sale("T1"),
        sale("T2", amount_minor=-1),
        sale("T3"),
        sale("T4", currency="XXY", merchant_id="M-NOPE"),
    )
    response = await client.post("/v1/transactions", json=body)
    assert response.status_code == 422
    locs = [error["loc"] for error in response.json()["errors"]]
    assert locs == [["items", 1, "amount_minor"], ["items", 3, "currency"]]


async def test_unknown_merchants_are_all_listed_when_the_rest_is_valid(
    client: httpx.AsyncClient,
) -> None:
    body = items(sale("T1"), sale("T2", merchant_id="M-X"), sale("T3", merchant_id="M-Y"))
    response = await client.post("/v1/transactions", json=body)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [
        ["items", 1, "merchant_id"],
        ["items", 2, "merchant_id"],
    ]


async def test_a_body_over_the_size_limit_is_refused_with_413(
    client: httpx.AsyncClient, ingest_settings: IngestSettings
) -> None:
    padding = "x" * ingest_settings.max_body_bytes
    response = await client.post("/v1/transactions", json=items(sale(region=padding)))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_pan_in_a_path_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/merchants/4111111111111111", json={})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["path", "merchant_id"]


async def test_a_nul_in_free_text_is_refused_naming_the_field(
    client: httpx.AsyncClient, ingest_settings: IngestSettings
) -> None:
    """JSON can carry one (\\u0000); PostgreSQL text cannot: found by the fuzz test as a 500."""
    profile = json.dumps(PROFILE | {"name": "shop\x00"})
    response = await client.put("/v1/merchants/M2", content=profile, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["name"]
    batch = json.dumps(items(sale("T9", region="north\x00")))
    response = await client.post("/v1/transactions", content=batch, headers=JSON)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["items", 0, "region"]
    assert await published_kinds(ingest_settings) == ["merchant"]  # only M1's registration


async def test_a_fee_rule_with_a_negative_rate_is_refused_naming_the_field(
    client: httpx.AsyncClient, ingest_settings: IngestSettings
) -> None:
    rules = [{"card_type": "debit", "rate_bps": 50}, {"rate_bps": -60}]
    schedule = [{"effective_from": "2026-01-01", "rules": rules}]
    response = await client.put("/v1/merchants/M2", json=PROFILE | {"fee_schedule": schedule})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["fee_schedule", 0, "rules", 1, "rate_bps"]
    assert (await client.get("/v1/merchants/M2")).status_code == 404
    good = [{"effective_from": "2026-01-01", "rules": rules[:1] + [{"rate_bps": 60}]}]
    accepted = await client.put("/v1/merchants/M2", json=PROFILE | {"fee_schedule": good})
    assert accepted.status_code == 201, accepted.text
    stored = (await client.get("/v1/merchants/M2")).json()
    assert stored["fee_schedule"][0]["rules"][1]["rate_bps"] == 60
    assert await published_kinds(ingest_settings) == ["merchant", "merchant"]  # M1's, then M2's


async def test_a_card_type_outside_debit_and_credit_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/transactions", json=items(sale("T9", card_type="amex")))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["items", 0, "card_type"]
    accepted = await client.post("/v1/transactions", json=items(sale("T9", card_type="debit")))
    assert accepted.status_code == 202


async def test_a_chargeback_without_its_sale_or_an_adjustment_without_direction_is_refused(
    client: httpx.AsyncClient, ingest_settings: IngestSettings
) -> None:
    chargeback = sale("CB1", type="chargeback")
    adjustment = sale("AD1", type="adjustment")
    fee_debit = sale("FD1", type="fee_debit")  # needs neither
    response = await client.post("/v1/transactions", json=items(chargeback, adjustment, fee_debit))
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == [
        ["items", 0, "original_txn_id"],
        ["items", 1, "direction"],
    ]
    assert await published_kinds(ingest_settings) == ["merchant"]
    fixed = [chargeback | {"original_txn_id": "T1"}, adjustment | {"direction": "debit"}, fee_debit]
    assert (await client.post("/v1/transactions", json=items(*fixed))).status_code == 202

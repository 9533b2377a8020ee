"""POST /v1/transactions and POST /v1/settlements: all-or-nothing batches, 202 after the ack."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import TypeAdapter

from settlewatch.common.auth import AcquirerOnly
from settlewatch.common.events import (
    Settlement,
    SettlementBatch,
    Transaction,
    TransactionBatch,
    encode_event,
)
from settlewatch.common.openapi import json_body
from settlewatch.common.problems import ProblemError
from settlewatch.common.publisher import BrokerUnavailable
from settlewatch.common.responses import ERRORS, Accepted
from settlewatch.common.validation import (
    checked_settlements,
    future_errors,
    missing_original_errors,
    parse_body,
    reject,
    unregistered_errors,
)
from settlewatch.ingest import examples
from settlewatch.ingest.context import Ingest, IngestDep
from settlewatch.ingest.metrics import BATCH_SIZE, EVENTS, PUBLISH_SECONDS

router = APIRouter(tags=["events"])

_TRANSACTIONS = TypeAdapter(TransactionBatch)


@router.post(
    "/v1/transactions",
    status_code=202,
    summary="Terminal transactions (1–5000), accepted only once the broker has them.",
    openapi_extra=json_body(TransactionBatch, examples.TRANSACTIONS),
    responses=ERRORS,
)
async def post_transactions(request: Request, _: AcquirerOnly, ingest: IngestDep) -> Accepted:
    with _counting_rejections("transaction"):
        valid, plain = parse_body(await request.body(), _TRANSACTIONS)
        reject(
            missing_original_errors(valid["items"])
            + future_errors(valid["items"], ("occurred_at",), ingest.clock(), ingest.max_clock_skew)
        )
        items: list[Transaction] = plain["items"]  # valid: published exactly as sent
        await _check_merchants(ingest, items)
    await _publish(ingest, "transaction", ingest.topics.transactions, items)
    return Accepted(accepted=len(items))


@router.post(
    "/v1/settlements",
    status_code=202,
    summary="Bank settlement results (1–5000), accepted only once the broker has them.",
    openapi_extra=json_body(SettlementBatch, examples.SETTLEMENTS),
    responses=ERRORS,
)
async def post_settlements(request: Request, _: AcquirerOnly, ingest: IngestDep) -> Accepted:
    with _counting_rejections("settlement"):
        raw = await request.body()
        plain = checked_settlements(raw, ingest.clock(), ingest.max_clock_skew).plain
        items: list[Settlement] = plain["items"]
        await _check_merchants(ingest, items)
    await _publish(ingest, "settlement", ingest.topics.settlements, items)
    return Accepted(accepted=len(items))


async def _check_merchants(ingest: Ingest, items: Sequence[Transaction | Settlement]) -> None:
    merchant_ids = [item["merchant_id"] for item in items]
    reject(unregistered_errors(merchant_ids, await ingest.registry.unknown(merchant_ids)))


Kind = Literal["transaction", "settlement"]


async def _publish(
    ingest: Ingest, kind: Kind, topic: str, items: Sequence[Transaction | Settlement]
) -> None:
    """Publish keyed by merchant; 503 unless the broker acknowledged every item."""
    records = [(i["merchant_id"].encode(), encode_event(kind, orjson.dumps(i))) for i in items]
    started = time.perf_counter()
    try:
        await ingest.publisher.publish(topic, records)
    except BrokerUnavailable:
        EVENTS.labels(kind, "unavailable").inc(len(records))
        raise  # answered 503 with Retry-After (common.problems)
    PUBLISH_SECONDS.labels(kind).observe(time.perf_counter() - started)
    BATCH_SIZE.labels(kind).observe(len(records))
    EVENTS.labels(kind, "accepted").inc(len(records))


@contextmanager
def _counting_rejections(kind: Kind) -> Iterator[None]:
    """Counts the bad items of a rejected batch (each distinct item index, or 1 for the body)."""
    try:
        yield
    except ProblemError as exc:
        bad = {e["loc"][1] for e in exc.errors if e["loc"][:1] == ["items"] and len(e["loc"]) > 1}
        EVENTS.labels(kind, "rejected").inc(len(bad) or 1)
        raise

"""Terminals (SPEC §15): a merchant's books of a business day per terminal — sales, refunds, fees,
what the payments should bring against what the bank settled under each terminal — so that a
migrated terminal whose books disagree (账务不一致) shows where the difference sits."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from settlewatch.console.clients import ApiRefused
from settlewatch.console.context import Console, Desk

router = APIRouter()


@router.get("/terminals")
async def terminals(
    request: Request,
    desk: Desk,
    merchant_id: Annotated[str, Query(max_length=64)] = "",
    day: Annotated[str, Query(alias="date", max_length=10)] = "",
) -> Response:
    console: Console = request.app.state.console
    merchant = desk.session.merchant_id or merchant_id.strip()
    shown = {"merchant_id": merchant, "date": day}
    books: dict[str, Any] | None = None
    wrong: dict[str, str] = {}
    if merchant and day:
        try:
            date.fromisoformat(day)
            books = await desk.clients.ingest.books(merchant, day)
        except ValueError:
            wrong = {"date": "not a date"}
        except ApiRefused as refused:
            if refused.status != 422:
                raise
            wrong = {loc.rsplit(".", 1)[-1]: message for loc, message in refused.fields}
    context = {"session": desk.session, "filters": shown, "books": books, "wrong": wrong}
    return console.pages.render(request, "terminals.html", context, 422 if wrong else 200)

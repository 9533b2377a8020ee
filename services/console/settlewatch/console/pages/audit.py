"""Audit (SPEC §15): who changed what through the APIs (the console's changes included, made as
the signed-in token), newest first, by token and time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from settlewatch.console.clients import ApiRefused
from settlewatch.console.context import Console, Desk
from settlewatch.console.pages.payments import aware

router = APIRouter()

PAGE_SIZE = 100


@router.get("/audit")
async def audit(
    request: Request,
    desk: Desk,
    actor: Annotated[str, Query(max_length=16)] = "",
    from_: Annotated[str, Query(alias="from", max_length=40)] = "",
    to: Annotated[str, Query(max_length=40)] = "",
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    console: Console = request.app.state.console
    shown = {"actor": actor.strip(), "from": from_, "to": to}
    wrong: dict[str, str] = {}
    items, next_cursor = [], None
    try:
        asked = {
            "actor": shown["actor"],
            "from": aware(from_) if from_ else None,
            "to": aware(to) if to else None,
            "limit": PAGE_SIZE,
            "cursor": cursor,
        }
        page = await desk.clients.ingest.audit(asked)
        items, next_cursor = page["items"], page["next_cursor"]
    except ValueError:
        wrong = {"from" if from_ else "to": "not a time"}
    except ApiRefused as refused:
        if refused.status != 422:
            raise
        wrong = {loc.rsplit(".", 1)[-1]: message for loc, message in refused.fields}
    context = {
        "session": desk.session,
        "filters": shown,
        "wrong": wrong,
        "items": items,
        "next_cursor": next_cursor,
    }
    return console.pages.render(request, "audit.html", context, 422 if wrong else 200)

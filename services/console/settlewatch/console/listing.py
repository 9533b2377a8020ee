"""What every list page shares: its filters read once, by one FastAPI dependency that the page,
its exports and its actions all use (so they can never filter differently); times typed in the
desk's zone; the fields an API's 422 named, to show beside the filter that holds them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Query

from settlewatch.common.events import profile_default
from settlewatch.console.clients import ApiRefused

__all__ = ["Cursor", "DateText", "Filters", "Text", "TimeText", "desk_time", "named_fields"]

Text = Annotated[str, Query(max_length=64)]
DateText = Annotated[str, Query(max_length=10)]  # a date: 2026-12-04
TimeText = Annotated[str, Query(max_length=40)]  # a date, or a datetime-local
Cursor = Annotated[str, Query(max_length=500)]
# A list's filters as the person typed them (stripped), by the API's parameter names; an empty
# one is not sent.
Filters = dict[str, str]


def desk_time(value: str) -> str | None:
    """A time typed in the desk's zone (a browser's datetime-local has none) as ISO 8601;
    ValueError for one that is not a time."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(profile_default("timezone")))
    return moment.isoformat()


def named_fields(refused: ApiRefused) -> dict[str, str]:
    """The query fields an API's 422 named (`query.from` → `from`), else its cursor: the only
    field a person did not type."""
    named = {loc.rsplit(".", 1)[-1]: message for loc, message in refused.fields}
    return named or {"cursor": refused.detail}

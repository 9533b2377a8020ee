"""``settlewatch replay --from T --to T [--terms FILE] [--against-live]`` (SPEC §13): a recorded
period through a fresh matcher (matcher.replay), its findings printed one per line; with
``--against-live``, the differences from the findings the live matcher recorded, exit 0 only if
there are none.

``--terms`` is a JSON object of merchant id → merchant profile (the body of
``PUT /v1/merchants/{id}``), replacing the log's profile of those merchants: what the findings
would have been under another fee schedule, cycle or calendar.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from pydantic import ValidationError

from settlewatch.common.errors import UsageError
from settlewatch.common.events import MerchantProfile

if TYPE_CHECKING:  # the command line starts without the matcher; `replay` imports it to run
    from settlewatch.matcher.replay import Differences, Replayed

__all__ = ["instant", "read_terms", "render", "render_differences"]


def instant(text: str) -> datetime:
    """An argparse type: an ISO 8601 time with its offset."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. {text}+08:00")
    return when


def read_terms(path: Path) -> dict[str, MerchantProfile]:
    """The merchant profiles of a terms file, validated as the API validates them."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise UsageError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected an object of merchant id → profile")
    terms = {}
    for merchant_id, profile in data.items():
        try:
            terms[merchant_id] = MerchantProfile.model_validate(profile)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in (merchant_id, *first["loc"]))
            raise UsageError(f"{path}: {where}: {first['msg']}") from None
    return terms


def render(replayed: Replayed) -> str:
    lines = [
        f"{f['at']}  {f['state']:<8}  {f['id']}"
        + (f"  merchant={f['merchant_id']}" if f.get("merchant_id") else "")
        for f in sorted(replayed.findings, key=lambda f: (f["at"], f["id"], f["state"]))
    ]
    lines.append(
        f"{len(replayed.findings)} findings in the period; {replayed.records} records replayed"
        + (f", {len(replayed.rejected)} set aside" if replayed.rejected else "")
    )
    return "\n".join(lines)


def render_differences(differences: Differences) -> str:
    if not differences:
        return "identical to the findings recorded live"
    return "\n".join(
        [f"only live:     {key}" for key in differences.only_live]
        + [f"only replayed: {key}" for key in differences.only_replayed]
        + [
            f"{len(differences.only_live)} only live, "
            f"{len(differences.only_replayed)} only replayed"
        ]
    )

"""PUT/GET /v1/calendars (SPEC §10): loads are versioned (who, what, when), published to every
partition, idempotent when nothing changed; built-in years are listed and readable; bad days are
refused naming the field, with nothing stored or published."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from settlewatch.cli.calendars import read_file
from settlewatch.common.config import IngestSettings
from settlewatch.common.kafka import Topics
from tests.ingest.integration.conftest import PARTITIONS
from tests.support.kafka import decoded, read_topic

pytestmark = pytest.mark.asyncio(loop_scope="session")

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "calendars"
SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "_derived"
YEAR_2030 = {
    "holidays": ["2030-02-04", "2030-02-05", "2030-02-04"],
    "workdays": ["2030-02-09"],
    "source": "notice of 2030",
}


async def calendar_records(settings: IngestSettings) -> list[tuple[int, dict[str, Any]]]:
    topic = Topics(settings.topic_prefix).transactions
    records = await read_topic(settings.kafka_bootstrap_servers, topic)
    return [(r.partition, decoded(r)["body"]) for r in records if decoded(r)["kind"] == "calendar"]


async def test_a_load_is_versioned_published_everywhere_and_idempotent(
    client: httpx.AsyncClient, ingest_settings: IngestSettings
) -> None:
    first = await client.put("/v1/calendars/CN/2030", json=YEAR_2030)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["holidays"] == ["2030-02-04", "2030-02-05"]  # deduplicated, sorted
    assert [(v["version"], v["loaded_by"]) for v in body["versions"]] == [(1, "acquirer")]

    again = await client.put("/v1/calendars/CN/2030", json=YEAR_2030)
    assert again.status_code == 200
    assert [v["version"] for v in again.json()["versions"]] == [1]

    changed = await client.put("/v1/calendars/CN/2030", json=YEAR_2030 | {"workdays": []})
    assert changed.status_code == 201
    assert [v["version"] for v in changed.json()["versions"]] == [2, 1]

    year = (await client.get("/v1/calendars/CN/2030")).json()
    assert (year["workdays"], year["source"], year["authoritative"]) == ([], "notice of 2030", True)
    assert [v["version"] for v in year["versions"]] == [2, 1]

    records = await calendar_records(ingest_settings)
    assert sorted((p, b["version"]) for p, b in records) == sorted(
        (p, v) for p in range(PARTITIONS) for v in (1, 2)
    )
    assert {b["calendar"] for _, b in records} == {"CN"}


async def test_the_calendar_lists_built_in_loaded_and_missing_years(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.put("/v1/calendars/CN/2030", json=YEAR_2030)).status_code == 201
    years = {y["year"]: y for y in (await client.get("/v1/calendars/CN")).json()["years"]}
    assert years[2026]["source"].startswith("chinesecalendar ")
    assert years[2026]["authoritative"] and years[2026]["version"] is None
    assert (years[2030]["source"], years[2030]["version"]) == ("notice of 2030", 1)
    assert years[2027] == {
        "year": 2027,
        "source": None,
        "authoritative": False,
        "version": None,
        "loaded_by": None,
        "loaded_at": None,
    }
    built_in = (await client.get("/v1/calendars/CN/2026")).json()
    assert "2026-02-16" in built_in["holidays"] and "2026-01-04" in built_in["workdays"]
    assert built_in["versions"] == []
    assert (await client.get("/v1/calendars/CN/2031")).status_code == 404
    assert (await client.get("/v1/calendars/weekdays")).json()["years"] == []


async def test_the_2026_csv_loads_as_chinesecalendar_has_it(client: httpx.AsyncClient) -> None:
    built_in = (await client.get("/v1/calendars/CN/2026")).json()
    year, body = read_file(SHARED / "cn_business_days_2026.csv")
    loaded = await client.put(f"/v1/calendars/CN/{year}", json=body)
    assert loaded.status_code == 201, loaded.text
    assert (loaded.json()["holidays"], loaded.json()["workdays"]) == (
        built_in["holidays"],
        built_in["workdays"],
    )
    assert loaded.json()["source"] == "cn_business_days_2026.csv"


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("CN/2030", YEAR_2030 | {"holidays": ["2030-02-04", "2031-01-01"]}, ["holidays", 1]),
        ("CN/2030", YEAR_2030 | {"workdays": ["2030-02-04"]}, ["workdays", 0]),  # also a holiday
        ("CN/2030", YEAR_2030 | {"workdays": ["2030-02-06"]}, ["workdays", 0]),  # a Wednesday
        ("CN/2030", YEAR_2030 | {"holidays": ["2030-02-30"]}, ["holidays", 0]),
        ("CN/2030", {"holidays": []}, ["source"]),
        ("weekdays/2030", YEAR_2030, ["path", "calendar"]),
        ("HK/2030", YEAR_2030, ["path", "calendar"]),
        ("CN/1999", YEAR_2030, ["path", "year"]),
    ],
)
async def test_bad_days_are_refused_naming_the_field_and_nothing_is_kept(
    client: httpx.AsyncClient,
    ingest_settings: IngestSettings,
    path: str,
    body: dict[str, Any],
    loc: list[Any],
) -> None:
    response = await client.put(f"/v1/calendars/{path}", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert loc in [e["loc"] for e in response.json()["errors"]]
    assert (await client.get("/v1/calendars/CN/2030")).status_code == 404
    assert await calendar_records(ingest_settings) == []


async def test_the_synthetic_2027_fixture_is_a_valid_load(client: httpx.AsyncClient) -> None:
    year, body = read_file(FIXTURE / "cn_2027_synthetic.json")
    assert year == 2027
    loaded = await client.put("/v1/calendars/CN/2027", json=body)
    assert loaded.status_code == 201, loaded.text
    load = loaded.json()["versions"][0]
    assert datetime.fromisoformat(load["published_at"]) == datetime.fromisoformat(
        body["published_at"]
    )
    assert loaded.json()["holidays"] == sorted(body["holidays"])

"""matcher_isoformat (migration 0014): the deadline fast path writes the times of its findings
in SQL, and they must read exactly as the core's."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.urls import asyncpg_dsn

times = st.builds(
    lambda t, minutes, whole: (t.replace(microsecond=0) if whole else t).replace(
        tzinfo=timezone(timedelta(minutes=minutes))
    ),
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
    st.booleans(),
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(times, min_size=1, max_size=50))
def test_matcher_isoformat_writes_a_time_as_python_does(
    database_url: str, cases: list[datetime]
) -> None:
    """The findings the database writes show times as the core's (datetime.isoformat): the
    instant in the offset it was given in, microseconds only when there are some."""
    cases = [*cases, datetime(2025, 11, 2, 1, 30, tzinfo=ZoneInfo("America/New_York"))]

    async def written() -> list[str]:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            rows = await conn.fetch(
                "SELECT matcher_isoformat(at, offset_s) "
                "FROM unnest($1::timestamptz[], $2::int[]) WITH ORDINALITY AS t(at, offset_s, n) "
                "ORDER BY n",
                cases,
                [int(c.utcoffset().total_seconds()) for c in cases],  # type: ignore[union-attr]
            )
        finally:
            await conn.close()
        return [row[0] for row in rows]

    assert asyncio.run(written()) == [c.isoformat() for c in cases]

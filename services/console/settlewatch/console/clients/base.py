"""What every service client shares: the signed-in token on each call, one deadline and one size
limit per answer, and the API's refusals kept apart from its absence.

An answer 4xx becomes :class:`ApiRefused` carrying the API's problem+json (the page shows its
`detail` and the named fields); no answer in time, or a 5xx, becomes :class:`ServiceUnavailable`
(the console answers 503 and says which service). A 401 means the token is no longer good
(revoked, expired): the console then ends the session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Mapping
from typing import Any, TypedDict

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from settlewatch.common.errors import BadInput, Unavailable
from settlewatch.common.metrics import DEAD_LETTERS
from settlewatch.console.metrics import API_SECONDS

__all__ = ["ApiRefused", "Page", "Params", "ServiceClient", "ServiceUnavailable"]

# A page waits this long for one API answer; a services' list page answers in milliseconds.
TIMEOUT_S = 10.0
# The largest answer read: a page of 1 000 payments is ≈ 1 MB, an evidence PDF ≈ 100 KB.
MAX_ANSWER_BYTES = 16 * 1024 * 1024

Params = Mapping[str, str | int | None]
DEAD_LETTERS_FAMILY = next(iter(DEAD_LETTERS.describe())).name  # settlewatch_dead_letters


class Page(TypedDict):
    """A page of a list, as every list of the APIs answers: its items and the next's cursor."""

    items: list[Any]
    next_cursor: str | None


class ApiRefused(BadInput):
    """A service refused the request (4xx): its problem+json, to show the person."""

    def __init__(self, service: str, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{service} answered {status}: {problem.get('detail', '')}")
        self.service = service
        self.status = status
        self.problem = problem

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or self.problem.get("title") or self.status)

    @property
    def fields(self) -> list[tuple[str, str]]:
        """(field, message) of each field the API named."""
        named = self.problem.get("errors") or []
        return [(".".join(map(str, e.get("loc", []))), str(e.get("msg", ""))) for e in named]


class ServiceUnavailable(Unavailable):
    """A service did not answer in time, answered 5xx, or answered more than the console reads."""

    def __init__(self, service: str, why: str) -> None:
        super().__init__(f"{service}: {why}")
        self.service = service


class ServiceClient:
    """Calls to one service as one token; the pages use the typed clients built on this."""

    service = ""

    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str) -> None:
        self._http = http
        self._base_url = base_url
        self._headers = {"authorization": f"Bearer {token}"}

    async def readiness(self) -> dict[str, str]:
        """The service's own /readyz checks (no token: every service answers it), or why it
        could not be asked."""
        try:
            answer = await self._http.get(f"{self._base_url}/readyz", timeout=2.0)
            checks: dict[str, str] = orjson.loads(answer.content)["checks"]
        except (httpx.HTTPError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            return {"service": f"error: {type(exc).__name__}"}
        return checks

    async def dead_letters(self) -> int | None:
        """The records the service set aside to its dead-letter topic since it started, read
        from its /metrics as Prometheus reads it; None when that could not be read."""
        try:
            text = (await self.request("GET", "/metrics", timeout=2.0)).decode()
        except (ApiRefused, ServiceUnavailable):
            return None
        return int(
            sum(
                sample.value
                for family in text_string_to_metric_families(text)
                if family.name == DEAD_LETTERS_FAMILY
                for sample in family.samples
                if sample.name == f"{DEAD_LETTERS_FAMILY}_total"
            )
        )

    async def get_json(self, path: str, params: Params | None = None) -> Any:
        return orjson.loads(await self.request("GET", path, params=params))

    async def send_json(self, method: str, path: str, body: Any = None) -> Any:
        answer = await self.request(
            method, path, content=orjson.dumps(body), headers={"content-type": "application/json"}
        )
        return orjson.loads(answer) if answer else None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = TIMEOUT_S,
    ) -> bytes:
        """The answer's body; ApiRefused or ServiceUnavailable otherwise. `timeout`: for the
        whole call, the body sent and the answer read."""
        clean = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):  # the whole answer, however it trickles
                status, body = await self._read(method, path, clean, content, headers)
        except (TimeoutError, httpx.HTTPError) as exc:
            raise ServiceUnavailable(self.service, f"no answer ({type(exc).__name__})") from None
        finally:
            API_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        if status >= 500:
            raise ServiceUnavailable(self.service, f"answered {status}")
        if status >= 400:
            try:
                problem = orjson.loads(body)
            except orjson.JSONDecodeError:
                problem = {"detail": body[:200].decode(errors="replace")}
            raise ApiRefused(self.service, status, problem if isinstance(problem, dict) else {})
        return body

    async def _read(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        content: bytes | AsyncIterable[bytes] | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[int, bytes]:
        async with self._http.stream(
            method,
            f"{self._base_url}{path}",
            params=params,
            content=content,
            headers=self._headers | dict(headers or {}),
        ) as answer:
            chunks, size = [], 0
            async for chunk in answer.aiter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise ServiceUnavailable(self.service, "answered more than the console reads")
                chunks.append(chunk)
            return answer.status_code, b"".join(chunks)

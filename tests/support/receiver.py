"""A real HTTP receiver on a loopback port (uvicorn), recording what it is sent and answering
as the test scripts it: a stand-in for a merchant's webhook endpoint or Alertmanager."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from tests.support.ports import free_port

Answer = tuple[int, dict[str, str]]  # status, headers


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # monotonic
    wall: float  # time.time(), to compare with times other processes noted

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    # Called for each request (after it is recorded): the answer to give.
    answer: Callable[[Received], Answer] = lambda _: (200, {})
    delay: float = 0.0  # seconds to wait before answering
    # For each request: None, or send the headers and then one byte every this many seconds
    # until the receiver closes (a hostile endpoint's answer that never ends).
    trickle: Callable[[Received], float | None] = lambda _: None
    in_flight: int = 0  # requests received and not answered yet
    closing: bool = False

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        got = Received(
            request.url.path,
            dict(request.headers),
            await request.body(),
            time.monotonic(),
            time.time(),
        )
        self.received.append(got)
        self.in_flight += 1
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        status, headers = self.answer(got)
        every = self.trickle(got)
        if every is None:
            await Response(status_code=status, headers=headers)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": status, "headers": []})
        while not self.closing:
            await send({"type": "http.response.body", "body": b" ", "more_body": True})
            await asyncio.sleep(every)
        await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    rec = Receiver(url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(
            rec.app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            interface="asgi3",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield rec
    finally:
        rec.closing = True
        server.should_exit = True
        await task

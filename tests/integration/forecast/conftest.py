"""A local aiohttp server that answers like a provider would, faults included."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

Reply = web.Response | Callable[[web.Request], Any]


@dataclass
class FakeService:
    """Per path, a queue of replies (the last one repeats); records every request."""

    server: TestServer | None = None
    replies: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[web.Request] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def on(self, path: str, *replies: Reply) -> None:
        self.replies[path] = list(replies)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        queue = self.replies.get(request.path)
        if not queue:
            return web.Response(status=404, text="no such path")
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(reply):
            result = reply(request)
            if asyncio.iscoroutine(result):
                result = await result
            return result  # type: ignore[no-any-return]
        # a Response can be sent once: answer with a fresh copy each time
        headers = {k: v for k, v in reply.headers.items() if k.lower() != "content-length"}
        return web.Response(status=reply.status, body=reply.body, headers=headers)


def ok(body: Any) -> web.Response:
    return web.Response(text=json.dumps(body), content_type="application/json")


def status(code: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=code, text=json.dumps({"error": code}), headers=headers,
                        content_type="application/json")


def malformed() -> web.Response:
    return web.Response(text="{not json", content_type="application/json")


async def hang(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="{}")


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    fake = FakeService()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.server = server
    try:
        yield fake
    finally:
        await server.close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def http(sleeps: list[float]) -> dict[str, Any]:
    import random

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return {"sleep": fake_sleep, "rng": random.Random(0)}

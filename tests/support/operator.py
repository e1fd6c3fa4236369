"""Run the real operator (kopf + our KubeApi) against the emulator, in-loop.

``async with running_operator(emulator, clock, ...) as op:`` starts ``kopf.operator()``
as a task of the test's own event loop (so looptime fakes its time), with a login handler
pointing at the emulator's URL, and stops it gracefully on exit. Use it inside the test
body, not in a fixture: looptime only fakes time while the test function runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import kopf

from suandian.config import Settings
from suandian.controllers import OperatorParts, build
from suandian.controllers.clock import Clock
from suandian.controllers.context import KeeperFactory
from suandian.controllers.heap import HeapPolicy
from suandian.k8s.client import KubeApi
from suandian.k8s.connection import Connection

if TYPE_CHECKING:  # the benchmark runs an operator without the emulator (or kmock) loaded
    from tests.support.emulator import ApiEmulator

__all__ = ["OperatorHandle", "free_port", "running_operator"]


@dataclass
class OperatorHandle:
    parts: OperatorParts
    task: asyncio.Task[None]
    stop_flag: asyncio.Event
    api: KubeApi

    async def stop(self) -> None:
        """Graceful shutdown, as on SIGTERM."""
        self.stop_flag.set()
        await asyncio.wait_for(self.task, timeout=60)
        await self.api.aclose()

    async def kill(self) -> None:
        """Abrupt death, as of the process: every task of kopf and Suandian is cancelled
        at once (daemons included), nothing is written on the way out."""
        # kopf SIGKILLs its own thread when cancelled without its stop flag: not in tests
        self.parts.settings.process.ultimate_exiting_timeout = None
        doomed = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()
                  and _owned(t)]
        for task in doomed:
            task.cancel()
        await asyncio.wait(doomed, timeout=10)
        await self.api.aclose()


def _owned(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    where = getattr(code, "co_filename", "") or ""
    return "/kopf/" in where or "/suandian/" in where


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_operator(
    emulator: ApiEmulator, clock: Clock, keeper_factory: KeeperFactory, **kwargs: Any,
) -> AsyncIterator[OperatorHandle]:
    """:func:`start_operator` (same options) as a context that stops it on the way out."""
    handle = await start_operator(emulator, clock, keeper_factory, **kwargs)
    try:
        yield handle
    finally:
        if not handle.task.done():
            await handle.stop()


async def start_operator(
    emulator: ApiEmulator,
    clock: Clock,
    keeper_factory: KeeperFactory,
    *,
    settings: Settings | None = None,
    webhook_port: int | None = None,
    webhook: kopf.WebhookServer | None = None,
    standalone: bool = True,
    priority: int = 0,
    heap: HeapPolicy | None = None,
    token: str | None = None,
    ca_file: str | None = None,
    **kwargs: Any,
) -> OperatorHandle:
    """Start the operator in this event loop against ``emulator.url`` (anything with a
    ``url``: a real API server too, with a bearer ``token`` and its ``ca_file``).
    ``webhook_port``: serve the admission webhook there over plain HTTP, or ``webhook``:
    this server."""
    url = str(emulator.url).rstrip("/")
    if token is None:
        api = KubeApi.for_server(url, timeout=(5.0, 10.0))
    else:
        api = KubeApi(Connection.for_token(url, token, ca_file=ca_file), timeout=(5.0, 10.0))

    def login(**_: Any) -> kopf.ConnectionInfo:
        if token is None:
            return kopf.ConnectionInfo(server=url, insecure=True)
        return kopf.ConnectionInfo(server=url, scheme="Bearer", token=token, ca_path=ca_file)

    if webhook is None and webhook_port is not None:
        webhook = kopf.WebhookServer(addr="127.0.0.1", port=webhook_port, insecure=True)
    # full rounds in a thread: the tests look into them (the real process runs in envtest)
    settings = settings or Settings(plan_batch_window=0.02, full_rounds="thread")
    parts = build(settings=settings, api=api, clock=clock,
                  keeper_factory=keeper_factory, login=login, webhook=webhook, heap=heap)
    parts.settings.watching.inactivity_timeout = 24 * 3600  # the emulator sends no bookmarks
    parts.settings.networking.request_timeout = 10.0
    parts.settings.peering.lifetime = 5
    parts.settings.peering.interval = 1
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(kopf.operator(
        registry=parts.registry, settings=parts.settings, memo=parts.memo,
        clusterwide=True, standalone=standalone, priority=priority,
        peering_name=None if standalone else parts.settings.peering.name,
        stop_flag=stop, ready_flag=ready, **kwargs))
    waiter = asyncio.ensure_future(ready.wait())
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        await api.aclose()
        task.result()  # raise what stopped it
    return OperatorHandle(parts=parts, task=task, stop_flag=stop, api=api)

"""The list + watch mirror against the emulator: pages, resumes, 410 Gone, faults."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from tests.support.objects import JOBS, eventually

from suandian.k8s import mirror as mirror_module
from suandian.k8s.client import KubeApi
from suandian.k8s.mirror import mirror

pytestmark = pytest.mark.looptime

PATH = "/apis/batch/v1/jobs"


def job(name: str, managed: bool = True) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "suandian"} if managed else {}
    return {"metadata": {"name": name, "namespace": "batch", "labels": labels}, "spec": {}}


class View:
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.resets = 0

    def apply(self, kind: str, obj: Any) -> None:
        name = obj["metadata"]["name"]
        (self.names.discard if kind == "DELETED" else self.names.add)(name)

    def reset(self, objs: Any) -> None:
        self.resets += 1
        self.names = {o["metadata"]["name"] for o in objs}


@contextlib.asynccontextmanager
async def mirrored(api: Any, view: View, **kwargs: Any):  # type: ignore[no-untyped-def]
    client = KubeApi.for_server(str(api.url))
    task = asyncio.create_task(mirror(client, PATH, apply=view.apply, reset=view.reset,
                                      label_selector="app.kubernetes.io/managed-by=suandian",
                                      retry_delay=2.0, **kwargs))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()


async def test_lists_in_pages_then_follows_changes_by_label(api, monkeypatch) -> None:
    monkeypatch.setattr(mirror_module, "PAGE", 2)
    for i in range(5):
        api.create(JOBS, job(f"j{i}"))
    api.create(JOBS, job("theirs", managed=False))
    view = View()
    async with mirrored(api, view):
        await eventually(lambda: len(view.names) == 5, what="the listing")
        assert api.pages_served >= 3  # 5 in pages of 2
        api.create(JOBS, job("new"))
        api.remove(JOBS, "batch", "j0")
        await eventually(lambda: "new" in view.names and "j0" not in view.names,
                         what="the changes")
    assert "theirs" not in view.names and view.resets == 1


async def test_a_stream_that_ends_is_resumed_without_listing_again(api) -> None:
    view = View()
    async with mirrored(api, view, watch_seconds=60):
        await eventually(lambda: view.resets == 1, what="the listing")
        await asyncio.sleep(200)  # three streams ended by their timeoutSeconds
        api.create(JOBS, job("late"))
        await eventually(lambda: "late" in view.names, what="the change")
        api.drop_watches()
        api.create(JOBS, job("after-drop"))
        await eventually(lambda: "after-drop" in view.names, what="the change")
    assert view.resets == 1


async def test_gone_and_errors_list_again_and_drop_what_was_deleted(api, monkeypatch) -> None:
    api.create(JOBS, job("keep"))
    api.create(JOBS, job("doomed"))
    view = View()
    async with mirrored(api, view):
        await eventually(lambda: view.names == {"keep", "doomed"}, what="the listing")
        # the watch breaks; while it is down "doomed" goes and the history is compacted
        # away (its DELETED event is never streamed), and the next listing fails once
        api.fail(action="list", plural="jobs", status=503, times=1)
        api.drop_watches()
        api.remove(JOBS, "batch", "doomed")
        for log in api._logs.values():
            log.compacted = int(api._rv)  # every version before now: 410 Gone
        await eventually(lambda: view.names == {"keep"}, timeout=60, what="the relisting")
    assert view.resets == 2


async def test_a_broken_stream_is_watched_again_from_where_it_was(api) -> None:
    api.create(JOBS, job("a"))
    view = View()
    async with mirrored(api, view):
        await eventually(lambda: view.resets == 1, what="the listing")
        api.fail(action="watch", plural="jobs", status=500, times=2)
        api.drop_watches()
        api.create(JOBS, job("b"))  # happens while the watch is failing
        await eventually(lambda: "b" in view.names, timeout=60, what="the change")
    assert view.resets == 1  # resumed from its version: no second listing


async def test_a_bug_in_apply_does_not_stop_the_mirror(api) -> None:
    view = View()
    calls = []

    def flaky(kind: str, obj: Any) -> None:
        calls.append(obj["metadata"]["name"])
        if len(calls) == 1:
            raise KeyError("a bug")
        view.apply(kind, obj)

    client = KubeApi.for_server(str(api.url))
    task = asyncio.create_task(mirror(client, PATH, apply=flaky, reset=view.reset,
                                      retry_delay=2.0))
    try:
        await eventually(lambda: view.resets == 1, what="the listing")
        api.create(JOBS, job("first"))  # apply raises: listed again, not lost
        await eventually(lambda: "first" in view.names, timeout=60, what="recovery")
        assert view.resets == 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()


async def test_open_watches_do_not_take_the_requests_connections(api) -> None:
    client = KubeApi.for_server(str(api.url), max_connections=1, timeout=(5.0, 10.0))
    views = [View(), View()]
    tasks = [asyncio.create_task(mirror(client, PATH, apply=v.apply, reset=v.reset))
             for v in views]
    try:
        await eventually(lambda: all(v.resets == 1 for v in views), what="two watches")
        page = await client.request("GET", PATH)  # the one request connection is free
        assert "items" in page
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()

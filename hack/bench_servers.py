"""The API-server side of ``hack/bench_operator.py``: the emulator, or a real control plane.

Each runs in a child process, creates the cluster (Nodes, PowerSites, idle ComputeJobs),
then answers the operator side's commands over a pipe:

- ``("wait-decided", prefix, count, timeout)`` -> (decided, deferred) so far;
- ``("burst", prefix, count, rate)`` -> the decision latencies of ``count`` new jobs
  created at ``rate`` per second (creation to a status with ``plannedStart``);
- ``("writes",)`` -> the write requests (create, patch, update, delete) the operator
  sent so far, by resource: ``{"computejobs/status": n, "jobs": n, "events": n, ...}``;
- ``("stop",)`` -> prints what the operator asked of the server, answers ``"bye"``.

Where the times come from: the emulator stamps creation and decision when it stores
them; against the real server, creation is when the POST returns and decision when the
watch event that carries ``plannedStart`` arrives here (a few ms after it is stored).
"""

from __future__ import annotations

import asyncio
import gc
import json
import ssl
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

SITES = ("ningxia", "gansu", "guizhou", "inner-mongolia")
# Green kW per site from 24 h on: enough for every idle job to wait for it (10,000 jobs of
# 60 kW at the site), so the memory case really holds that many deferred jobs.
GREEN_KW = 250_000.0
REGION = "topology.kubernetes.io/region"
CJ = "suandian.io/v1alpha1/computejobs"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Recorder:
    """Creation and decision times of the jobs, by name; the command loop over them."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self.decided: dict[str, float] = {}
        self.phases: dict[str, str] = {}
        self.stages: dict[str, dict[str, float]] = {}

    def saw(self, name: str, status: dict[str, Any] | None) -> None:
        status = status or {}
        if status.get("phase"):
            self.phases[name] = status["phase"]
        if name not in self.decided and status.get("plannedStart"):
            self.decided[name] = time.perf_counter()

    def count(self, prefix: str, phase: str | None = None) -> int:
        if phase is None:
            return sum(1 for k in self.decided if k.startswith(prefix))
        return sum(1 for k, p in self.phases.items() if k.startswith(prefix) and p == phase)

    async def serve(self, conn: Any, create: Callable[[str], Awaitable[None]],
                    requests: Callable[[], None],
                    writes: Callable[[], dict[str, int]]) -> None:
        """Answer the operator side's commands until ``stop``."""
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command[0] == "wait-decided":
                prefix, count, timeout = command[1:]
                deadline = time.perf_counter() + timeout
                while time.perf_counter() < deadline and self.count(prefix) < count:
                    await asyncio.sleep(0.2)
                conn.send((self.count(prefix), self.count(prefix, "Deferred")))
            elif command[0] == "burst":
                conn.send(await self.burst(*command[1:], create=create))
            elif command[0] == "writes":
                conn.send(writes())
            elif command[0] == "stop":
                requests()
                conn.send("bye")
                return

    async def burst(self, prefix: str, count: int, rate: float,
                    create: Callable[[str], Awaitable[None]]) -> list[float]:
        gc.collect()  # what was made so far, out of this process's collector's way
        gc.freeze()
        t0 = time.perf_counter()
        pending = set()
        for i in range(count):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.add(asyncio.ensure_future(create(f"{prefix}{i}")))
        await asyncio.gather(*pending)
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline and self.count(prefix) < count:
            await asyncio.sleep(0.1)
        for stage in ("first_patch", "child"):
            values = sorted(s[stage] - self.created[k] for k, s in self.stages.items()
                            if k.startswith(prefix) and stage in s and k in self.created)
            if values:
                log(f"  {stage}: median {values[len(values) // 2] * 1e3:.0f} ms")
        # in creation order (the operator side prints the latency over the burst)
        return [self.decided[k] - self.created[k]
                for k in sorted(self.created, key=self.created.__getitem__)
                if k.startswith(prefix) and k in self.decided]


# -- the emulator ----------------------------------------------------------------------------

def serve_emulator(conn: Any, nodes: int, idle_jobs: int) -> None:
    asyncio.run(_serve_emulator(conn, nodes, idle_jobs))


async def _serve_emulator(conn: Any, nodes: int, idle_jobs: int) -> None:
    from kmock import Server
    from tests.integration.conftest import register_resources
    from tests.support.emulator import ApiEmulator
    from tests.support.forecasts import powersite
    from tests.support.objects import computejob

    api = ApiEmulator(keep_history=False)
    rec = Recorder()

    def on_change(change: Any) -> None:
        name = change.obj["metadata"]["name"]
        if change.plural == "jobs" and change.type == "ADDED":
            rec.stages.setdefault(name, {})["child"] = time.perf_counter()
        if change.plural != "computejobs":
            return
        if change.type == "MODIFIED":
            rec.stages.setdefault(name, {}).setdefault("first_patch", time.perf_counter())
        if change.type == "ADDED":
            rec.created[name] = time.perf_counter()
        rec.saw(name, change.obj.get("status"))

    async def create(name: str) -> None:
        api.create(CJ, computejob(name, namespace="burst"))

    async with api, Server(api) as _server:
        register_resources(api)
        api.listen(on_change)
        for i in range(nodes):
            site = SITES[i % len(SITES)]
            api.create("v1/nodes", {"metadata": {"name": f"node-{i}", "labels": {
                REGION: site, "kubernetes.io/hostname": f"node-{i}"}}})
            api.change("v1/nodes", None, f"node-{i}", {"status": {"allocatable": {
                "cpu": "64", "memory": "256Gi", "pods": "110"}}}, "status")
        for site in SITES:
            api.create("suandian.io/v1alpha1/powersites", powersite(site, site,
                                                                    wind_kw=GREEN_KW))
        for i in range(idle_jobs):
            api.create(CJ, computejob(f"idle-{i}", namespace="idle", max_delay="40h"))
        # The emulator stands in for the API server, written in Go; a full collection of
        # its Python heap (second-long with 25,000 objects stored) is not the operator's
        # latency, so what is stored before the run is moved out of the collector's way.
        gc.collect()
        gc.freeze()
        conn.send({"url": str(api.url)})
        await rec.serve(conn, create, lambda: _emulator_requests(api),
                        lambda: _emulator_writes(api))


def _emulator_requests(api: Any) -> None:
    counts = Counter(
        (r.method.value, r.resource.plural if r.resource else r.url.path,
         r.subresource or "", "watch" if (r.params or {}).get("watch") else "")
        for r in api._requests)
    for what, n in counts.most_common(12):
        log(f"  requests {n:6d} {' '.join(x for x in what if x)}")
    detail = Counter(
        ("event " + str((r.data or {}).get("reason"))) if r.resource and
        r.resource.plural == "events" else
        ("job patch " + ",".join(sorted(_keys(r.data))))
        for r in api._requests if r.method.value in ("POST", "PATCH") and
        r.resource and r.resource.plural in ("events", "jobs") and
        not (r.method.value == "POST" and r.resource.plural == "jobs"))
    for what, n in detail.most_common(8):
        log(f"  {n:6d} {what}")


_WRITES = ("POST", "PATCH", "PUT", "DELETE")


def _emulator_writes(api: Any) -> dict[str, int]:
    """Write requests so far by resource (``plural`` or ``plural/subresource``)."""
    return dict(Counter(
        (r.resource.plural if r.resource else r.url.path)
        + (f"/{r.subresource}" if r.subresource else "")
        for r in api._requests if r.method.value in _WRITES))


def _keys(data: Any, prefix: str = "") -> list[str]:
    """Leaf paths of a patch body (which fields a request changed)."""
    if not isinstance(data, dict):
        return [prefix]
    out: list[str] = []
    for k, v in data.items():
        if k in ("annotations", "labels"):
            out.append(f"{prefix}{k}")
        else:
            out.extend(_keys(v, f"{prefix}{k}."))
    return out


# -- a real control plane --------------------------------------------------------------------

def serve_control_plane(conn: Any, nodes: int, idle_jobs: int) -> None:
    asyncio.run(_serve_control_plane(conn, nodes, idle_jobs))


async def _serve_control_plane(conn: Any, nodes: int, idle_jobs: int) -> None:
    """etcd, kube-apiserver, controller manager and scheduler from KUBEBUILDER_ASSETS,
    set up as the real-API tier does; the operator gets the chart ServiceAccount's token."""
    import aiohttp
    from tests.envtest import envkit
    from tests.support.controlplane import ADMIN_TOKEN, ControlPlane
    from tests.support.forecasts import powersite
    from tests.support.objects import computejob

    workdir = Path(tempfile.mkdtemp(prefix="bench-control-plane-"))
    plane = ControlPlane(workdir)

    def setup(kube: Any) -> None:
        envkit.install_crds(kube)
        envkit.install_chart_rbac(kube)
        for name in ("idle", "burst"):
            envkit.namespace(kube, name)

    t0 = time.perf_counter()
    plane.start(setup=setup)
    log(f"control plane up in {time.perf_counter() - t0:.1f} s ({workdir})")
    rec = Recorder()
    context = ssl.create_default_context(cafile=str(plane.ca_file))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    limit = asyncio.Semaphore(16)
    async with aiohttp.ClientSession(plane.url, headers=headers, connector=aiohttp.TCPConnector(
            ssl=context, limit=32)) as http:

        async def send(method: str, path: str, body: Any, kind: str = "application/json",
                       ) -> dict[str, Any]:
            async with limit, http.request(method, path, data=json.dumps(body),
                                           headers={"Content-Type": kind}) as answer:
                got = await answer.json()
                if answer.status >= 300:
                    raise RuntimeError(f"{method} {path}: {answer.status} {got}")
                return dict(got)

        async def node(i: int) -> None:
            name = f"node-{i}"
            await send("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                       "metadata": {"name": name, "labels": {
                           REGION: SITES[i % len(SITES)], "kubernetes.io/hostname": name}}})
            merge = "application/merge-patch+json"
            await send("PATCH", f"/api/v1/nodes/{name}", {"spec": {"taints": None}}, merge)
            capacity = {"cpu": "64", "memory": "256Gi", "pods": "110"}
            await send("PATCH", f"/api/v1/nodes/{name}/status", {"status": {
                "capacity": capacity, "allocatable": capacity, "conditions": [
                    {"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}, merge)

        async def create(name: str, namespace: str = "burst", delay: str = "12h") -> None:
            body = computejob(name, namespace=namespace, max_delay=delay)
            await send("POST", f"/apis/{CJ.rsplit('/', 1)[0]}/namespaces/{namespace}/"
                       "computejobs", body)
            rec.created[name] = time.perf_counter()

        watcher = asyncio.create_task(_watch(http, rec))
        watcher.add_done_callback(lambda t: t.cancelled() or t.exception() is None or log(
            f"the watch failed: {t.exception()!r}"))
        t0 = time.perf_counter()
        await asyncio.gather(*(node(i) for i in range(nodes)))
        for site in SITES:
            await send("POST", "/apis/suandian.io/v1alpha1/powersites",
                       powersite(site, site, wind_kw=GREEN_KW))
        await asyncio.gather(*(create(f"idle-{i}", "idle", "40h") for i in range(idle_jobs)))
        log(f"{nodes} Nodes and {idle_jobs} ComputeJobs created in "
            f"{time.perf_counter() - t0:.1f} s")
        token = plane.admin().service_account_token(envkit.NAMESPACE, envkit.SERVICE_ACCOUNT)
        conn.send({"url": plane.url, "token": token, "ca_file": str(plane.ca_file)})
        try:
            await rec.serve(conn, create, lambda: _audited_requests(plane),
                            lambda: _audited_writes(plane))
        finally:
            watcher.cancel()
            plane.stop()


async def _watch(http: Any, rec: Recorder) -> None:
    """Follow every ComputeJob's status (and child Job creations) from the start.

    List, then watch from the list's resourceVersion, as every client does: this build
    with Debian's etcd 3.4 refuses a watch without one ("RequestWatchProgress is
    disabled"), and a watch from a version too old (410) lists again."""
    async def follow(path: str, on: Callable[[str, dict[str, Any]], None]) -> None:
        version = ""
        while True:
            if not version:
                async with http.get(path) as listing:
                    listed = await listing.json()
                for obj in listed.get("items") or []:
                    on("ADDED", obj)
                version = listed["metadata"]["resourceVersion"]
            query = {"watch": "1", "allowWatchBookmarks": "true", "resourceVersion": version}
            async with http.get(path, params=query, timeout=aiohttp_timeout()) as stream:
                async for line in stream.content:
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        version = ""  # 410 Gone, or any other: list again
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        on(event["type"], obj)

    def on_job(kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if kind == "ADDED":
            rec.stages.setdefault(name, {}).setdefault("child", time.perf_counter())

    def on_cj(kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if kind == "MODIFIED":
            rec.stages.setdefault(name, {}).setdefault("first_patch", time.perf_counter())
        rec.saw(name, obj.get("status"))

    await asyncio.gather(follow("/apis/suandian.io/v1alpha1/computejobs", on_cj),
                         follow("/apis/batch/v1/jobs", on_job))


def aiohttp_timeout() -> Any:
    import aiohttp

    return aiohttp.ClientTimeout(total=None, sock_read=None)


def _audited_writes(plane: Any) -> dict[str, int]:
    """The operator's write requests so far by resource, from the audit log."""
    out: Counter[str] = Counter()
    for e in plane.audit_events():
        if e["verb"] in ("create", "patch", "update", "delete") and "serviceaccount" in (
                (e.get("user") or {}).get("username") or ""):
            ref = e.get("objectRef") or {}
            out[ref.get("resource", "?") + (f"/{ref['subresource']}"
                                            if ref.get("subresource") else "")] += 1
    return dict(out)


def _audited_requests(plane: Any) -> None:
    """What the operator's ServiceAccount asked, from the API server's audit log."""
    counts = Counter((e["verb"], (e.get("objectRef") or {}).get("resource", e["requestURI"]),
                      (e.get("objectRef") or {}).get("subresource", ""))
                     for e in plane.audit_events())
    for what, n in counts.most_common(12):
        log(f"  requests {n:6d} {' '.join(x for x in what if x)}")

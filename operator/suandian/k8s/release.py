"""``suandian release``: hand back everything Suandian holds, before it goes away.

What Suandian holds in a cluster is work it has not started yet: child Jobs created
suspended, and Pods kept behind its scheduling gate. With no operator left to start
them they would wait for ever, so ``helm uninstall`` runs this first (the chart's
pre-delete hook), and anyone can run it by hand:

1. **freeze** the operators: an entry of the highest priority in their kopf peering
   object makes every replica pause within a moment (they see it through their watch),
   so none re-suspends or gates what is being released; it expires on its own
   (``--freeze-for``), so an aborted uninstall does not freeze them for good;
2. **start** every suspended child Job of a ComputeJob that is not finished (status:
   ``Running``, condition ``Started`` reason ``Released``, a ``Released`` event): at
   once, where its affinity says, whatever the green forecast (in Karmada mode its own
   PropagationPolicy's dispatch suspension is lifted first, so it goes to its member);
3. **ungate** every opted-in Pod still behind ``suandian.io/green-window``;
4. **drop** Suandian's finalizer from PowerSites and ComputeJobs, so that deleting them
   later never hangs on an operator that is gone.

ComputeJobs that have no child Job yet (invalid, or never placed) keep their status and
wait for Suandian to return: they hold nothing in the cluster. The pure part says what
to do (:func:`release_plan`); :func:`release` does it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from suandian.errors import KubeApiError
from suandian.k8s.client import CRD_PATH, JSON_PATCH, MERGE_PATCH, KubeApi
from suandian.k8s.decision import format_time
from suandian.k8s.jobs import child_job_name
from suandian.k8s.karmada import ANNOTATION_MEMBER, policy_patch, policy_path
from suandian.k8s.pods import MANAGED_LABEL, has_gate, ungate_patch
from suandian.k8s.status import with_condition

__all__ = ["FINALIZER", "FREEZE_PRIORITY", "Released", "freeze_entry", "release",
           "release_plan"]

FINALIZER = "suandian.io/operator"  # kopf's finalizer, as the operator names it
FREEZE_PRIORITY = 2**62
"""Above any replica's: the chart draws each pod's priority from 32 random bits."""
TERMINAL = ("Succeeded", "Failed")
RELEASED = "released when Suandian was stopped: started at once, not planned"


@dataclass
class Released:
    """What a release did (or, in a dry run, would do)."""

    jobs: list[str] = field(default_factory=list)  # child Jobs started, ns/name
    pods: list[str] = field(default_factory=list)  # Pods ungated, ns/name
    finalizers: list[str] = field(default_factory=list)  # objects whose finalizer went
    waiting: list[str] = field(default_factory=list)  # ComputeJobs with no child Job yet
    frozen: list[str] = field(default_factory=list)  # peering objects frozen
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"froze the operators in {', '.join(self.frozen)}" if self.frozen else
               "froze no operator (no peering object found: stop a --standalone one first)",
               f"started {len(self.jobs)} suspended child Jobs",
               f"ungated {len(self.pods)} Pods",
               f"removed Suandian's finalizer from {len(self.finalizers)} objects"]
        if self.waiting:
            out.append(f"left {len(self.waiting)} ComputeJobs without a child Job to wait "
                       f"for Suandian: {', '.join(self.waiting[:10])}"
                       + (" ..." if len(self.waiting) > 10 else ""))
        out += [f"could not: {p}" for p in self.problems]
        return out


def freeze_entry(identity: str, now: datetime, lifetime: timedelta) -> dict[str, Any]:
    """The peering status entry that pauses every operator of the peering (kopf's own
    freeze: a peer of higher priority than theirs, alive for ``lifetime``)."""
    return {"status": {identity: {"priority": FREEZE_PRIORITY, "lastseen": now.isoformat(),
                                  "lifetime": int(lifetime.total_seconds())}}}


def release_plan(computejob: Mapping[str, Any], child: Mapping[str, Any] | None
                 ) -> str:
    """What to do with one ComputeJob: ``start`` its child, ``wait`` (no child yet), or
    ``none`` (finished, or its child already runs)."""
    status = computejob.get("status") or {}
    if status.get("phase") in TERMINAL:
        return "none"
    if child is None:
        return "wait"
    return "start" if (child.get("spec") or {}).get("suspend") else "none"


async def release(api: KubeApi, *, now: datetime, namespaces: Sequence[str] = (),
                  peering: str | None = "suandian", freeze_for: timedelta = timedelta(
                      minutes=10), settle: float = 3.0, dry_run: bool = False) -> Released:
    """Freeze, start, ungate and unfinalize (see the module docstring)."""
    done = Released()
    if peering:
        identity = f"suandian-release@{socket.gethostname()}"
        await _freeze(api, peering, namespaces, freeze_entry(identity, now, freeze_for),
                      done, dry_run)
        if done.frozen and not dry_run:
            await asyncio.sleep(settle)  # the replicas see the entry on their watch
    for ns in namespaces or (None,):
        for cj in await _list(api, f"{CRD_PATH}{_ns(ns)}/computejobs"):
            await _release_job(api, cj, now, done, dry_run)
        pods = await _list(api, f"/api/v1{_ns(ns)}/pods",
                           labelSelector=f"{MANAGED_LABEL}=true")
        for pod in pods:
            if has_gate(pod):
                meta = pod["metadata"]
                done.pods.append(f"{meta['namespace']}/{meta['name']}")
                if not dry_run:
                    await _try(done, f"ungate Pod {done.pods[-1]}", api.patch_pod(
                        meta["namespace"], meta["name"], ungate_patch(pod)))
    for site in await _list(api, f"{CRD_PATH}/powersites"):
        await _unfinalize(api, f"{CRD_PATH}/powersites/{quote(site['metadata']['name'])}",
                          site, done, dry_run)
    return done


async def _release_job(api: KubeApi, cj: dict[str, Any], now: datetime, done: Released,
                       dry_run: bool) -> None:
    meta = cj["metadata"]
    ns, name = meta["namespace"], meta["name"]
    status = cj.get("status") or {}
    child = await api.get_job(ns, status.get("jobName") or child_job_name(name))
    action = release_plan(cj, child)
    path = f"{CRD_PATH}/namespaces/{quote(ns)}/computejobs/{quote(name)}"
    if action == "wait":
        done.waiting.append(f"{ns}/{name}")
    elif action == "start" and child is not None:
        done.jobs.append(f"{ns}/{child['metadata']['name']}")
        member = ((child.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_MEMBER)
        if member and not dry_run:  # Karmada mode: its own policy holds the dispatch back
            await _try(done, f"dispatch Job {done.jobs[-1]} to member {member}", api.request(
                "PATCH", policy_path(ns, child["metadata"]["name"]),
                policy_patch(member, dispatch=True), content_type=MERGE_PATCH))
        if not dry_run:
            started = await _try(done, f"start Job {done.jobs[-1]}", api.patch_job(
                ns, child["metadata"]["name"], {
                    "spec": {"suspend": False},
                    "metadata": {"annotations": {"suandian.io/resumed-at": format_time(now)}}}))
            if started:
                fields = {"phase": "Running", "reason": RELEASED,
                          "conditions": with_condition(status.get("conditions"), "Started",
                                                       True, "Released", RELEASED, now)}
                if not status.get("startedAt"):
                    fields["startedAt"] = format_time(now)
                await _try(done, f"write the status of {ns}/{name}", api.request(
                    "PATCH", f"{path}/status", {"status": fields}, content_type=MERGE_PATCH))
                await _try(done, f"post an event on {ns}/{name}", _event(api, cj, now))
    await _unfinalize(api, path, cj, done, dry_run)


async def _freeze(api: KubeApi, peering: str, namespaces: Sequence[str],
                  entry: dict[str, Any], done: Released, dry_run: bool) -> None:
    # listed, not read one by one: the operator's RBAC grants list, watch and patch only
    collections = ([f"/apis/kopf.dev/v1/namespaces/{quote(ns)}/kopfpeerings"
                    for ns in namespaces] if namespaces else
                   ["/apis/kopf.dev/v1/clusterkopfpeerings"])
    for collection in collections:
        try:
            names = {p["metadata"]["name"] for p in await _list(api, collection)}
        except KubeApiError as exc:
            if exc.status != 404:  # 404: kopf's peering CRDs are not installed
                raise
            names = set()
        if peering not in names:
            continue
        path = f"{collection}/{quote(peering)}"
        done.frozen.append(path.split("/apis/kopf.dev/v1/", 1)[1])
        if not dry_run:
            await _try(done, f"freeze {path}", api.request(
                "PATCH", path, entry, content_type=MERGE_PATCH))


async def _unfinalize(api: KubeApi, path: str, obj: Mapping[str, Any], done: Released,
                      dry_run: bool) -> None:
    finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
    if FINALIZER not in finalizers:
        return
    done.finalizers.append(path.rsplit(f"{CRD_PATH}/", 1)[-1])
    if not dry_run:
        kept = [f for f in finalizers if f != FINALIZER]
        await _try(done, f"drop the finalizer of {path}", api.request("PATCH", path, [
            {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
            {"op": "replace", "path": "/metadata/finalizers", "value": kept}],
            content_type=JSON_PATCH))


async def _event(api: KubeApi, cj: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    meta = cj["metadata"]
    return await api.request("POST", f"/api/v1/namespaces/{quote(meta['namespace'])}/events", {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": cj.get("apiVersion"), "kind": cj.get("kind"),
                           "name": meta["name"], "namespace": meta["namespace"],
                           "uid": meta.get("uid")},
        "reason": "Released", "message": RELEASED, "type": "Normal",
        "source": {"component": "suandian-release"},
        "firstTimestamp": format_time(now), "lastTimestamp": format_time(now), "count": 1,
    })


async def _list(api: KubeApi, path: str, **query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        page = await api.request("GET", path, query={**query, "limit": "500",
                                                     **({"continue": token} if token else {})})
        items += page.get("items") or []
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return items


async def _try(done: Released, what: str, call: Any) -> bool:
    """Await ``call``; a refusal is noted (the release goes on with the rest)."""
    try:
        await call
    except KubeApiError as exc:
        done.problems.append(f"{what}: {exc}")
        return False
    return True


def _ns(namespace: str | None) -> str:
    return f"/namespaces/{quote(namespace)}" if namespace else ""

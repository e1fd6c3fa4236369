"""The cluster view's feeds: Nodes, bound Pods and child Jobs, mirrored without kopf.

Each feed is a :func:`suandian.k8s.mirror.mirror` loop (list + watch) whose events land in
the :class:`~suandian.controllers.view.ClusterCache`: kopf would keep a memory of its own
for each of these objects and has no handler to run for them (see :mod:`suandian.k8s.mirror`).
A node added or removed asks for a full planning round; a child Job's change wakes its
ComputeJob's step. The feeds run on every replica (they only read), from operator start
to cleanup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from suandian.controllers.context import Context
from suandian.controllers.view import listed_child, listed_node, listed_pod
from suandian.k8s.jobs import ANNOTATION_OWNER_UID, LABEL_MANAGED_BY, MANAGED_BY
from suandian.k8s.mirror import mirror

__all__ = ["start_feeds"]

NODES = "/api/v1/nodes"
PODS = "/api/v1/pods"
JOBS = "/apis/batch/v1/jobs"


def _owner(job: Mapping[str, Any]) -> str | None:
    owner = ((job.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_OWNER_UID)
    return str(owner) if owner else None


def node_feed(ctx: Context) -> tuple[Any, Any]:
    def apply(kind: str, node: Mapping[str, Any]) -> None:
        name = str(node["metadata"]["name"])
        ctx.cluster.set_node(name, None if kind == "DELETED" else node)
        if kind != "MODIFIED":  # added or deleted: capacity changed
            ctx.planning.replan()

    def reset(nodes: Sequence[Mapping[str, Any]]) -> None:
        names = {str(n["metadata"]["name"]) for n in nodes}
        for gone in set(ctx.cluster.nodes) - names:
            ctx.cluster.set_node(gone, None)
        for node in nodes:
            ctx.cluster.set_node(str(node["metadata"]["name"]), node)
        ctx.planning.replan()

    return apply, reset


def pod_feed(ctx: Context) -> tuple[Any, Any]:
    def apply(kind: str, pod: Mapping[str, Any]) -> None:
        ctx.cluster.set_pod(str(pod["metadata"]["uid"]), None if kind == "DELETED" else pod)

    def reset(pods: Sequence[Mapping[str, Any]]) -> None:
        uids = {str(p["metadata"]["uid"]) for p in pods}
        for gone in set(ctx.cluster.pod_nodes) - uids:
            ctx.cluster.set_pod(gone, None)
        for pod in pods:
            ctx.cluster.set_pod(str(pod["metadata"]["uid"]), pod)

    return apply, reset


def job_paths(namespaces: Sequence[str]) -> list[tuple[str, str | None]]:
    """Where to mirror child Jobs from, with the namespace each path covers (None: all).

    An operator serving named namespaces may read Jobs only there (the chart grants them
    per namespace), so it mirrors each; with a pattern among them (kopf's globs
    ``batch-*``, lists ``a,b``, exclusions ``!kube-system``) it cannot know the
    namespaces in advance and mirrors all (which needs the cluster-wide
    grant: see docs/helm.md).
    """
    if namespaces and not any(set(ns) & set("*?[]!, ") for ns in namespaces):
        return [(f"/apis/batch/v1/namespaces/{quote(ns)}/jobs", ns) for ns in namespaces]
    return [(JOBS, None)]


def job_feed(ctx: Context, wake: Any, namespace: str | None = None) -> tuple[Any, Any]:
    def apply(kind: str, job: Mapping[str, Any]) -> None:
        owner = _owner(job)
        if owner:
            ctx.cluster.set_child(owner, None if kind == "DELETED" else job)
            wake(owner)

    def covered(owner: str) -> bool:
        if namespace is None:
            return True
        child = ctx.cluster.child(owner)
        return child is not None and child["metadata"].get("namespace") == namespace

    def reset(jobs: Sequence[Mapping[str, Any]]) -> None:
        owned = {o: j for j in jobs if (o := _owner(j))}
        for gone in set(ctx.cluster.child_jobs) - set(owned):
            if not covered(gone):
                continue  # another namespace's feed keeps it
            ctx.cluster.set_child(gone, None)
            wake(gone)
        for owner, job in owned.items():
            ctx.cluster.set_child(owner, job)
            wake(owner)

    return apply, reset


def wake_all_jobs(ctx: Context, wake_job: Any) -> None:
    """Step every ComputeJob with a child (a backend's feed changed what its
    ``trouble`` reads: a member cluster's readiness)."""
    for owner in list(ctx.cluster.child_jobs):
        wake_job(owner)


def start_feeds(ctx: Context, wake_job: Any,
                namespaces: Sequence[str] = ()) -> list[asyncio.Task[None]]:
    """Start the feeds (``wake_job(owner_uid)``: a child Job changed; ``namespaces``:
    the patterns the operator serves, empty for all)."""
    retry = ctx.settings.retry_delay
    feeds = []
    managed = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
    kept = ctx.cluster.kept_annotations

    def child(job: Mapping[str, Any]) -> Mapping[str, Any]:
        return listed_child(job, kept)

    for path, (apply, reset), selector, slim in (
        (NODES, node_feed(ctx), None, listed_node),
        (PODS, pod_feed(ctx), None, listed_pod),
        *((path, job_feed(ctx, wake_job, ns), managed, child)
          for path, ns in job_paths(namespaces)),
        *((path, (apply, reset), selector, None)  # what the backend plans on (Kueue's quota)
          for path, apply, reset, selector in ctx.backend.feeds(
              ctx.planning.replan, lambda: wake_all_jobs(ctx, wake_job))),
    ):
        feeds.append(asyncio.create_task(
            mirror(ctx.api, path, apply=apply, reset=reset, label_selector=selector,
                   retry_delay=retry, slim=slim), name=f"suandian-mirror {path}"))
    return feeds

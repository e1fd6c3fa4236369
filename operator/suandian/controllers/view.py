"""The cluster as the planner needs it: each site's nodes and their free capacity.

Watch handlers (registered in :mod:`suandian.controllers`) keep a small record of every
Node and of every bound, unfinished Pod's requests in :class:`ClusterCache`, current from
kopf's watch streams, so a decision never lists the cluster. They are plain dicts, not
kopf indexes: kopf holds every handler of every resource until all indexes are filled,
and that barrier is quadratic in the number of objects (10,000 ComputeJobs and 5,000
Nodes did not start in minutes). The first full planning round may therefore see part of
the nodes; every node listed or added asks for another full round, so it converges as
the listing arrives. :class:`ClusterView` reads the cache.

Free capacity of a site = sum over its nodes of (allocatable - requests of the pods bound
there), in planner units (CPU cores, GiB of memory, GPUs).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from suandian.k8s.jobs import (
    ANNOTATION_OWNER_UID,
    ANNOTATION_RESUMED_AT,
    ANNOTATION_RUN_SECONDS,
    LABEL_SITE,
)
from suandian.planner import DEFAULT_RESOURCES
from suandian.planner.build import planner_quantities

__all__ = ["CHILD_ANNOTATIONS", "CHILD_LABELS", "ClusterCache", "ClusterView", "NodeRecord",
           "child_view", "listed_child", "listed_node", "listed_pod", "node_record",
           "pod_request_record", "selects"]

_FINISHED = ("Succeeded", "Failed")

CHILD_LABELS = (LABEL_SITE,)
"""The child Job labels anything reads back (the site it was placed at)."""
CHILD_ANNOTATIONS = (ANNOTATION_RUN_SECONDS, ANNOTATION_RESUMED_AT)
"""The child Job annotations anything reads back (its run time so far), besides the
backend's own (:attr:`~suandian.backends.base.Backend.kept_annotations`)."""
CHILD_STATUS = ("startTime", "completionTime", "active")
"""The child Job status fields read back, besides each condition's type and status."""


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """What the planner needs of a Node: labels and allocatable, in planner units."""

    name: str
    labels: Mapping[str, str]
    allocatable: Mapping[str, float]
    schedulable: bool


def node_record(name: str, body: Mapping[str, Any]) -> NodeRecord:
    """A Node manifest as a :class:`NodeRecord` (unschedulable nodes kept, but marked).

    Label keys and values are interned: thousands of nodes share a handful of keys and
    of values (region, zone, instance type), as one string object each."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    spec = body.get("spec") or {}
    return NodeRecord(
        name=sys.intern(str(name)),
        labels={sys.intern(str(k)): sys.intern(str(v))
                for k, v in (meta.get("labels") or {}).items()},
        allocatable=planner_quantities(status.get("allocatable")),
        schedulable=not spec.get("unschedulable", False),
    )


def pod_request_record(body: Mapping[str, Any]) -> dict[str, float] | None:
    """The summed container requests of a bound, unfinished Pod; None for other pods."""
    spec = body.get("spec") or {}
    phase = (body.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in _FINISHED:
        return None
    total: dict[str, float] = {}
    for container in spec.get("containers") or []:
        requests = (container.get("resources") or {}).get("requests")
        for name, amount in planner_quantities(requests).items():
            total[name] = total.get(name, 0.0) + amount
    return total


def _version(body: Mapping[str, Any]) -> int | None:
    raw = (body.get("metadata") or {}).get("resourceVersion")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _only(values: Mapping[str, Any] | None, keys: Iterable[str]) -> dict[str, Any]:
    values = values or {}
    return {k: values[k] for k in keys if k in values}


def child_view(body: Mapping[str, Any], annotations: Iterable[str] = CHILD_ANNOTATIONS
               ) -> dict[str, Any]:
    """What the controllers and backends read of a child Job, and nothing else.

    Of a served Job (some 27 KB once decoded: managedFields, the whole pod template,
    the Job controller's bookkeeping) this keeps ``metadata.name``, ``namespace`` and
    ``uid``, the labels in :data:`CHILD_LABELS`, the ``annotations`` named (our
    :data:`CHILD_ANNOTATIONS` and the backend's), ``spec.suspend``, the status fields in
    :data:`CHILD_STATUS` and each condition's ``type`` and ``status``. A move rebuilds
    the affinity from the ComputeJob's template, never from the child's. The same shape
    as a Job, so whoever reads it reads a Job; pruning a pruned view changes nothing.
    """
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    out_status = _only(status, CHILD_STATUS)
    if "conditions" in status:
        out_status["conditions"] = [
            {"type": c.get("type"), "status": c.get("status")}
            for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    return {
        "metadata": {**_only(meta, ("name", "namespace", "uid")),
                     "labels": _only(meta.get("labels"), CHILD_LABELS),
                     "annotations": _only(meta.get("annotations"), annotations)},
        "spec": {"suspend": (body.get("spec") or {}).get("suspend")},
        "status": out_status,
    }


def listed_child(body: Mapping[str, Any], annotations: Iterable[str] = CHILD_ANNOTATIONS
                 ) -> dict[str, Any]:
    """A listed child Job as the feed keeps it until the whole list is in: its
    :func:`child_view`, its owner's uid and its ``resourceVersion`` (ten thousand served
    Jobs held for a listing were 270 MB)."""
    view = child_view(body, (*annotations, ANNOTATION_OWNER_UID))
    version = (body.get("metadata") or {}).get("resourceVersion")
    if version is not None:
        view["metadata"]["resourceVersion"] = version
    return view


def listed_node(body: Mapping[str, Any]) -> dict[str, Any]:
    """A listed Node as the feed keeps it until the whole list is in (what
    :func:`node_record` reads)."""
    meta = body.get("metadata") or {}
    return {"metadata": _only(meta, ("name", "labels")),
            "spec": _only(body.get("spec"), ("unschedulable",)),
            "status": _only(body.get("status"), ("allocatable",))}


def listed_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    """A listed Pod as the feed keeps it until the whole list is in (what
    :func:`pod_request_record` reads): a cluster's every Pod, served, is gigabytes."""
    spec = body.get("spec") or {}
    return {"metadata": _only(body.get("metadata"), ("name", "namespace", "uid")),
            "spec": {**_only(spec, ("nodeName",)), "containers": [
                {"resources": {"requests": (c.get("resources") or {}).get("requests") or {}}}
                for c in spec.get("containers") or [] if isinstance(c, Mapping)]},
            "status": _only(body.get("status"), ("phase",))}


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a PowerSite's ``nodeSelector`` picks a node with these labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@dataclass
class ClusterCache:
    """Nodes, bound pods' requests (by node, then pod uid) and child Jobs (by owner uid),
    as the watch handlers last saw them."""

    nodes: dict[str, list[NodeRecord]] = field(default_factory=dict)
    pod_requests: dict[str, dict[str, Mapping[str, float]]] = field(default_factory=dict)
    pod_nodes: dict[str, str] = field(default_factory=dict)
    # each child's view (child_view) as compact JSON text, by owner uid: ten thousand
    # deferred children as dicts of dicts were 25 MB (every key a string of its own)
    child_jobs: dict[str, str] = field(default_factory=dict)
    child_versions: dict[str, int] = field(default_factory=dict)
    kept_annotations: tuple[str, ...] = CHILD_ANNOTATIONS
    """The child Jobs' annotations kept (ours, and what the backend reads)."""
    node_version: int = 0
    """Bumped whenever a node is recorded or forgotten (views rebuild their index)."""

    def set_node(self, name: str, body: Mapping[str, Any] | None) -> None:
        """Record a node (``None``: it is gone)."""
        self.node_version += 1
        if body is None:
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = [node_record(name, body)]

    def set_pod(self, uid: str, body: Mapping[str, Any] | None) -> None:
        """Record a pod's requests on its node (``None`` or finished: they are freed)."""
        record = pod_request_record(body) if body is not None else None
        node = self.pod_nodes.pop(uid, None)
        if node is not None:
            on_node = self.pod_requests.get(node, {})
            on_node.pop(uid, None)
            if not on_node:
                self.pod_requests.pop(node, None)
        if record is not None and body is not None:
            node = sys.intern(str(body["spec"]["nodeName"]))
            self.pod_nodes[uid] = node
            self.pod_requests.setdefault(node, {})[uid] = record

    def set_child(self, owner: str, body: Mapping[str, Any] | None) -> None:
        """Record what the controllers read of a child Job (``None``: it is gone).

        An older copy never replaces a newer one: the answer to our own patch can be
        recorded before the watch delivers an event from before it, and a listing is a
        snapshot from when its first page was served. (``resourceVersion`` is compared
        as a number, as etcd-backed API servers issue it; one that is not a number is
        taken as newer.)
        """
        if body is None:
            self.child_jobs.pop(owner, None)
            self.child_versions.pop(owner, None)
            return
        version = _version(body)
        known = self.child_versions.get(owner)
        if version is not None and known is not None and version < known:
            return
        if version is not None:
            self.child_versions[owner] = version
        else:
            self.child_versions.pop(owner, None)
        self.child_jobs[owner] = json.dumps(child_view(body, self.kept_annotations),
                                            separators=(",", ":"))

    def child(self, owner: str) -> dict[str, Any] | None:
        """What was recorded of ``owner``'s child Job (None: none is known)."""
        text = self.child_jobs.get(owner)
        return None if text is None else cast(dict[str, Any], json.loads(text))


class ClusterView:
    """Read-only view over the nodes and the bound pods' requests.

    Which nodes a site's selector picks is answered from an index of the nodes by label
    (``(key, value) -> nodes``), built once per change of the nodes (``version``: the
    cache's :attr:`ClusterCache.node_version`; without it, at every call): a full round
    asks for every site's nodes and free capacity, and matching every selector against
    every node was O(sites × nodes) on the event loop (half a second at 50 sites and
    5,000 nodes). With the index it is O(nodes × labels) once, then O(matches).
    """

    def __init__(self, nodes: Mapping[str, Iterable[NodeRecord]],
                 pod_requests: Mapping[str, Mapping[str, Mapping[str, float]]],
                 version: Callable[[], int] | None = None) -> None:
        self._nodes = nodes
        self._pods = pod_requests
        self._version = version
        self._index: tuple[int, dict[tuple[str, str], list[NodeRecord]]] | None = None

    def _by_label(self) -> dict[tuple[str, str], list[NodeRecord]]:
        """Schedulable nodes by each of their labels, in node order."""
        version = self._version() if self._version is not None else None
        if version is not None and self._index is not None and self._index[0] == version:
            return self._index[1]
        index: dict[tuple[str, str], list[NodeRecord]] = {}
        for node in self.nodes():
            if node.schedulable:
                for pair in node.labels.items():
                    index.setdefault(pair, []).append(node)
        if version is not None:
            self._index = (version, index)
        return index

    def nodes(self) -> list[NodeRecord]:
        out: list[NodeRecord] = []
        for name in list(self._nodes):
            out.extend(self._nodes[name])
        return out

    def site_nodes(self, selector: Mapping[str, str]) -> list[NodeRecord]:
        """Schedulable nodes the selector picks (see :func:`selects`), in node order:
        those with its rarest label, filtered by the others."""
        if not selector:
            return []
        index = self._by_label()
        candidates = min((index.get(pair, []) for pair in selector.items()), key=len)
        if len(selector) == 1:
            return list(candidates)
        return [n for n in candidates if selects(selector, n.labels)]

    def used(self, node: str) -> dict[str, float]:
        total: dict[str, float] = {}
        if node in self._pods:
            for request in self._pods[node].values():
                for name, amount in request.items():
                    total[name] = total.get(name, 0.0) + amount
        return total

    def free_capacity(self, selector: Mapping[str, str]) -> dict[str, float]:
        """Allocatable minus bound requests, summed over the site's nodes (never < 0)."""
        free = dict.fromkeys(DEFAULT_RESOURCES, 0.0)
        for node in self.site_nodes(selector):
            used = self.used(node.name)
            for name in DEFAULT_RESOURCES:
                free[name] += max(0.0, node.allocatable.get(name, 0.0) - used.get(name, 0.0))
        return free

    def allocatable(self, selector: Mapping[str, str]) -> dict[str, float]:
        total = dict.fromkeys(DEFAULT_RESOURCES, 0.0)
        for node in self.site_nodes(selector):
            for name in DEFAULT_RESOURCES:
                total[name] += node.allocatable.get(name, 0.0)
        return total

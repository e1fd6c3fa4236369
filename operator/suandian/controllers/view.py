"""The cluster as the planner needs it: each site's nodes and their free capacity.

Kopf indexes (``nodes`` and ``pod_requests``, registered in :mod:`suandian.controllers`)
keep a small record of every Node and of every bound, unfinished Pod's requests. Kopf fills
them from a full list before any handler or daemon runs, and keeps them current from the
watch streams, so a decision never lists the cluster. :class:`ClusterView` reads them.

Free capacity of a site = sum over its nodes of (allocatable - requests of the pods bound
there), in planner units (CPU cores, GiB of memory, GPUs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from suandian.api.units import parse_quantity
from suandian.planner import DEFAULT_RESOURCES
from suandian.planner.build import to_planner_units

__all__ = ["ClusterView", "NodeRecord", "node_record", "pod_request_record", "selects"]

_FINISHED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class NodeRecord:
    """What the planner needs of a Node: labels and allocatable, in planner units."""

    name: str
    labels: Mapping[str, str]
    allocatable: Mapping[str, float]
    schedulable: bool


def _quantities(raw: Mapping[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in (raw or {}).items():
        if name not in DEFAULT_RESOURCES:
            continue
        try:
            out[name] = to_planner_units(name, parse_quantity(value))
        except ValueError:
            continue  # a quantity the API server would not have accepted; ignore it
    return out


def node_record(name: str, body: Mapping[str, Any]) -> NodeRecord:
    """A Node manifest as a :class:`NodeRecord` (unschedulable nodes kept, but marked)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    spec = body.get("spec") or {}
    return NodeRecord(
        name=name,
        labels=dict(meta.get("labels") or {}),
        allocatable=_quantities(status.get("allocatable")),
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
        for name, amount in _quantities((container.get("resources") or {}).get("requests")).items():
            total[name] = total.get(name, 0.0) + amount
    return total


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a PowerSite's ``nodeSelector`` picks a node with these labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class ClusterView:
    """Read-only view over the two kopf indexes (``nodes`` and ``pod_requests``)."""

    def __init__(self, nodes: Mapping[str, Iterable[NodeRecord]],
                 pod_requests: Mapping[str, Iterable[Mapping[str, float]]]) -> None:
        self._nodes = nodes
        self._pods = pod_requests

    def nodes(self) -> list[NodeRecord]:
        out: list[NodeRecord] = []
        for name in list(self._nodes):
            out.extend(self._nodes[name])
        return out

    def site_nodes(self, selector: Mapping[str, str]) -> list[NodeRecord]:
        """Schedulable nodes the selector picks."""
        return [n for n in self.nodes() if n.schedulable and selects(selector, n.labels)]

    def used(self, node: str) -> dict[str, float]:
        total: dict[str, float] = {}
        if node in self._pods:
            for request in self._pods[node]:
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

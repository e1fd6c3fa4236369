"""Kueue: Suandian decides when and where, Kueue admits (and owns ``suspend``).

In a cluster that runs Kueue every Job waits for Kueue to reserve quota and unsuspend
it; two controllers flipping ``suspend`` would fight. So here Suandian never touches
``suspend``:

- the child Job carries its LocalQueue (``kueue.x-k8s.io/queue-name``: the template's,
  else ``SUANDIAN_KUEUE_QUEUE``) and Suandian's gate in
  ``kueue.x-k8s.io/admission-gated-by`` (after any value the template gave: Kueue admits
  only when every gate is gone). While gated it holds no quota (its Workload shows
  ``QuotaReserved=False``, reason ``AdmissionGated``);
- the site is the required node affinity the native backend writes: Kueue assigns only a
  ResourceFlavor whose node labels satisfy it, and injects them at admission;
- the start removes Suandian's value only (a JSON patch that tests the annotation first,
  so another controller's value is never lost); Kueue then admits and unsuspends;
- a job that must move is made again: Kueue keeps a Workload's pod sets from the Job's
  first template, so an affinity patched later would leave the admission on the old
  flavor and the Pod unschedulable (seen on a real Kueue);
- capacity per site is what Kueue would admit there: over every ClusterQueue, the
  nominal quota of the site's flavors (those whose node labels carry the site's node
  selector) minus what is reserved, never more than the nodes hold; borrowing from a
  cohort is not counted (a conservative plan);
- interruptible jobs run to the end once admitted (suspending them would fight Kueue).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from suandian.api.powersite import PowerSiteSpec
from suandian.backends.base import CapacityView, Feed, Patch, nodes_only
from suandian.errors import FieldError, InvalidSpecError, KubeApiError
from suandian.k8s.client import KubeApi
from suandian.k8s.decision import Decision, format_time
from suandian.k8s.jobs import ANNOTATION_RESUMED_AT, LABEL_SITE, build_child_job
from suandian.k8s.pods import GATE
from suandian.planner import DEFAULT_RESOURCES
from suandian.planner.build import to_planner_units
from suandian.units import parse_quantity

__all__ = ["GATED_BY", "KUEUE_API", "QUEUE_LABEL", "KueueBackend", "QuotaView",
           "gates_of"]

GATED_BY = "kueue.x-k8s.io/admission-gated-by"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_API = "/apis/kueue.x-k8s.io/v1beta2"


def gates_of(obj: Mapping[str, Any]) -> list[str]:
    """The values of an object's ``admission-gated-by`` annotation, in order."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(GATED_BY) or ""
    return [g.strip() for g in str(raw).split(",") if g.strip()]


def _escape(key: str) -> str:
    """A key as an RFC 6901 JSON-pointer segment."""
    return key.replace("~", "~0").replace("/", "~1")


class KueueBackend:
    """Kueue admits; Suandian gates, times and places (see the module docstring)."""

    name = "kueue"
    can_suspend = False
    admits = True
    kept_annotations: tuple[str, ...] = (GATED_BY,)

    def __init__(self, queue: str = "default") -> None:
        self.queue = queue
        self.flavors: dict[str, dict[str, str]] = {}  # ResourceFlavor -> its node labels
        self.cluster_queues: dict[str, dict[str, Any]] = {}  # name -> {spec, status}

    # -- the child Job -------------------------------------------------------------------

    def child(self, computejob: Mapping[str, Any], decision: Decision,
              site_selector: Mapping[str, str], duration: timedelta, *, due: bool,
              now: datetime) -> dict[str, Any]:
        body = build_child_job(computejob, decision, site_selector, duration)
        body["spec"].pop("suspend", None)  # Kueue's: its webhook suspends every Job it queues
        meta = body["metadata"]
        meta["labels"].setdefault(QUEUE_LABEL, self.queue)
        gates = [g for g in gates_of(body) if g != GATE] + ([] if due else [GATE])
        if gates:
            meta["annotations"][GATED_BY] = ",".join(gates)
        else:
            meta["annotations"].pop(GATED_BY, None)
        if due:
            meta["annotations"][ANNOTATION_RESUMED_AT] = format_time(now)
        return body

    def release(self, child: Mapping[str, Any], decision: Decision, now: datetime) -> Patch:
        """Remove Suandian's gate value, keep the others (tested first: a concurrent
        change makes the API refuse the patch rather than lose a value)."""
        gates = gates_of(child)
        path = f"/metadata/annotations/{_escape(GATED_BY)}"
        ops: list[dict[str, Any]] = []
        if GATE in gates:
            raw = child["metadata"]["annotations"][GATED_BY]
            kept = [g for g in gates if g != GATE]
            ops.append({"op": "test", "path": path, "value": raw})
            ops.append({"op": "replace", "path": path, "value": ",".join(kept)} if kept
                       else {"op": "remove", "path": path})
        for key, value in {**decision.annotations(),
                           ANNOTATION_RESUMED_AT: format_time(now)}.items():
            ops.append({"op": "add", "path": f"/metadata/annotations/{_escape(key)}",
                        "value": value})
        ops.append({"op": "add", "path": f"/metadata/labels/{_escape(LABEL_SITE)}",
                    "value": decision.site})
        return ops

    def released(self, child: Mapping[str, Any]) -> bool:
        return GATE not in gates_of(child)

    def move(self, child: Mapping[str, Any], decision: Decision,
             site_selector: Mapping[str, str],
             user_affinity: Mapping[str, Any] | None) -> Patch | None:
        return None  # made again: Kueue would keep the first template's flavors

    def hold(self, child: Mapping[str, Any], ran_s: float) -> Patch:
        raise RuntimeError("Kueue owns suspend: a Kueue-mode job is never held again")

    async def prepare(self, api: KubeApi, child: Mapping[str, Any], decision: Decision,
                      placement: Mapping[str, str] | None, *, dispatch: bool) -> None:
        return None  # the child Job is all there is

    def trouble(self, child: Mapping[str, Any]) -> tuple[str, str] | None:
        return None  # the cluster it runs in is the one the operator talks to

    async def waiting(self, api: KubeApi, child: Mapping[str, Any]) -> str | None:
        """Who holds a released child: another gate value, or what Kueue says of its
        Workload (``QuotaReserved`` and ``Admitted`` conditions)."""
        others = [g for g in gates_of(child) if g != GATE]
        if others:
            return f"held by {', '.join(others)} (kueue.x-k8s.io/admission-gated-by)"
        meta = child["metadata"]
        uid = meta.get("uid")
        if not uid:
            return None
        try:
            found = await api.request(
                "GET", f"{KUEUE_API}/namespaces/{quote(meta['namespace'])}/workloads",
                query={"labelSelector": f"kueue.x-k8s.io/job-uid={uid}"})
        except KubeApiError as exc:
            return f"its Kueue Workload could not be read: {exc}"
        for workload in found.get("items") or []:
            for cond in (workload.get("status") or {}).get("conditions") or []:
                if cond.get("type") in ("QuotaReserved", "Admitted") and cond.get(
                        "status") == "False" and cond.get("message"):
                    return f"Kueue: {cond['message']}"
        return "Kueue has not admitted it yet (no Workload condition says why)"

    # -- capacity ------------------------------------------------------------------------

    def view(self, cluster: CapacityView) -> CapacityView:
        return QuotaView(cluster, self)

    def feeds(self, changed: Callable[[], None] | None = None,
              woken: Callable[[], None] | None = None) -> list[Feed]:
        """Mirror ResourceFlavors and ClusterQueues; ``changed`` (a full re-plan) when
        quota or its use changes."""
        def mirror_of(store: dict[str, Any], keep: Callable[[Mapping[str, Any]], Any]
                      ) -> tuple[Callable[[str, Mapping[str, Any]], None],
                                 Callable[[Sequence[Mapping[str, Any]]], None]]:
            def apply(kind: str, obj: Mapping[str, Any]) -> None:
                name = str(obj["metadata"]["name"])
                before = store.get(name)
                if kind == "DELETED":
                    store.pop(name, None)
                else:
                    store[name] = keep(obj)
                if changed is not None and store.get(name) != before:
                    changed()

            def reset(objs: Sequence[Mapping[str, Any]]) -> None:
                store.clear()
                store.update({str(o["metadata"]["name"]): keep(o) for o in objs})
                if changed is not None:
                    changed()

            return apply, reset

        flavors = mirror_of(self.flavors, lambda o: dict(
            (o.get("spec") or {}).get("nodeLabels") or {}))
        queues = mirror_of(self.cluster_queues, lambda o: {
            "spec": dict(o.get("spec") or {}),
            "reserved": (o.get("status") or {}).get("flavorsReservation") or []})
        return [(f"{KUEUE_API}/resourceflavors", *flavors, None),
                (f"{KUEUE_API}/clusterqueues", *queues, None)]

    def free_quota(self, selector: Mapping[str, str]) -> dict[str, float]:
        """Unreserved nominal quota of the site's flavors over every ClusterQueue, by
        resource (planner units); a resource no queue covers is absent (not limited)."""
        site_flavors = {name for name, labels in self.flavors.items()
                        if selector and all(labels.get(k) == v for k, v in selector.items())}
        free: dict[str, float] = {}
        for queue in self.cluster_queues.values():
            reserved = {(f.get("name"), r.get("name")): _units(r.get("name"), r.get("total"))
                        for f in queue["reserved"] for r in f.get("resources") or []}
            for group in queue["spec"].get("resourceGroups") or []:
                for flavor in group.get("flavors") or []:
                    for resource in flavor.get("resources") or []:
                        rname = str(resource.get("name"))
                        if rname not in DEFAULT_RESOURCES:
                            continue
                        free.setdefault(rname, 0.0)
                        if flavor.get("name") not in site_flavors:
                            continue
                        quota = _units(rname, resource.get("nominalQuota"))
                        used = reserved.get((flavor.get("name"), rname), 0.0)
                        free[rname] += max(0.0, quota - used)
        return free

    async def check(self, api: KubeApi) -> None:
        """Refuse to run in Kueue mode against a cluster that serves no Kueue (asked of
        discovery, which every authenticated user may read: an RBAC refusal of the
        resources themselves would say nothing of whether Kueue is there)."""
        try:
            found = await api.request("GET", KUEUE_API)
        except KubeApiError as exc:
            if exc.status != 404:
                raise
            found = {}
        if not any(r.get("name") == "clusterqueues" for r in found.get("resources") or []):
            raise InvalidSpecError("settings", [FieldError("SUANDIAN_MODE", (
                "kueue, but this cluster serves no Kueue API (clusterqueues.kueue.x-k8s.io "
                "v1beta2): install Kueue, or set SUANDIAN_MODE=native"))])

    def site_problem(self, spec: PowerSiteSpec) -> FieldError | None:
        return nodes_only(spec)


class QuotaView:
    """The cluster as the planner sees it in Kueue mode: the nodes, with each site's free
    capacity capped by the quota Kueue would admit there."""

    def __init__(self, cluster: CapacityView, backend: KueueBackend) -> None:
        self._cluster = cluster
        self._backend = backend

    def site_nodes(self, selector: Mapping[str, str]) -> list[Any]:
        return self._cluster.site_nodes(selector)

    def allocatable(self, selector: Mapping[str, str]) -> dict[str, float]:
        return self._cluster.allocatable(selector)

    def free_capacity(self, selector: Mapping[str, str]) -> dict[str, float]:
        nodes = self._cluster.free_capacity(selector)
        quota = self._backend.free_quota(selector)
        return {r: min(v, quota.get(r, math.inf)) for r, v in nodes.items()}


def _units(resource: Any, quantity: Any) -> float:
    try:
        return to_planner_units(str(resource), parse_quantity(quantity or "0"))
    except ValueError:
        return 0.0

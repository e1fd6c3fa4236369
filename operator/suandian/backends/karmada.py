"""Karmada: member clusters are sites; Karmada propagates, Suandian picks where and when.

The operator runs against the Karmada API server, where users create ComputeJobs as
before. For each one (builders in :mod:`suandian.k8s.karmada`):

- the child Job is created there (Karmada's API server runs no Job controller: it is a
  resource template), with a PropagationPolicy of its own, made first, owned by the
  ComputeJob: ``clusterAffinity.clusterNames`` names exactly one member (never two
  copies), ``suspension.dispatching: true`` while the job is deferred, so nothing exists
  in any member until the start;
- a deferred job moves by changing the policy's member (Karmada retargets the binding,
  still undispatched) and the Job's site annotations;
- the start lifts the dispatch suspension, then unsuspends the Job (``spec.suspend`` is
  the hold marker the controllers read, as in native mode); an interruptible job is
  suspended between windows with ``spec.suspend``, which Karmada propagates;
- a PowerSite names its members (``spec.clusters``: names or labels of ``Cluster``
  objects); a site's capacity is the sum over its Ready members of the ``Cluster``
  status resource summary: allocatable − allocated − allocating (see
  docs/karmada.md for why the summary rather than the estimator). A member that is not
  Ready offers nothing: the planner moves held jobs off it; a job already dispatched
  there stays (it may be running, and Karmada cannot reach the member to remove it) and
  is reported through :meth:`KarmadaBackend.trouble`;
- status comes back through Karmada's aggregation into the Job's status (``active``,
  ``startTime``, ``Complete``); a Job dispatched but still suspended in the member shows
  ``status: {}`` there, which the controllers never mistake for anything but its
  ``spec.suspend``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from suandian.api.powersite import MemberClusters, PowerSiteSpec
from suandian.backends.base import CapacityView, Feed, Patch
from suandian.errors import FieldError, InvalidSpecError, KubeApiError, PlanningError
from suandian.k8s.client import MERGE_PATCH, KubeApi
from suandian.k8s.decision import Decision, format_time
from suandian.k8s.jobs import (
    ANNOTATION_RESUMED_AT,
    ANNOTATION_RUN_SECONDS,
    hold_patch,
    suspend_patch,
)
from suandian.k8s.karmada import (
    ANNOTATION_MEMBER,
    CLUSTER_API,
    CLUSTERS,
    POLICY_API,
    choose_member,
    cluster_allocatable,
    cluster_free,
    cluster_ready,
    karmada_job,
    member_patch,
    policy_patch,
    policy_path,
    policy_state,
    propagation_policy,
)
from suandian.planner import DEFAULT_RESOURCES

__all__ = ["KarmadaBackend", "MemberNode", "MemberView"]

@dataclass(frozen=True, slots=True)
class MemberNode:
    """A member cluster as the planner ranks it (the shape of a node record)."""

    name: str
    labels: Mapping[str, str]
    allocatable: Mapping[str, float]
    schedulable: bool = True


class Member:
    """What is kept of one ``Cluster``: labels, readiness, capacity (planner units)."""

    __slots__ = ("allocatable", "free", "labels", "message", "name", "ready")

    def __init__(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        self.name = str(meta.get("name"))
        self.labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        self.ready = cluster_ready(obj)
        self.free = cluster_free(obj)
        self.allocatable = cluster_allocatable(obj)
        self.message = next((str(c.get("message") or c.get("reason") or "")
                             for c in (obj.get("status") or {}).get("conditions") or []
                             if c.get("type") == "Ready"), "no Ready condition yet")

    def key(self) -> tuple[Any, ...]:
        return (self.labels, self.ready, self.free, self.allocatable)


class KarmadaBackend:
    """Member clusters as sites (see the module docstring)."""

    name = "karmada"
    can_suspend = True
    admits = False
    kept_annotations: tuple[str, ...] = (ANNOTATION_MEMBER,)

    def __init__(self) -> None:
        self.members: dict[str, Member] = {}
        self._chosen: dict[tuple[str, str], str] = {}  # (ns, name) -> member, prepare→release

    # -- members -------------------------------------------------------------------------

    def site_members(self, placement: Mapping[str, str] | None, *, ready: bool = True
                     ) -> list[Member]:
        """The members a site names (Ready ones only, unless ``ready`` is False), by name."""
        clusters: MemberClusters | None = getattr(placement, "clusters", None)
        if clusters is None:
            return []
        return [m for _, m in sorted(self.members.items())
                if clusters.picks(m.name, m.labels) and (m.ready or not ready)]

    def target(self, child: Mapping[str, Any], decision: Decision,
               placement: Mapping[str, str] | None) -> str:
        """The one member ``child`` goes to: where it is once it was ever let go (it
        may have run there: a second copy elsewhere could run it twice), else a Ready
        member of the site (:func:`choose_member`)."""
        meta = child.get("metadata") or {}
        current = (meta.get("annotations") or {}).get(ANNOTATION_MEMBER)
        ran = ANNOTATION_RUN_SECONDS in (meta.get("annotations") or {}) or not (
            child.get("spec") or {}).get("suspend", True)
        if current and ran:
            return str(current)
        members = [m.name for m in self.site_members(placement)]
        chosen = choose_member(members, decision.node_preferences, current)
        if chosen is None:
            raise PlanningError(f"site {decision.site} has no Ready member cluster in "
                                "Karmada")
        return chosen

    # -- the child Job -------------------------------------------------------------------

    def child(self, computejob: Mapping[str, Any], decision: Decision,
              site_selector: Mapping[str, str], duration: timedelta, *, due: bool,
              now: datetime) -> dict[str, Any]:
        member = self.target({}, decision, site_selector)  # a child not there yet
        body = karmada_job(computejob, decision, member, duration)
        if due:
            body["spec"]["suspend"] = False
            body["metadata"]["annotations"][ANNOTATION_RESUMED_AT] = format_time(now)
        return body

    async def prepare(self, api: KubeApi, child: Mapping[str, Any], decision: Decision,
                      placement: Mapping[str, str] | None, *, dispatch: bool) -> None:
        """Create or correct the job's PropagationPolicy (member, dispatch) before the
        Job is written; a policy already as wanted is left alone (no request)."""
        meta = child["metadata"]
        ns, name = str(meta["namespace"]), str(meta["name"])
        if not meta.get("uid"):  # a Job about to be created: child() chose its member
            member = str((meta.get("annotations") or {})[ANNOTATION_MEMBER])
        else:  # a move or a release: the patch that follows reads the member chosen here
            member = self._chosen[(ns, name)] = self.target(child, decision, placement)
        try:
            current = await api.request("GET", policy_path(ns, name))
        except KubeApiError as exc:
            if exc.status != 404:
                raise
            current = None
        state = policy_state(current)
        if state is None:
            wanted = propagation_policy(child, member, dispatch=dispatch)
            try:
                await api.request("POST", policy_path(ns), wanted)
            except KubeApiError as exc:
                if exc.status != 409:
                    raise
                await self._patch(api, ns, name, member, dispatch)
        elif state != ((member,), dispatch):
            await self._patch(api, ns, name, member, dispatch)

    @staticmethod
    async def _patch(api: KubeApi, ns: str, name: str, member: str, dispatch: bool) -> None:
        await api.request("PATCH", policy_path(ns, name), policy_patch(member, dispatch=dispatch),
                          content_type=MERGE_PATCH)

    def _member_of(self, child: Mapping[str, Any]) -> str | None:
        meta = child.get("metadata") or {}
        chosen = self._chosen.pop((str(meta.get("namespace")), str(meta.get("name"))), None)
        return chosen or (meta.get("annotations") or {}).get(ANNOTATION_MEMBER)

    def release(self, child: Mapping[str, Any], decision: Decision, now: datetime) -> Patch:
        patch = suspend_patch(False, decision)  # as native: the decision and the site
        member = self._member_of(child)
        if member:
            patch["metadata"]["annotations"][ANNOTATION_MEMBER] = member
        patch["metadata"]["annotations"][ANNOTATION_RESUMED_AT] = format_time(now)
        return patch

    def released(self, child: Mapping[str, Any]) -> bool:
        return not (child.get("spec") or {}).get("suspend")

    def move(self, child: Mapping[str, Any], decision: Decision,
             site_selector: Mapping[str, str],
             user_affinity: Mapping[str, Any] | None) -> Patch | None:
        member = self._member_of(child) or self.target(child, decision, site_selector)
        return member_patch(decision, member)

    def hold(self, child: Mapping[str, Any], ran_s: float) -> Patch:
        return hold_patch(ran_s)

    async def waiting(self, api: KubeApi, child: Mapping[str, Any]) -> str | None:
        return None  # nobody admits: a released Job is dispatched at once

    def trouble(self, child: Mapping[str, Any]) -> tuple[str, str] | None:
        """A released child whose member Karmada finds not Ready (or no longer knows)."""
        if (child.get("spec") or {}).get("suspend"):
            return None  # held: nothing of it is in any member
        name = ((child.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_MEMBER)
        if not name:
            return None
        member = self.members.get(str(name))
        if member is None:
            return ("MemberUnknown", f"its member cluster {name} is no longer registered "
                    "in Karmada; it is left where it was sent (it may be running there)")
        if member.ready:
            return None
        return ("MemberNotReady", f"its member cluster {name} is not Ready in Karmada "
                f"({member.message}); it is left there, not made elsewhere (it may be "
                "running, and a second copy could run it twice): it may miss its deadline "
                "unless the member recovers")

    # -- capacity ------------------------------------------------------------------------

    def view(self, cluster: CapacityView) -> CapacityView:
        return MemberView(cluster, self)

    def feeds(self, changed: Callable[[], None] | None = None,
              woken: Callable[[], None] | None = None) -> list[Feed]:
        """Mirror the ``Cluster`` objects: a change of capacity re-plans; a change of
        readiness or labels re-plans and steps every job (``trouble`` reads it)."""
        def apply(kind: str, obj: Mapping[str, Any]) -> None:
            name = str(obj["metadata"]["name"])
            before = self.members.get(name)
            if kind == "DELETED":
                self.members.pop(name, None)
            else:
                self.members[name] = Member(obj)
            after = self.members.get(name)
            if (before.key() if before else None) == (after.key() if after else None):
                return
            if changed is not None:
                changed()
            if woken is not None and (before is None or after is None or before.ready !=
                                      after.ready or before.labels != after.labels):
                woken()

        def reset(objs: Sequence[Mapping[str, Any]]) -> None:
            self.members = {str(o["metadata"]["name"]): Member(o) for o in objs}
            if changed is not None:
                changed()
            if woken is not None:
                woken()

        return [(CLUSTERS, apply, reset, None)]

    async def check(self, api: KubeApi) -> None:
        """Refuse to run in Karmada mode against an API server that serves no Karmada
        (``cluster.karmada.io`` Clusters and ``policy.karmada.io`` PropagationPolicies,
        asked of discovery, which every authenticated user may read)."""
        for path, resource in ((CLUSTER_API, "clusters"), (POLICY_API, "propagationpolicies")):
            try:
                found = await api.request("GET", path)
            except KubeApiError as exc:
                if exc.status not in (404, 503):
                    raise
                found = {}
            if not any(r.get("name") == resource for r in found.get("resources") or []):
                raise InvalidSpecError("settings", [FieldError("SUANDIAN_MODE", (
                    f"karmada, but this API server serves no {resource} "
                    f"({path.removeprefix('/apis/')}): run the operator against the Karmada "
                    "API server (its kubeconfig), or set SUANDIAN_MODE=native"))])

    def site_problem(self, spec: PowerSiteSpec) -> FieldError | None:
        """A site that names nodes: a Karmada API server has none to pick."""
        if spec.node_selector is None:
            return None
        return FieldError("spec.nodeSelector", (
            "picks nodes, but in Karmada mode a site is member clusters (the Karmada API "
            "server has no nodes): give spec.clusters (names, or a selector on Cluster "
            "labels) instead"))


class MemberView:
    """The cluster as the planner sees it in Karmada mode: a site's "nodes" are its Ready
    member clusters (the planner ranks them as it ranks nodes), its free capacity the sum
    of theirs. A site that names nodes instead reads the API server's nodes (none on a
    Karmada control plane)."""

    def __init__(self, cluster: CapacityView, backend: KarmadaBackend) -> None:
        self._cluster = cluster
        self._backend = backend

    def site_nodes(self, selector: Mapping[str, str]) -> list[Any]:
        if getattr(selector, "clusters", None) is None:
            return self._cluster.site_nodes(selector)
        return [MemberNode(name=m.name, labels=m.labels, allocatable=m.allocatable)
                for m in self._backend.site_members(selector)]

    def free_capacity(self, selector: Mapping[str, str]) -> dict[str, float]:
        if getattr(selector, "clusters", None) is None:
            return self._cluster.free_capacity(selector)
        return _summed([m.free for m in self._backend.site_members(selector)])

    def allocatable(self, selector: Mapping[str, str]) -> dict[str, float]:
        if getattr(selector, "clusters", None) is None:
            return self._cluster.allocatable(selector)
        return _summed([m.allocatable for m in self._backend.site_members(selector)])


def _summed(parts: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {r: sum(p.get(r, 0.0) for p in parts) for r in DEFAULT_RESOURCES}

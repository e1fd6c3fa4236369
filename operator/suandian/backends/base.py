"""The narrow act interface: how one decision is carried out on a cluster.

The planner decides where and when each job runs; a backend is how that decision
becomes Kubernetes objects. The job controller (``controllers/computejob.py``) asks a
backend for each thing it does to a child Job, and never asks which backend it has:

- ``child(...)``: the child Job to create, held until its start (or free to run, when
  it is due at once);
- ``release(child, ...)``: the patch that lets it go at its start;
- ``released(child)``: whether it was let go (it may still wait for someone else: an
  admission queue);
- ``move(child, ...)``: the patch that takes a never-started child to another site, or
  None when the backend can only make it again;
- ``prepare(api, child, decision, placement, dispatch=...)`` (async): before the child is
  created, moved or released, bring what else the backend owns in line with the decision
  (Karmada: the job's PropagationPolicy: its member, its dispatch held or not); the
  child's own write comes after, so a step cut short in between is redone, never half
  done (native and Kueue own nothing else);
- ``hold(child, ...)``: the patch that suspends a running child between two green
  windows (only when ``can_suspend``: interruptible jobs need it);
- ``waiting(child)`` (async): who holds a released child that has not started, in one
  line (None: nobody says);
- ``trouble(child)``: why the place a released child was sent to cannot be reached,
  as (reason, message), or None (Karmada: its member cluster is not Ready);
- ``view(cluster)``: the capacity the planner plans against (node allocatable, a
  queue's quota, or member clusters), and ``feeds(changed, woken)``: what the backend
  must watch for it (``changed``: re-plan; ``woken``: step every job, when what
  ``trouble`` reads changed);
- ``admits``: whether another controller admits a released child (then a release is
  not a start: the job is ``Admitting`` until the child runs);
- ``check(api)`` (async): refuse to start on a cluster that lacks what it needs;
- ``site_problem(spec)``: what of a PowerSite's spec this way of acting cannot use (a
  site naming member clusters outside Karmada mode, or nodes in it), as the field to fix.

Each is a small class in its own module: :mod:`.native` (suspended Jobs and node
affinity, no other controller), :mod:`.kueue` (Kueue admits: Suandian's value in
``kueue.x-k8s.io/admission-gated-by``, Kueue's quota as capacity) and :mod:`.karmada`
(on a Karmada control plane: member clusters as sites, dispatch held while deferred).

The site is handed over as its :class:`~suandian.api.powersite.Placement`: a mapping of
node labels (what native and Kueue read) that also carries the member clusters (what
Karmada reads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from suandian.api.powersite import PowerSiteSpec
from suandian.errors import FieldError
from suandian.k8s.client import KubeApi
from suandian.k8s.decision import Decision

__all__ = ["Backend", "CapacityView", "Feed", "Patch", "nodes_only"]

Patch = dict[str, Any] | list[dict[str, Any]]
"""A merge patch (dict) or a JSON patch (list of operations)."""

Feed = tuple[str, Callable[[str, Mapping[str, Any]], None],
             Callable[[Sequence[Mapping[str, Any]]], None], str | None]
"""(path, apply(event type, object), reset(listed objects), label selector): a mirror."""


class CapacityView(Protocol):
    """What the planner reads of the cluster: each site's nodes and free capacity."""

    def site_nodes(self, selector: Mapping[str, str]) -> list[Any]: ...

    def free_capacity(self, selector: Mapping[str, str]) -> dict[str, float]: ...

    def allocatable(self, selector: Mapping[str, str]) -> dict[str, float]: ...


class Backend(Protocol):
    """One way to act (see the module docstring)."""

    name: str
    can_suspend: bool
    admits: bool
    """Another controller admits what is released: a release is not yet a start."""
    kept_annotations: tuple[str, ...]
    """Annotation prefixes of child Jobs the controller must see (besides suandian.io/)."""

    def child(self, computejob: Mapping[str, Any], decision: Decision,
              site_selector: Mapping[str, str], duration: timedelta, *, due: bool,
              now: datetime) -> dict[str, Any]: ...

    def release(self, child: Mapping[str, Any], decision: Decision, now: datetime) -> Patch: ...

    def released(self, child: Mapping[str, Any]) -> bool: ...

    def move(self, child: Mapping[str, Any], decision: Decision,
             site_selector: Mapping[str, str],
             user_affinity: Mapping[str, Any] | None) -> Patch | None: ...

    def hold(self, child: Mapping[str, Any], ran_s: float) -> Patch: ...

    async def prepare(self, api: KubeApi, child: Mapping[str, Any], decision: Decision,
                      placement: Mapping[str, str] | None, *, dispatch: bool) -> None: ...

    async def waiting(self, api: KubeApi, child: Mapping[str, Any]) -> str | None: ...

    def trouble(self, child: Mapping[str, Any]) -> tuple[str, str] | None: ...

    def view(self, cluster: CapacityView) -> CapacityView: ...

    def feeds(self, changed: Callable[[], None] | None = None,
              woken: Callable[[], None] | None = None) -> list[Feed]: ...

    async def check(self, api: KubeApi) -> None: ...

    def site_problem(self, spec: PowerSiteSpec) -> FieldError | None: ...


def nodes_only(spec: PowerSiteSpec) -> FieldError | None:
    """The site problem of a way of acting inside one cluster: a site of member clusters."""
    if spec.clusters is None:
        return None
    return FieldError("spec.clusters", (
        "names Karmada member clusters, which only SUANDIAN_MODE=karmada uses (the operator "
        "running on a Karmada control plane): give spec.nodeSelector, the site's nodes"))

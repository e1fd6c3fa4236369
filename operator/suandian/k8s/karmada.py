"""Pure builders for Karmada mode: the Job in the Karmada API server, its
PropagationPolicy, and what is read of Karmada's ``Cluster`` objects.

On a Karmada control plane a ComputeJob's child is a resource template: a ``batch/v1``
Job created in the Karmada API server (which runs no Job controller and no scheduler,
so it never runs there), propagated to exactly one member cluster by a
PropagationPolicy of its own (same name and namespace, owned by the ComputeJob, so the
garbage collector removes both with it). The policy's ``clusterAffinity.clusterNames``
names the chosen member; ``suspension.dispatching: true`` holds the Work back while the
job is deferred, so nothing exists in any member until the start; changing the cluster
name while held retargets it; lifting the suspension dispatches it. The Job's own
``spec.suspend`` is the hold marker the controllers read (as in native mode), and the
way an interruptible job is suspended between windows (Karmada propagates it).

Nothing here does I/O: each function returns the dict to send or the value read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from suandian.k8s.decision import PREFIX, Decision
from suandian.k8s.jobs import LABEL_MANAGED_BY, LABEL_SITE, MANAGED_BY, build_child_job
from suandian.planner import DEFAULT_RESOURCES
from suandian.planner.build import planner_quantities

__all__ = [
    "ANNOTATION_MEMBER",
    "CLUSTERS",
    "CLUSTER_API",
    "POLICY_API",
    "cluster_free",
    "cluster_ready",
    "karmada_job",
    "member_patch",
    "policy_patch",
    "policy_path",
    "propagation_policy",
]

CLUSTER_API = "/apis/cluster.karmada.io/v1alpha1"
CLUSTERS = f"{CLUSTER_API}/clusters"
POLICY_API = "/apis/policy.karmada.io/v1alpha1"
ANNOTATION_MEMBER = PREFIX + "member-cluster"
"""On the Karmada Job: the member cluster its policy names (what users and events read)."""


def karmada_job(computejob: Mapping[str, Any], decision: Decision, member: str,
                duration: timedelta) -> dict[str, Any]:
    """The child Job for the Karmada API server: the native child (owner reference,
    labels, the decision as annotations, ``suspend: true``) without the site's node
    affinity or the planner's node preferences: a member's nodes are the member's
    scheduler's business, the site is the member. The user's own affinity is kept."""
    body = build_child_job(computejob, replace(decision, node_preferences=()), {}, duration)
    body["metadata"]["annotations"][ANNOTATION_MEMBER] = member
    return body


def member_patch(decision: Decision, member: str) -> dict[str, Any]:
    """Merge patch of the Karmada Job's metadata for a decision at ``member``."""
    return {"metadata": {"annotations": {**decision.annotations(), ANNOTATION_MEMBER: member},
                         "labels": {LABEL_SITE: decision.site}}}


def policy_path(namespace: str, name: str | None = None) -> str:
    base = f"{POLICY_API}/namespaces/{namespace}/propagationpolicies"
    return base if name is None else f"{base}/{name}"


STAY_ON_FAILURE = [{"key": f"cluster.karmada.io/{taint}", "operator": "Exists",
                    "effect": "NoExecute"} for taint in ("not-ready", "unreachable")]
"""Tolerated for ever: where Karmada's failover is on (the ``Failover`` feature gate,
NoExecute taint eviction), a job dispatched to a member that fails is not evicted from
it (it may be running there; with one member named it could go nowhere else)."""


def policy_patch(member: str, *, dispatch: bool) -> dict[str, Any]:
    """Merge patch of a job's PropagationPolicy: the one member, dispatch held unless
    ``dispatch``."""
    return {"spec": {"placement": {"clusterAffinity": {"clusterNames": [member]}},
                     "suspension": {"dispatching": not dispatch}}}


def propagation_policy(job: Mapping[str, Any], member: str, *, dispatch: bool
                       ) -> dict[str, Any]:
    """The Job's own PropagationPolicy: exactly the one member (never two copies), its
    dispatch held unless ``dispatch``, never evicted by Karmada's failover
    (:data:`STAY_ON_FAILURE`); owned by the Job's owner (the ComputeJob)."""
    meta = job["metadata"]
    return {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"],
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
            "ownerReferences": [
                {k: v for k, v in ref.items() if k != "blockOwnerDeletion"}
                for ref in meta.get("ownerReferences") or []],
        },
        "spec": {
            "resourceSelectors": [{"apiVersion": "batch/v1", "kind": "Job",
                                   "name": meta["name"]}],
            "placement": {"clusterAffinity": {"clusterNames": [member]},
                          "clusterTolerations": STAY_ON_FAILURE},
            "suspension": {"dispatching": not dispatch},
        },
    }


def policy_state(policy: Mapping[str, Any] | None) -> tuple[tuple[str, ...], bool] | None:
    """The member clusters a policy names and whether it dispatches (None: no policy)."""
    if policy is None:
        return None
    spec = policy.get("spec") or {}
    names = ((spec.get("placement") or {}).get("clusterAffinity") or {}).get(
        "clusterNames") or []
    held = bool((spec.get("suspension") or {}).get("dispatching"))
    return tuple(str(n) for n in names), not held


def cluster_ready(cluster: Mapping[str, Any]) -> bool:
    """Whether Karmada finds the member healthy (its ``Ready`` condition is True)."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (cluster.get("status") or {}).get("conditions") or [])


def cluster_free(cluster: Mapping[str, Any]) -> dict[str, float]:
    """A member's free capacity as Karmada reports it: ``resourceSummary`` allocatable
    minus allocated (bound Pods' requests) minus allocating (Pods not yet bound), in
    planner units, never below 0; a member that is not Ready offers nothing."""
    if not cluster_ready(cluster):
        return dict.fromkeys(DEFAULT_RESOURCES, 0.0)
    summary = (cluster.get("status") or {}).get("resourceSummary") or {}
    total = planner_quantities(summary.get("allocatable"))
    used = [planner_quantities(summary.get(k)) for k in ("allocated", "allocating")]
    return {r: max(0.0, total.get(r, 0.0) - sum(u.get(r, 0.0) for u in used))
            for r in DEFAULT_RESOURCES}


def cluster_allocatable(cluster: Mapping[str, Any]) -> dict[str, float]:
    """A member's allocatable (``resourceSummary.allocatable``), planner units."""
    summary = (cluster.get("status") or {}).get("resourceSummary") or {}
    total = planner_quantities(summary.get("allocatable"))
    return {r: total.get(r, 0.0) for r in DEFAULT_RESOURCES}


def choose_member(members: Sequence[str], preferences: Sequence[tuple[str, int]],
                  current: str | None = None) -> str | None:
    """The one member a job goes to, of a site's Ready ``members``: the one it is at, if
    still among them (no needless move), else the planner's best-ranked, else the first
    by name; None when the site has no Ready member."""
    if not members:
        return None
    if current in members:
        return current
    ranked = [name for name, _ in sorted(preferences, key=lambda p: -p[1])
              if name in members]
    return ranked[0] if ranked else sorted(members)[0]


__all__ += ["choose_member", "cluster_allocatable", "policy_state"]

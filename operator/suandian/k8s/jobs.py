"""Pure builders of the child ``batch/v1`` Job of a ComputeJob, and of its patches.

The child Job is created suspended (``spec.suspend: true``) with node affinity that pins
it to the chosen site (required: the PowerSite's ``nodeSelector``, ANDed into every
required term the user wrote) and prefers the planner's ranked nodes (weighted preferred
terms on ``kubernetes.io/hostname``). Kubernetes allows a suspended Job that has never
started to have its pod template's node affinity changed, which is how a deferred job
moves to another site; unsuspending is one merge patch of ``spec.suspend``.

Nothing here does I/O: each function returns the dict to send.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from suandian.k8s.decision import PREFIX, Decision

__all__ = [
    "ANNOTATION_DURATION",
    "ANNOTATION_RESUMED_AT",
    "ANNOTATION_RUN_SECONDS",
    "LABEL_COMPUTEJOB",
    "LABEL_MANAGED_BY",
    "LABEL_SITE",
    "MANAGED_BY",
    "affinity_patch",
    "build_child_job",
    "child_job_name",
    "hold_patch",
    "job_state",
    "node_affinity",
    "overcommit_allowed",
    "suspend_patch",
    "with_required_limits",
]

MANAGED_BY = "suandian"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPUTEJOB = PREFIX + "computejob"
LABEL_SITE = PREFIX + "site"
ANNOTATION_DURATION = PREFIX + "duration-seconds"
ANNOTATION_RUN_SECONDS = PREFIX + "run-seconds"  # run time before the last suspension
ANNOTATION_RESUMED_AT = PREFIX + "resumed-at"  # when it was last let go
ANNOTATION_OWNER_UID = PREFIX + "computejob-uid"
HOSTNAME_LABEL = "kubernetes.io/hostname"
MAX_NAME = 63  # Job names become pod label values: at most 63 characters


def child_job_name(computejob_name: str) -> str:
    """The child Job's name: the ComputeJob's, or a hashed prefix when that is too long.

    Deterministic on purpose: a second creation attempt (a retry, a restarted operator,
    a second replica) hits 409 AlreadyExists instead of creating a duplicate.
    """
    if len(computejob_name) <= MAX_NAME:
        return computejob_name
    digest = hashlib.sha256(computejob_name.encode()).hexdigest()[:8]
    return f"{computejob_name[: MAX_NAME - 9].rstrip('-.')}-{digest}"


def node_affinity(
    user_affinity: Mapping[str, Any] | None,
    site_selector: Mapping[str, str],
    preferences: Sequence[tuple[str, int]],
) -> dict[str, Any]:
    """The pod's ``affinity``: the user's, with the site required and ranked nodes preferred
    (nothing of ours without a site selector or preferences: an empty required term
    would match no node).

    Required node-selector terms are ORed by Kubernetes, so the site's expressions are
    added to *each* term the user wrote (keeping their meaning and adding the site), or
    form the only term when there are none. The user's preferred terms are kept; ours
    are appended with weights clamped to 1..100. Pod (anti-)affinity passes through.
    """
    affinity = copy.deepcopy(dict(user_affinity or {}))
    node = dict(affinity.get("nodeAffinity") or {})
    site_exprs = [
        {"key": key, "operator": "In", "values": [value]}
        for key, value in sorted(site_selector.items())
    ]
    if site_exprs:  # no site selector (a site of member clusters): the user's terms only
        required = dict(node.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
        terms = [dict(t) for t in required.get("nodeSelectorTerms") or []] or [{}]
        for term in terms:
            exprs = [e for e in term.get("matchExpressions") or [] if e not in site_exprs]
            term["matchExpressions"] = exprs + site_exprs
        required["nodeSelectorTerms"] = terms
        node["requiredDuringSchedulingIgnoredDuringExecution"] = required
    user_preferred = [
        p for p in node.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        if not _is_ours(p)
    ]
    ours = [
        {
            "weight": max(1, min(100, int(weight))),
            "preference": {"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [name]},
                _OURS_MARKER,
            ]},
        }
        for name, weight in preferences
    ]
    node.pop("preferredDuringSchedulingIgnoredDuringExecution", None)
    if user_preferred or ours:
        node["preferredDuringSchedulingIgnoredDuringExecution"] = user_preferred + ours
    if node:
        affinity["nodeAffinity"] = node
    else:
        affinity.pop("nodeAffinity", None)
    return affinity


# A harmless expression that tags preferred terms as ours, so a re-plan replaces only them.
_OURS_MARKER = {"key": PREFIX + "ranked", "operator": "DoesNotExist"}


def _is_ours(preferred_term: Mapping[str, Any]) -> bool:
    exprs = (preferred_term.get("preference") or {}).get("matchExpressions") or []
    return _OURS_MARKER in exprs


def build_child_job(
    computejob: Mapping[str, Any],
    decision: Decision,
    site_selector: Mapping[str, str],
    duration: timedelta,
) -> dict[str, Any]:
    """The suspended child Job for a ComputeJob manifest (as the API server returned it).

    The Job carries the ComputeJob's ``spec.template`` (metadata and spec), an owner
    reference to it (so deleting the ComputeJob deletes the Job: the garbage collector
    does it), our labels and the decision as annotations.
    """
    meta = computejob["metadata"]
    template = computejob["spec"]["template"]
    job_spec = copy.deepcopy(dict(template["spec"]))
    pod_template = dict(job_spec.get("template") or {})
    pod_spec = dict(pod_template.get("spec") or {})
    affinity = node_affinity(pod_spec.get("affinity"), site_selector,
                             decision.node_preferences)
    if affinity:
        pod_spec["affinity"] = affinity
    else:
        pod_spec.pop("affinity", None)
    for kind in ("initContainers", "containers"):
        if pod_spec.get(kind):
            pod_spec[kind] = [with_required_limits(c) for c in pod_spec[kind]]
    pod_template["spec"] = pod_spec
    pod_meta = dict(pod_template.get("metadata") or {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **_labels(meta["name"])}
    pod_template["metadata"] = pod_meta
    job_spec["template"] = pod_template
    job_spec["suspend"] = True
    user_meta = template.get("metadata") or {}
    labels = {**(user_meta.get("labels") or {}), **_labels(meta["name"]),
              LABEL_SITE: decision.site}
    annotations = {
        **(user_meta.get("annotations") or {}),
        **decision.annotations(),
        ANNOTATION_DURATION: str(int(duration.total_seconds())),
        ANNOTATION_OWNER_UID: meta["uid"],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": child_job_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": computejob.get("apiVersion", "suandian.io/v1alpha1"),
                "kind": computejob.get("kind", "ComputeJob"),
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }],
        },
        "spec": job_spec,
    }


def overcommit_allowed(resource: str) -> bool:
    """Whether Kubernetes lets a container request ``resource`` without a limit.

    Native resources (no domain, or a ``kubernetes.io/`` one) may be overcommitted,
    except hugepages; extended resources (``nvidia.com/gpu``) may not: the API server
    refuses a request without an equal limit ("Limit must be set for non overcommitable
    resources"), as it does hugepages without a limit.
    """
    native = "/" not in resource or "kubernetes.io/" in resource
    return native and not resource.startswith("hugepages-")


def with_required_limits(container: Mapping[str, Any]) -> dict[str, Any]:
    """The container with a limit equal to its request for each resource that Kubernetes
    will not overcommit and the user gave no limit for (a GPU request alone is refused by
    the API server; the limit it needs can only be the request). Limits the user set are
    kept, right or wrong: the server judges them, and a refusal is reported on the job."""
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = dict(resources.get("limits") or {})
    missing = {k: v for k, v in requests.items() if not overcommit_allowed(k) and k not in limits}
    if not missing:
        return dict(container)
    return {**container, "resources": {**resources, "limits": {**limits, **missing}}}


def _labels(computejob_name: str) -> dict[str, str]:
    value = computejob_name if len(computejob_name) <= MAX_NAME else child_job_name(
        computejob_name)
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_COMPUTEJOB: value}


def suspend_patch(suspend: bool, decision: Decision | None = None) -> dict[str, Any]:
    """Merge patch that suspends or unsuspends the Job (and records the decision)."""
    patch: dict[str, Any] = {"spec": {"suspend": suspend}}
    if decision is not None:
        patch["metadata"] = {"annotations": decision.annotations(),
                             "labels": {LABEL_SITE: decision.site}}
    return patch


def hold_patch(ran_s: float) -> dict[str, Any]:
    """Merge patch suspending a started Job between its windows, with the run time so
    far (``ran_s`` seconds) recorded and the resume mark cleared."""
    return {**suspend_patch(True), "metadata": {"annotations": {
        ANNOTATION_RUN_SECONDS: str(int(ran_s)), ANNOTATION_RESUMED_AT: None}}}


def affinity_patch(
    job: Mapping[str, Any],
    decision: Decision,
    site_selector: Mapping[str, str],
    user_affinity: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Merge patch moving a suspended, never-started Job to ``decision.site``.

    ``affinity`` is rebuilt from the user's template, so constraints of the previous
    site do not linger (merge patches replace lists whole). Allowed by Kubernetes only
    while the Job is suspended and has not started (``status.startTime`` unset).
    """
    del job  # the current Job is not needed: the affinity is rebuilt from the template
    return {
        "metadata": {"annotations": decision.annotations(),
                     "labels": {LABEL_SITE: decision.site}},
        "spec": {"template": {"spec": {"affinity": node_affinity(
            user_affinity, site_selector, decision.node_preferences)}}},
    }


def job_state(job: Mapping[str, Any]) -> str:
    """``Complete``, ``Failed``, ``Running``, ``Suspended`` or ``Pending`` from a Job's status."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "Complete"
        if condition.get("type") in ("Failed", "FailureTarget"):
            return "Failed"
    if (job.get("spec") or {}).get("suspend"):
        return "Suspended"
    if status.get("startTime") or status.get("active"):
        return "Running"
    return "Pending"

"""Gated Pods: the admission webhook that gates them, and the step that releases them.

A Pod labelled ``suandian.io/managed: "true"`` is gated by the mutating webhook
(``suandian.io/green-window``); kube-scheduler ignores it until the gate is removed. The
watch handler keeps a slim copy of each gated pod and the operator's scheduler steps it:
it plans it as a one-pod job whose duration, deadline and power come from annotations
(:data:`ANNOTATIONS`, with defaults from :class:`~suandian.config.Settings`), pins it to the
chosen site while it is gated (node affinity, written once: Kubernetes only lets a gated
pod's constraints be tightened) and removes the gate at the planned start, or at once
when the annotations are invalid (with a Warning event: never held forever). Pods without
the label are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import kopf

from suandian.api.validation import parse_computejob
from suandian.config import Settings
from suandian.controllers.context import Context, memo_context
from suandian.controllers.planning import Demand
from suandian.errors import FieldError, InvalidSpecError, KubeApiError, PlanningError
from suandian.k8s import events
from suandian.k8s.decision import Decision
from suandian.k8s.pods import (
    GATE,
    MANAGED_LABEL,
    gate_added,
    has_gate,
    placement_patch,
    ungate_patch,
)
from suandian.planner import JobDecision, JobTerms
from suandian.units import parse_duration, parse_time

__all__ = ["ANNOTATIONS", "pod_as_computejob", "register"]

ANNOTATIONS = {
    "suandian.io/duration": "expected run time, e.g. 2h (default: SUANDIAN_POD_DEFAULT_DURATION)",
    "suandian.io/max-delay": "how much later than at once it may finish, e.g. 12h",
    "suandian.io/complete-by": "RFC 3339 time it must be done by (instead of max-delay)",
    "suandian.io/power-watts": "mean draw in watts (default: estimated from requests)",
    "suandian.io/sites": "comma-separated PowerSites it may run on (default: any)",
}


def pod_as_computejob(pod: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The ComputeJob manifest a gated pod stands for (validated by the same rules).

    Raises :class:`InvalidSpecError` naming the annotation when one cannot be read.
    """
    meta = pod.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    errors: list[FieldError] = []

    def duration(key: str, default: timedelta) -> str:
        raw = annotations.get(key)
        if raw is None:
            return f"{int(default.total_seconds())}s"
        try:
            parse_duration(raw)
        except ValueError as exc:
            errors.append(FieldError(f"metadata.annotations[{key}]", str(exc)))
        return str(raw)

    deadline: dict[str, str]
    if "suandian.io/complete-by" in annotations:
        deadline = {"completeBy": str(annotations["suandian.io/complete-by"])}
    else:
        deadline = {"maxDelay": duration("suandian.io/max-delay",
                                         settings.pod_default_max_delay)}
    spec: dict[str, Any] = {
        "template": {"spec": {"template": {"spec": {"containers": [
            {"name": c.get("name") or "c", "resources": {
                "requests": dict((c.get("resources") or {}).get("requests") or {})}}
            for c in (pod.get("spec") or {}).get("containers") or [{"name": "c"}]
        ]}}}},
        "duration": duration("suandian.io/duration", settings.pod_default_duration),
        "deadline": deadline,
    }
    watts = annotations.get("suandian.io/power-watts")
    if watts is not None:
        try:
            spec["power"] = {"watts": float(watts)}
        except ValueError:
            errors.append(FieldError("metadata.annotations[suandian.io/power-watts]",
                                     f"{watts!r} is not a number of watts"))
    elif settings.pod_default_watts > 0:
        spec["power"] = {"watts": settings.pod_default_watts}
    if annotations.get("suandian.io/sites"):
        spec["sites"] = [s.strip() for s in str(annotations["suandian.io/sites"]).split(",")
                         if s.strip()]
    if errors:
        raise InvalidSpecError("Pod", errors)
    return {"apiVersion": "suandian.io/v1alpha1", "kind": "ComputeJob",
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                         "creationTimestamp": meta.get("creationTimestamp")},
            "spec": spec}


KIND = "pod"  # scheduler keys: "pod/<uid>"


def key_of(uid: str) -> str:
    return f"{KIND}/{uid}"


def slim_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the controller reads of a gated Pod (kept per pod until it is released)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": meta.get("name"), "namespace": meta.get("namespace"),
            "uid": meta.get("uid"), "creationTimestamp": meta.get("creationTimestamp"),
            "annotations": {k: v for k, v in (meta.get("annotations") or {}).items()
                            if k.startswith("suandian.io/")}},
        "spec": {
            "schedulingGates": list(spec.get("schedulingGates") or []),
            "affinity": spec.get("affinity"),
            "containers": [{"name": c.get("name"), "resources": {
                "requests": dict((c.get("resources") or {}).get("requests") or {})}}
                for c in spec.get("containers") or []]},
    }


async def step(ctx: Context, key: str) -> datetime | None:
    """The scheduler's step for the gated Pod ``pod/<uid>``: plan, pin, release."""
    uid = key.partition("/")[2]
    pod = ctx.pods.get(uid)
    if pod is None or not has_gate(pod):
        ctx.planning.remove(key)
        return None
    meta = pod["metadata"]
    try:
        created = parse_time(meta["creationTimestamp"])
        manifest = pod_as_computejob(pod, ctx.settings)
        terms = JobTerms.from_computejob(parse_computejob(manifest, created=created))
    except (InvalidSpecError, ValueError, KeyError, TypeError) as exc:
        message = "; ".join(str(e) for e in getattr(exc, "errors", ())) or str(exc)
        await _release(ctx, pod)
        events.warning(pod, "InvalidAnnotations", f"released at once, not planned: {message}")
        return None
    decision = Decision.from_annotations(meta.get("annotations") or {})
    if decision is None:
        demand = Demand(key, terms, created)
        planned = ctx.planning.current(key)
        if planned is None or ctx.planning.stale(key, demand):
            ctx.planning.upsert(demand, ctx.wake_on_decision)
            return None  # woken when a round decides it
        decision = _decision(planned)
        if decision is None:
            return ctx.clock.now() + ctx.settings.replan_interval
        site = ctx.sites.get(decision.site)
        if site is None:
            raise PlanningError(f"site {decision.site} vanished")
        await ctx.api.patch_pod(meta["namespace"], meta["name"], placement_patch(
            pod, decision, site.site.spec.placement))
        # known at once (the watch echoes it later): the next step must not place it again
        meta["annotations"] = {**meta["annotations"], **decision.annotations()}
        if decision.start_by() > ctx.clock.now():
            events.normal(pod, "Deferred", decision.reason)
    if ctx.clock.now() >= decision.start_by():
        await _release(ctx, pod)
        others = [str(g.get("name")) for g in pod["spec"]["schedulingGates"]]
        held = f"; still held by {', '.join(others)}" if others else ""
        events.normal(pod, "Started", f"released at {decision.site}{held}: {decision.reason}")
        ctx.planning.remove(key)
        return None
    return decision.start_by()


async def _release(ctx: Context, pod: dict[str, Any]) -> None:
    """Remove our gate (a pod deleted meanwhile needs nothing more)."""
    meta = pod["metadata"]
    try:
        await ctx.api.patch_pod(meta["namespace"], meta["name"], ungate_patch(pod))
    except KubeApiError as exc:
        if exc.status != 404:
            raise
    pod["spec"]["schedulingGates"] = [g for g in pod["spec"]["schedulingGates"]
                                      if g.get("name") != GATE]


def _decision(planned: JobDecision) -> Decision | None:
    if planned.site is None or planned.planned_start is None:
        return None
    return Decision(site=planned.site, planned_start=planned.planned_start,
                    latest_start=planned.latest_start, reason=planned.reason,
                    node_preferences=tuple(planned.node_preferences))


def register(registry: kopf.OperatorRegistry, *, webhook: bool = True) -> None:
    """Add the gated-pod watch (and, with ``webhook``, the gating webhook) to ``registry``."""
    if webhook:
        @kopf.on.mutate("", "v1", "pods", registry=registry, id="green-window",
                        operations=["CREATE"], labels={MANAGED_LABEL: "true"})
        async def gate(spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
            """Add the scheduling gate; pods without the label never reach this handler."""
            patch.spec["schedulingGates"] = gate_added(spec.get("schedulingGates"))

    @kopf.on.event("", "v1", "pods", registry=registry, labels={MANAGED_LABEL: "true"})
    async def managed_pod_changed(uid: str, memo: kopf.Memo, type: str | None,
                                  body: kopf.Body, **_: Any) -> None:
        ctx = memo_context(memo)
        ctx.handling(listed=type is None)
        if type == "DELETED" or not has_gate(body):
            ctx.pods.pop(uid, None)
            ctx.planning.remove(key_of(uid))
            ctx.scheduler.forget(key_of(uid))
            return
        before = ctx.pods.get(uid)
        ctx.pods[uid] = slim_pod(body)
        if before is None or type in (None, "ADDED"):
            ctx.scheduler.wake(key_of(uid))

"""Gated Pods: the admission webhook that gates them, and the daemon that releases them.

A Pod labelled ``suandian.io/managed: "true"`` is gated by the mutating webhook
(``suandian.io/green-window``); kube-scheduler ignores it until the gate is removed. The
daemon plans it as a one-pod job whose duration, deadline and power come from annotations
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

from suandian.api.units import parse_duration, parse_time
from suandian.api.validation import parse_computejob
from suandian.config import Settings
from suandian.controllers.context import Context, memo_context
from suandian.controllers.driving import drive
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
from suandian.planner import JobDecision

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


class PodDriver:
    """Drives one gated Pod: plan, pin, release; each step from what the pod says."""

    def __init__(self, ctx: Context, body: kopf.Body) -> None:
        self.ctx = ctx
        self.body = body
        self.uid = str(body["metadata"]["uid"])

    def finished(self) -> bool:
        return not has_gate(dict(self.body))

    async def step(self) -> datetime | None:
        ctx, pod = self.ctx, dict(self.body)
        if not has_gate(pod):
            ctx.planning.remove(self.uid)
            return None
        meta = pod["metadata"]
        try:
            created = parse_time(meta["creationTimestamp"])
            manifest = pod_as_computejob(pod, ctx.settings)
            job = parse_computejob(manifest, created=created)
        except (InvalidSpecError, ValueError, KeyError) as exc:
            message = "; ".join(str(e) for e in getattr(exc, "errors", ())) or str(exc)
            await self._release(pod)
            events.warning(pod, "InvalidAnnotations",
                           f"released at once, not planned: {message}")
            return None
        decision = Decision.from_annotations(meta.get("annotations") or {})
        if decision is None:
            planned = await ctx.planning.decide(Demand(self.uid, job, created),
                                                lambda _d: ctx.wake(self.uid))
            decision = _decision(planned)
            if decision is None:
                return ctx.clock.now() + ctx.settings.replan_interval
            site = ctx.sites.get(decision.site)
            if site is None:
                raise PlanningError(f"site {decision.site} vanished")
            await ctx.api.patch_pod(meta["namespace"], meta["name"], placement_patch(
                pod, decision, site.site.spec.node_selector))
            if decision.start_by() > ctx.clock.now():
                events.normal(pod, "Deferred", decision.reason)
        if ctx.clock.now() >= decision.start_by():
            await self._release(pod)
            events.normal(pod, "Started", f"released at {decision.site}: {decision.reason}")
            ctx.planning.remove(self.uid)
            return None
        return decision.start_by()

    async def _release(self, pod: Mapping[str, Any]) -> None:
        """Remove our gate (a pod deleted meanwhile needs nothing more)."""
        meta = pod["metadata"]
        try:
            await self.ctx.api.patch_pod(meta["namespace"], meta["name"], ungate_patch(pod))
        except KubeApiError as exc:
            if exc.status != 404:
                raise


def _decision(planned: JobDecision) -> Decision | None:
    if planned.site is None or planned.planned_start is None:
        return None
    return Decision(site=planned.site, planned_start=planned.planned_start,
                    latest_start=planned.latest_start, reason=planned.reason,
                    node_preferences=tuple(planned.node_preferences))


def register(registry: kopf.OperatorRegistry, *, webhook: bool = True) -> None:
    """Add the gated-pod daemon (and, with ``webhook``, the gating webhook) to ``registry``."""
    if webhook:
        @kopf.on.mutate("", "v1", "pods", registry=registry, id="green-window",
                        operations=["CREATE"], labels={MANAGED_LABEL: "true"})
        async def gate(spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
            """Add the scheduling gate; pods without the label never reach this handler."""
            patch.spec["schedulingGates"] = gate_added(spec.get("schedulingGates"))

    @kopf.daemon("", "v1", "pods", registry=registry, labels={MANAGED_LABEL: "true"},
                 cancellation_timeout=5.0,
                 when=lambda spec, **_: any(g.get("name") == GATE
                                            for g in spec.get("schedulingGates") or []))
    async def gated_pod(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped,
                        logger: Any, **_: Any) -> None:
        ctx = memo_context(memo)
        await drive(ctx, PodDriver(ctx, body), stopped, logger)

    @kopf.on.event("", "v1", "pods", registry=registry, labels={MANAGED_LABEL: "true"})
    async def managed_pod_changed(uid: str, memo: kopf.Memo, type: str | None, **_: Any) -> None:
        ctx = memo_context(memo)
        ctx.wake(uid)
        if type == "DELETED":
            ctx.planning.remove(uid)
            ctx.wakers.pop(uid, None)


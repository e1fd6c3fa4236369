"""Native: Suandian alone holds and starts the work (no admission controller).

A child Job is created with ``spec.suspend: true`` and node affinity to the chosen site;
its start is ``suspend: false``; a never-started one moves by patching its pod
template's affinity (Kubernetes allows that while a Job is suspended and has never
started); an interruptible job is suspended again between green windows. Capacity is
node allocatable minus the requests of the pods bound there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from suandian.api.powersite import PowerSiteSpec
from suandian.backends.base import CapacityView, Feed, Patch, nodes_only
from suandian.errors import FieldError
from suandian.k8s.client import KubeApi
from suandian.k8s.decision import Decision, format_time
from suandian.k8s.jobs import (
    ANNOTATION_RESUMED_AT,
    LABEL_SITE,
    affinity_patch,
    build_child_job,
    hold_patch,
    suspend_patch,
)

__all__ = ["NativeBackend"]


class NativeBackend:
    """Suspended Jobs and node affinity (see the module docstring)."""

    name = "native"
    can_suspend = True
    admits = False
    kept_annotations: tuple[str, ...] = ()

    def child(self, computejob: Mapping[str, Any], decision: Decision,
              site_selector: Mapping[str, str], duration: timedelta, *, due: bool,
              now: datetime) -> dict[str, Any]:
        body = build_child_job(computejob, decision, site_selector, duration)
        if due:  # created running: one request and one status write fewer
            body["spec"]["suspend"] = False
            body["metadata"]["annotations"][ANNOTATION_RESUMED_AT] = format_time(now)
        return body

    def release(self, child: Mapping[str, Any], decision: Decision, now: datetime) -> Patch:
        return {**suspend_patch(False, decision),
                "metadata": {"annotations": {**decision.annotations(),
                                             ANNOTATION_RESUMED_AT: format_time(now)},
                             "labels": {LABEL_SITE: decision.site}}}

    def released(self, child: Mapping[str, Any]) -> bool:
        return not (child.get("spec") or {}).get("suspend")

    def move(self, child: Mapping[str, Any], decision: Decision,
             site_selector: Mapping[str, str],
             user_affinity: Mapping[str, Any] | None) -> Patch | None:
        return affinity_patch(child, decision, site_selector, user_affinity)

    def hold(self, child: Mapping[str, Any], ran_s: float) -> Patch:
        return hold_patch(ran_s)

    async def prepare(self, api: KubeApi, child: Mapping[str, Any], decision: Decision,
                      placement: Mapping[str, str] | None, *, dispatch: bool) -> None:
        return None  # the child Job is all there is

    def trouble(self, child: Mapping[str, Any]) -> tuple[str, str] | None:
        return None  # the cluster it runs in is the one the operator talks to

    async def waiting(self, api: KubeApi, child: Mapping[str, Any]) -> str | None:
        return None  # nobody but Suandian holds a native child Job

    def view(self, cluster: CapacityView) -> CapacityView:
        return cluster

    def feeds(self, changed: Callable[[], None] | None = None,
              woken: Callable[[], None] | None = None) -> list[Feed]:
        return []

    async def check(self, api: KubeApi) -> None:
        return None

    def site_problem(self, spec: PowerSiteSpec) -> FieldError | None:
        return nodes_only(spec)

"""A tiny simulated job controller, scheduler and kubelet on top of the emulator.

Just enough for the operator's scenarios, and no more:

- Jobs: when a Job is unsuspended it "runs" (``status.startTime``, ``active``) for its
  run time (``runtimes[name]``, else the ``suandian.io/duration-seconds`` annotation our
  child Jobs carry), accumulating across suspensions; then it completes (or fails, for
  names in ``failing``) with the conditions the real job controller writes.
- Pods: an ungated, unbound pod is bound to the first node that satisfies its required
  node affinity (``In`` expressions only), and marked Running.

Every start is recorded in ``starts`` (name, loop-clock time) so tests can assert that
nothing started twice. Time is the test's clock (looptime-driven).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tests.support.emulator import ApiEmulator, Change

__all__ = ["ClusterSim"]

JOBS = "batch/v1/jobs"
PODS = "v1/pods"
NODES = "v1/nodes"


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Run:
    ran: timedelta = timedelta(0)
    since: datetime | None = None
    timer: asyncio.Task[None] | None = None


@dataclass
class ClusterSim:
    api: ApiEmulator
    now: Callable[[], datetime]
    runtimes: dict[str, timedelta] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    starts: list[tuple[str, datetime]] = field(default_factory=list)
    suspensions: list[tuple[str, datetime]] = field(default_factory=list)
    bindings: list[tuple[str, str, datetime]] = field(default_factory=list)
    _runs: dict[tuple[str, str], _Run] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.api.listen(self._on_change)

    def add_node(self, name: str, labels: Mapping[str, str], cpu: str = "64",
                 memory: str = "256Gi", gpus: int = 0) -> None:
        allocatable = {"cpu": cpu, "memory": memory, "pods": "110"}
        if gpus:
            allocatable["nvidia.com/gpu"] = str(gpus)
        self.api.create(NODES, {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        })
        # as a kubelet does: the status goes through the status subresource
        self.api.change(NODES, None, name, {"status": {"allocatable": allocatable,
                                                      "capacity": allocatable}}, "status")

    async def close(self) -> None:
        for run in self._runs.values():
            if run.timer is not None:
                run.timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run.timer

    # -- reacting to changes ---------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if change.plural == "jobs" and change.type != "DELETED":
            self._job(change.obj)
        elif change.plural == "jobs":
            run = self._runs.pop(_key(change.obj), None)
            if run is not None and run.timer is not None:
                run.timer.cancel()
        elif change.plural == "pods" and change.type != "DELETED":
            self._pod(change.obj)

    def _job(self, job: dict[str, Any]) -> None:
        key = _key(job)
        status = job.get("status") or {}
        if any(c.get("type") in ("Complete", "Failed") for c in status.get("conditions") or []):
            return
        run = self._runs.setdefault(key, _Run())
        suspended = bool((job.get("spec") or {}).get("suspend"))
        now = self.now()
        if not suspended and run.since is None:
            run.since = now
            self.starts.append((key[1], now))
            patch: dict[str, Any] = {"status": {"active": 1, "ready": 1}}
            if not status.get("startTime"):
                patch["status"]["startTime"] = _stamp(now)
            self._later(lambda: self.api.change(JOBS, key[0], key[1], patch, "status"))
            left = self._runtime(job) - run.ran
            run.timer = asyncio.ensure_future(self._finish(key, left))
        elif suspended and run.since is not None:
            run.ran += now - run.since
            run.since = None
            self.suspensions.append((key[1], now))
            if run.timer is not None:
                run.timer.cancel()
                run.timer = None
            self._later(lambda: self.api.change(JOBS, key[0], key[1], {"status": {
                "active": 0, "ready": 0}}, "status"))

    def _runtime(self, job: Mapping[str, Any]) -> timedelta:
        name = job["metadata"]["name"]
        if name in self.runtimes:
            return self.runtimes[name]
        seconds = (job["metadata"].get("annotations") or {}).get(
            "suandian.io/duration-seconds", "3600")
        return timedelta(seconds=float(seconds))

    async def _finish(self, key: tuple[str, str], left: timedelta) -> None:
        await asyncio.sleep(max(0.0, left.total_seconds()))
        now = self.now()
        failed = key[1] in self.failing
        kind = "Failed" if failed else "Complete"
        status: dict[str, Any] = {
            "active": 0, "ready": 0,
            "conditions": [{"type": "SuccessCriteriaMet" if not failed else "FailureTarget",
                            "status": "True", "lastTransitionTime": _stamp(now)},
                           {"type": kind, "status": "True", "lastTransitionTime": _stamp(now)}],
        }
        if failed:
            status["failed"] = 1
        else:
            status["succeeded"] = 1
            status["completionTime"] = _stamp(now)
        run = self._runs.get(key)
        if run is not None:
            run.timer = None
        self.api.change(JOBS, key[0], key[1], {"status": status}, "status")

    def _pod(self, pod: dict[str, Any]) -> None:
        spec = pod.get("spec") or {}
        if spec.get("nodeName") or spec.get("schedulingGates"):
            return
        node = self._fit(spec)
        if node is None:
            return
        meta = pod["metadata"]
        self.bindings.append((meta["name"], node, self.now()))
        self._later(lambda: (
            self.api.change(PODS, meta.get("namespace"), meta["name"],
                            {"spec": {"nodeName": node}}),
            self.api.change(PODS, meta.get("namespace"), meta["name"],
                           {"status": {"phase": "Running"}}, "status"),
        ))

    def _fit(self, spec: Mapping[str, Any]) -> str | None:
        terms = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution") or {}
                 ).get("nodeSelectorTerms") or [{}]
        for node in self.api.items(NODES):
            labels = node["metadata"].get("labels") or {}
            for term in terms:
                if all(_expression(e, labels) for e in term.get("matchExpressions") or []):
                    return str(node["metadata"]["name"])
        return None

    @staticmethod
    def _later(action: Callable[[], object]) -> None:
        asyncio.get_running_loop().call_soon(action)


def _expression(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return obj["metadata"].get("namespace"), obj["metadata"]["name"]

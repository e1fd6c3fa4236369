"""The two backends' pure parts: what each builds and sends (the real-API tier proves them
on a real server and a real Kueue: tests/envtest/test_kueue.py)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from suandian.backends import KueueBackend, NativeBackend, backend_for
from suandian.backends.kueue import GATED_BY, QUEUE_LABEL, QuotaView, gates_of
from suandian.config import Settings
from suandian.k8s.decision import Decision

T0 = datetime(2026, 6, 21, tzinfo=UTC)
SITE = {"topology.kubernetes.io/region": "ningxia"}
GATE = "suandian.io/green-window"


def decision(site: str = "ningxia") -> Decision:
    return Decision(site=site, planned_start=T0 + timedelta(hours=6),
                    latest_start=T0 + timedelta(hours=9), reason="waiting for wind")


def computejob(annotations: dict[str, str] | None = None,
               labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta = {"annotations": annotations or {}, "labels": labels or {}}
    return {"apiVersion": "suandian.io/v1alpha1", "kind": "ComputeJob",
            "metadata": {"name": "etl", "namespace": "batch", "uid": "u-1"},
            "spec": {"template": {"metadata": meta, "spec": {"template": {"spec": {
                "containers": [{"name": "main", "image": "busybox"}]}}}}}}


def apply_json_patch(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 for the operations the backends send (test, add, replace, remove)."""
    out = copy.deepcopy(obj)
    for op in ops:
        *parents, leaf = [p.replace("~1", "/").replace("~0", "~")
                          for p in op["path"].split("/")[1:]]
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        if op["op"] == "test":
            assert node.get(leaf) == op["value"], "the test operation would fail"
        elif op["op"] == "remove":
            del node[leaf]
        else:
            node[leaf] = op["value"]
    return out


def test_the_mode_picks_the_backend() -> None:
    assert isinstance(backend_for(Settings()), NativeBackend)
    chosen = backend_for(Settings(mode="kueue", kueue_queue="batch"))
    assert isinstance(chosen, KueueBackend) and chosen.queue == "batch"
    assert Settings.from_env({"SUANDIAN_MODE": "kueue"}).mode == "kueue"
    assert [e.path for e in Settings(mode="volcano").problems()] == ["SUANDIAN_MODE"]


def test_native_holds_with_suspend_and_lets_go_with_it() -> None:
    native = NativeBackend()
    held = native.child(computejob(), decision(), SITE, timedelta(hours=1), due=False, now=T0)
    assert held["spec"]["suspend"] is True and not native.released(held)
    free = native.child(computejob(), decision(), SITE, timedelta(hours=1), due=True, now=T0)
    assert free["spec"]["suspend"] is False and native.released(free)
    release = native.release(held, decision(), T0)
    assert isinstance(release, dict) and release["spec"] == {"suspend": False}
    assert native.move(held, decision("gansu"), {"r": "gansu"}, None) is not None
    assert native.hold(free, 600.0)["spec"] == {"suspend": True}
    assert native.can_suspend and not native.admits


def test_kueue_never_touches_suspend_and_gates_after_the_templates_own_gates() -> None:
    kueue = KueueBackend(queue="batch")
    held = kueue.child(computejob({GATED_BY: "example.com/check"}), decision(), SITE,
                       timedelta(hours=1), due=False, now=T0)
    assert "suspend" not in held["spec"]  # Kueue's webhook suspends what it queues
    assert held["metadata"]["labels"][QUEUE_LABEL] == "batch"
    assert gates_of(held) == ["example.com/check", GATE] and not kueue.released(held)
    required = held["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert required == [{"matchExpressions": [
        {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["ningxia"]}]}]
    own = kueue.child(computejob(labels={QUEUE_LABEL: "gpu"}), decision(), SITE,
                      timedelta(hours=1), due=True, now=T0)
    assert own["metadata"]["labels"][QUEUE_LABEL] == "gpu"  # the template's queue wins
    assert GATED_BY not in own["metadata"]["annotations"] and kueue.released(own)
    assert not kueue.can_suspend and kueue.admits
    with pytest.raises(RuntimeError, match="Kueue owns suspend"):
        kueue.hold(own, 60.0)
    assert kueue.move(held, decision("gansu"), {"r": "gansu"}, None) is None  # made again


@pytest.mark.parametrize(("gates", "left"), [
    ("suandian.io/green-window", None),
    ("example.com/check,suandian.io/green-window", "example.com/check"),
    ("a.io/x,suandian.io/green-window,b.io/y", "a.io/x,b.io/y"),
])
def test_kueue_release_removes_only_suandians_gate(gates: str, left: str | None) -> None:
    kueue = KueueBackend()
    child = {"metadata": {"name": "etl", "namespace": "batch", "labels": {},
                          "annotations": {GATED_BY: gates}}}
    ops = kueue.release(child, decision(), T0)
    assert isinstance(ops, list) and ops[0] == {
        "op": "test", "path": "/metadata/annotations/kueue.x-k8s.io~1admission-gated-by",
        "value": gates}
    after = apply_json_patch(child, ops)
    assert after["metadata"]["annotations"].get(GATED_BY) == left
    assert after["metadata"]["annotations"]["suandian.io/site"] == "ningxia"
    assert after["metadata"]["labels"]["suandian.io/site"] == "ningxia"
    assert kueue.released(after)


class Nodes:
    """Node free capacity, as the cluster view gives it."""

    def __init__(self, free: dict[str, float]) -> None:
        self.free = free

    def site_nodes(self, selector: dict[str, str]) -> list[Any]:
        return []

    def free_capacity(self, selector: dict[str, str]) -> dict[str, float]:
        return dict(self.free)

    def allocatable(self, selector: dict[str, str]) -> dict[str, float]:
        return dict(self.free)


def queue(name: str, quota: dict[str, dict[str, str]],
          reserved: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"resourceGroups": [{
        "coveredResources": ["cpu", "memory"],
        "flavors": [{"name": f, "resources": [{"name": r, "nominalQuota": q}
                                              for r, q in rs.items()]}
                    for f, rs in quota.items()]}]},
        "status": {"flavorsReservation": [
            {"name": f, "resources": [{"name": r, "total": t} for r, t in rs.items()]}
            for f, rs in reserved.items()]}}


def test_kueue_capacity_is_the_quota_left_on_the_sites_flavors_capped_by_the_nodes() -> None:
    kueue = KueueBackend()
    changes: list[int] = []
    (_, apply_flavor, reset_flavors, _), (_, apply_queue, _, _) = kueue.feeds(
        lambda: changes.append(1))
    reset_flavors([{"metadata": {"name": "nx"}, "spec": {"nodeLabels": dict(SITE)}},
                   {"metadata": {"name": "gs"}, "spec": {"nodeLabels": {
                       "topology.kubernetes.io/region": "gansu"}}}])
    apply_queue("ADDED", queue("a", {"nx": {"cpu": "8", "memory": "64Gi"},
                                     "gs": {"cpu": "8", "memory": "64Gi"}},
                               {"nx": {"cpu": "6", "memory": "16Gi"}}))
    apply_queue("ADDED", queue("b", {"nx": {"cpu": "4", "memory": "0"}}, {}))
    assert kueue.free_quota(SITE) == {"cpu": 6.0, "memory": 48.0}  # (8 - 6) + 4 CPUs
    view = QuotaView(Nodes({"cpu": 100.0, "memory": 20.0, "nvidia.com/gpu": 4.0}), kueue)
    assert view.free_capacity(SITE) == {"cpu": 6.0, "memory": 20.0, "nvidia.com/gpu": 4.0}
    apply_queue("MODIFIED", queue("b", {"nx": {"cpu": "4", "memory": "0"}},
                                  {"nx": {"cpu": "4"}}))
    assert kueue.free_quota(SITE)["cpu"] == 2.0
    unmapped = {"topology.kubernetes.io/region": "guangdong"}  # no flavor: no admission
    assert kueue.free_quota(unmapped) == {"cpu": 0.0, "memory": 0.0}
    apply_flavor("DELETED", {"metadata": {"name": "nx"}})
    assert kueue.free_quota(SITE)["cpu"] == 0.0
    assert len(changes) == 5  # every change asks for a re-plan

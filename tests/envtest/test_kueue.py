"""Kueue mode on a real Kueue: Suandian times and places, Kueue admits.

A control plane of its own with the real Kueue manager (``$SUANDIAN_KUEUE_BIN``), a
ResourceFlavor per site and one ClusterQueue with 8 CPUs of quota on each, and the
operator as the chart's ServiceAccount with the chart's Kueue-mode RBAC and
``SUANDIAN_MODE=kueue``. Sites: gansu green now, ningxia green in six hours, guangdong
never green.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.envtest import envkit
from tests.envtest.conftest import require
from tests.envtest.envkit import child_of, condition, events_of, pods_of, posted, status_of
from tests.support.controlplane import ControlPlane, missing
from tests.support.kube import Kube, path_of, wait_for
from tests.support.kueue import KueueManager, missing_kueue
from tests.support.objects import computejob
from tests.support.process import OperatorProcess

NS = "envtest-kueue"
GATE = "suandian.io/green-window"
GATED_BY = "kueue.x-k8s.io/admission-gated-by"
SITES = ("gansu", "ningxia", "guangdong")
QUOTA = {"cpu": "8", "memory": "64Gi"}


def green(start: datetime) -> dict[str, envkit.Green]:
    later = start + envkit.GREEN_AFTER
    return {"gansu": lambda _: 200_000.0,
            "ningxia": lambda t: 200_000.0 if t >= later else 0.0,
            "guangdong": lambda _: 0.0}


@pytest.fixture(scope="module")
def start() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory, start: datetime) -> Iterator[ControlPlane]:
    require(missing() or missing_kueue())
    workdir = tmp_path_factory.mktemp("kueue-plane")
    plane = ControlPlane(workdir, name="kueue")
    kueue: KueueManager | None = None
    try:
        plane.start(setup=lambda kube: envkit.set_up(
            kube, start, {"operator": {"mode": "kueue"}}, green(start)))
        kube = plane.admin()
        ca, cert, key = envkit.webhook_certs(workdir / "certs")
        kueue = KueueManager(plane, workdir / "kueue").start(ca, cert, key)
        envkit.namespace(kube, NS)
        kueue.queues({s: {envkit.REGION: s} for s in SITES}, dict.fromkeys(SITES, QUOTA), [NS])
        yield plane
    finally:
        if kueue is not None:
            kueue.stop()
        plane.stop()


@pytest.fixture(scope="module")
def kube(plane: ControlPlane) -> Kube:
    return plane.admin()


@pytest.fixture(scope="module")
def operator(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[OperatorProcess]:
    workdir = tmp_path_factory.mktemp("kueue-operator")
    kubeconfig = envkit.operator_kubeconfig(plane, workdir / "kubeconfig")
    with OperatorProcess(kubeconfig, workdir, env={
            "SUANDIAN_MODE": "kueue", "SUANDIAN_RETRY_DELAY": "1",
            "SUANDIAN_ADMISSION_TIMEOUT": "5s"}) as proc:
        yield proc


def workload_of(kube: Kube, job: dict[str, Any]) -> dict[str, Any] | None:
    found = kube.list(f"/apis/kueue.x-k8s.io/v1beta2/namespaces/{NS}/workloads",
                      labelSelector=f"kueue.x-k8s.io/job-uid={job['metadata']['uid']}")
    return found[0] if found else None


def reserved(workload: dict[str, Any] | None) -> str | None:
    cond = next((c for c in ((workload or {}).get("status") or {}).get("conditions") or []
                 if c["type"] == "QuotaReserved"), None)
    return f"{cond['status']}/{cond.get('reason')}" if cond else None


def bound_pods(kube: Kube, job: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in pods_of(kube, job) if p["spec"].get("nodeName")]


@pytest.mark.usefixtures("operator")
def test_a_deferred_job_holds_no_quota_and_kueue_admits_it_on_its_site_at_the_start(
        kube: Kube, start: datetime) -> None:
    cj = kube.create(computejob("later", namespace=NS, sites=["ningxia"], max_delay="20h",
                                cpu="2"))
    wait_for(lambda: status_of(kube, cj).get("phase") == "Deferred", timeout=60,
             what="Deferred")
    child = child_of(kube, cj)
    assert child is not None and child["spec"]["suspend"] is True  # Kueue's webhook
    assert child["metadata"]["annotations"][GATED_BY] == GATE
    assert child["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "default"
    workload = wait_for(lambda: workload_of(kube, child), timeout=30, what="its Workload")
    wait_for(lambda: reserved(workload_of(kube, child)) == "False/AdmissionGated",
             timeout=30, what="no quota held while gated")
    assert workload["metadata"]["ownerReferences"][0]["name"] == "later"

    # ningxia's green power comes now: the start removes Suandian's gate, Kueue admits
    envkit.set_green(kube, start, {"ningxia": lambda _: 200_000.0})
    wait_for(lambda: status_of(kube, cj).get("phase") == "Running", timeout=60,
             what="admitted by Kueue and running")
    child = child_of(kube, cj)
    assert child is not None and child["spec"]["suspend"] is False
    assert GATED_BY not in child["metadata"]["annotations"]
    admission = workload_of(kube, child)["status"]["admission"]  # type: ignore[index]
    assert admission["podSetAssignments"][0]["flavors"] == {"cpu": "ningxia",
                                                            "memory": "ningxia"}
    pods = wait_for(lambda: bound_pods(kube, child), timeout=60, what="its Pod bound")
    assert all(p["spec"]["nodeName"].startswith("ningxia-") for p in pods)
    status = status_of(kube, cj)
    assert status["startedAt"] and condition(status, "Started")["status"] == "True"
    posted(kube, cj, "Released")
    posted(kube, cj, "Started")


@pytest.mark.usefixtures("operator")
def test_another_controllers_gate_is_kept_and_the_job_waits_for_it(kube: Kube) -> None:
    manifest = computejob("two-gates", namespace=NS, sites=["gansu"], cpu="1")
    manifest["spec"]["template"]["metadata"] = {"annotations": {GATED_BY: "example.com/check"}}
    cj = kube.create(manifest)
    status = wait_for(lambda: (s := status_of(kube, cj)).get("phase") == "Admitting" and s,
                      timeout=60, what="released by Suandian")
    child = child_of(kube, cj)
    assert child is not None and child["metadata"]["annotations"][GATED_BY] == \
        "example.com/check"
    assert child["spec"]["suspend"] is True  # Kueue waits for the other gate
    held = wait_for(lambda: condition(status_of(kube, cj), "Admitted"), timeout=30,
                    what="the status to say who holds it")
    assert held["status"] == "False" and held["reason"] == "NotAdmitted"
    assert "not admitted since: held by example.com/check" in held["message"]
    assert len(posted(kube, cj, "NotAdmitted")) == 1
    # the other controller lets go: Kueue admits, the job runs
    kube.patch(path_of(child), [{"op": "remove", "path": "/metadata/annotations/"
                                 "kueue.x-k8s.io~1admission-gated-by"}],
               content_type="application/json-patch+json")
    status = wait_for(lambda: (s := status_of(kube, cj)).get("phase") == "Running" and s,
                      timeout=60, what="running once both gates are gone")
    assert condition(status, "Admitted")["status"] == "True"


@pytest.mark.usefixtures("operator")
def test_quota_taken_outside_suandian_moves_a_deferred_job_to_a_site_with_room(
        kube: Kube, start: datetime) -> None:
    """Deferred at ningxia (green later; guangdong is never green), then a Job outside
    Suandian takes ningxia's quota: Kueue could not admit it there at the start, so it
    is re-planned now onto guangdong's quota, its Job made again, and admitted there."""
    envkit.set_green(kube, start, {"ningxia": green(start)["ningxia"]})
    cj = kube.create(computejob("moves", namespace=NS, sites=["ningxia", "guangdong"],
                                max_delay="20h", cpu="4"))
    status = wait_for(lambda: (s := status_of(kube, cj)).get("phase") == "Deferred" and s,
                      timeout=60, what="deferred for ningxia's green power")
    assert status["site"] == "ningxia"
    outside = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "outside", "namespace": NS,
                            "labels": {"kueue.x-k8s.io/queue-name": "default"}},
               "spec": {"template": {"spec": {
                   "restartPolicy": "Never",
                   "nodeSelector": {envkit.REGION: "ningxia"},
                   "containers": [{"name": "c", "image": "busybox",
                                   "resources": {"requests": {"cpu": "6"}}}]}}}}
    kube.create(outside)  # with the first test's 2 CPUs, all 8 of ningxia's
    status = wait_for(lambda: (s := status_of(kube, cj)).get("phase") == "Running" and s,
                      timeout=60, what="re-planned and admitted where quota is left")
    assert status["site"] == "guangdong"
    posted(kube, cj, "Moved", text="guangdong")
    child = child_of(kube, cj)
    assert child is not None
    pods = wait_for(lambda: bound_pods(kube, child), timeout=60, what="its Pod bound")
    assert all(p["spec"]["nodeName"].startswith("guangdong-") for p in pods)


@pytest.mark.usefixtures("operator")
def test_a_deadline_that_cannot_be_met_is_reported_before_it_passes(kube: Kube) -> None:
    """No quota where it may run, and its latest start in 15 s: the deadline guarantee
    releases it anyway (the planner never waits past a latest start), Kueue cannot admit
    it, and a Warning says so with Kueue's own words, 15 minutes before the deadline."""
    latest = datetime.now(UTC) + timedelta(seconds=15)
    manifest = computejob("no-room", namespace=NS, sites=["ningxia"], duration="1h",
                          cpu="7")
    manifest["spec"]["deadline"] = {"completeBy": (latest + timedelta(hours=1, minutes=15)
                                                   ).strftime("%Y-%m-%dT%H:%M:%SZ")}
    cj = kube.create(manifest)
    wait_for(lambda: status_of(kube, cj).get("phase") == "Admitting", timeout=60,
             what="released at once, waiting for Kueue")
    warned = wait_for(lambda: [e for e in events_of(kube, cj)
                               if e["reason"] == "DeadlineAtRisk"], timeout=60,
                      what="the deadline at risk reported")
    assert warned[0]["type"] == "Warning"
    assert "not admitted by its latest start" in warned[0]["message"]
    assert "insufficient unused quota for cpu in flavor ningxia" in warned[0]["message"]
    assert datetime.now(UTC) < latest + timedelta(minutes=15)  # before the deadline
    status = status_of(kube, cj)
    assert status["phase"] == "Admitting"
    assert condition(status, "Admitted")["reason"] == "DeadlineAtRisk"


@pytest.mark.usefixtures("operator")
def test_the_charts_kueue_mode_rbac_refused_nothing(plane: ControlPlane) -> None:
    """Last of the Kueue scenarios: every request of the operator, as the chart's
    ServiceAccount with the chart's Kueue-mode RBAC, was allowed (the audit log)."""
    user = f"system:serviceaccount:{envkit.NAMESPACE}:{envkit.SERVICE_ACCOUNT}"
    seen = [e for e in plane.audit_events() if e["user"]["username"] == user]
    kueue = {(e["verb"], (e.get("objectRef") or {}).get("resource")) for e in seen
             if (e.get("objectRef") or {}).get("apiGroup") == "kueue.x-k8s.io"}
    assert {("list", "clusterqueues"), ("watch", "clusterqueues"), ("watch", "resourceflavors"),
            ("list", "workloads")} <= kueue
    assert [e["objectRef"] for e in seen if e["responseStatus"].get("code") == 403] == []


def test_kueue_mode_without_kueue_refuses_to_start(control_plane: ControlPlane,
                                                   operator_kubeconfig: Path) -> None:
    """The session's control plane runs no Kueue."""
    done = subprocess.run([sys.executable, "-m", "suandian", "run", "--kubeconfig",
                           str(operator_kubeconfig), "--standalone", "--metrics-port", "0"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "SUANDIAN_MODE": "kueue"})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "suandian run: invalid settings: SUANDIAN_MODE: kueue, but this cluster serves no "
        "Kueue API (clusterqueues.kueue.x-k8s.io v1beta2): install Kueue, or set "
        "SUANDIAN_MODE=native")

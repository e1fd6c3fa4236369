"""Karmada mode on real Karmada: three real control planes, Karmada's own binaries.

A Karmada API server (with Karmada's aggregated API server, webhook, controller manager
and scheduler from ``$SUANDIAN_KARMADA_BIN``) and two member clusters, each a full
control plane whose real scheduler binds Pods to a Ready Node (16 CPUs). The operator
runs against the Karmada API server as the chart's ServiceAccount with the chart's
Karmada-mode RBAC and ``SUANDIAN_MODE=karmada``. PowerSites name members: ``gansu`` by
name (``gansu-1``), ``guizhou`` by a label on its ``Cluster`` (``guizhou-1``).

The scenarios run in order on one set (about 15 s to start, 1.8 GiB): forecasts are
changed between them, and the last ones take the ``gansu-1`` member down for good.
"""

from __future__ import annotations

import base64
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
from tests.envtest.envkit import condition, posted, status_of
from tests.support.karmada import CLUSTERS, KarmadaSet, cluster_ready, missing_karmada
from tests.support.kube import Kube, path_of, wait_for
from tests.support.objects import computejob
from tests.support.process import OperatorProcess

NS = "envtest-karmada"
HUB = "suandian.io/hub"
MEMBERS = {"gansu-1": {HUB: "gansu"}, "guizhou-1": {HUB: "guizhou"}}
SITE_CLUSTERS = {"gansu": {"names": ["gansu-1"]}, "guizhou": {"selector": {HUB: "guizhou"}}}
POLICIES = f"/apis/policy.karmada.io/v1alpha1/namespaces/{NS}/propagationpolicies"
CHART_VALUES = {"operator": {"mode": "karmada"}}  # the control-plane part


def steady(_: datetime) -> float:
    return 200_000.0


def from_(start: datetime, hours: float) -> envkit.Green:
    later = start + timedelta(hours=hours)
    return lambda t: 200_000.0 if t >= later else 0.0


def member_site(name: str) -> dict[str, Any]:
    """The envtest PowerSite of ``name``, naming its member clusters instead of nodes."""
    site = envkit.powersite(name)
    del site["spec"]["nodeSelector"]
    site["spec"]["clusters"] = SITE_CLUSTERS[name]
    return site


@pytest.fixture(scope="module")
def start() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def karmada(tmp_path_factory: pytest.TempPathFactory, start: datetime
            ) -> Iterator[KarmadaSet]:
    require(missing_karmada())
    green = {"gansu": steady, "guizhou": from_(start, 6)}

    def setup(kube: Kube) -> None:
        envkit.install_crds(kube)
        envkit.install_chart_rbac(kube, CHART_VALUES)
        kube.apply_all([envkit.forecast_configmap(start, green),
                        *(member_site(s) for s in green)])
        envkit.namespace(kube, NS)

    def nodes(name: str, kube: Kube) -> None:
        envkit.add_nodes(kube, [(f"{name}-node", name, 16, 0)])

    workdir = tmp_path_factory.mktemp("karmada")
    karmada = KarmadaSet(workdir, MEMBERS)
    try:
        karmada.start(setup=setup, member_setup=nodes)
        yield karmada
    finally:
        karmada.stop()


@pytest.fixture(scope="module")
def kube(karmada: KarmadaSet) -> Kube:
    return karmada.admin()


@pytest.fixture(scope="module")
def operator(karmada: KarmadaSet, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[OperatorProcess]:
    """As docs/karmada.md installs it: the token is the one the Karmada control plane's
    token controller writes into the chart's token Secret."""
    assert karmada.host is not None
    kube = karmada.admin()
    (secret,) = [o for o in envkit.render_chart(CHART_VALUES) if o["kind"] == "Secret"]
    kube.apply_all([secret])
    path = f"/api/v1/namespaces/{envkit.NAMESPACE}/secrets/{secret['metadata']['name']}"
    token = wait_for(lambda: ((kube.get(path) or {}).get("data") or {}).get("token"),
                     timeout=60, what="the token controller to fill the chart's token Secret")
    workdir = tmp_path_factory.mktemp("karmada-operator")
    kubeconfig = karmada.host.kubeconfig(
        workdir / "kubeconfig", token=base64.b64decode(token).decode(),
        user=f"system:serviceaccount:{envkit.NAMESPACE}:{envkit.SERVICE_ACCOUNT}",
        namespace=envkit.NAMESPACE)
    with OperatorProcess(kubeconfig, workdir, env={
            "SUANDIAN_MODE": "karmada", "SUANDIAN_RETRY_DELAY": "1"}) as proc:
        yield proc


# -- reading the outcome ---------------------------------------------------------------


def policy(kube: Kube, name: str) -> dict[str, Any] | None:
    return kube.get(f"{POLICIES}/{name}")


def placed(kube: Kube, name: str) -> tuple[list[str], bool] | None:
    """The members a job's policy names and whether its dispatch is held."""
    found = policy(kube, name)
    if found is None:
        return None
    spec = found["spec"]
    return (spec["placement"]["clusterAffinity"]["clusterNames"],
            bool((spec.get("suspension") or {}).get("dispatching")))


def in_member(karmada: KarmadaSet, member: str, name: str) -> dict[str, Any] | None:
    return karmada.member(member).get(f"/apis/batch/v1/namespaces/{NS}/jobs/{name}")


def anywhere(karmada: KarmadaSet, name: str) -> list[str]:
    """The members holding a Job of that name (of those still up)."""
    return [m for m, plane in karmada.members.items() if plane._procs
            and in_member(karmada, m, name) is not None]


def bound_pods(karmada: KarmadaSet, member: str, name: str) -> list[dict[str, Any]]:
    pods = karmada.member(member).list(f"/api/v1/namespaces/{NS}/pods",
                                       labelSelector=f"batch.kubernetes.io/job-name={name}")
    return [p for p in pods if p["spec"].get("nodeName")]


def phase(kube: Kube, cj: dict[str, Any]) -> str | None:
    return status_of(kube, cj).get("phase")


def make(kube: Kube, name: str, **spec: Any) -> dict[str, Any]:
    return kube.create(computejob(name, namespace=NS, max_delay="20h", cpu="2", **spec))


# -- the scenarios, in order -------------------------------------------------------------


@pytest.mark.usefixtures("operator")
def test_a_job_runs_in_the_greenest_member_and_its_pods_are_bound_there(
        kube: Kube, karmada: KarmadaSet) -> None:
    cj = make(kube, "now")
    make(kube, "doomed")
    wait_for(lambda: phase(kube, cj) == "Running", timeout=90, what="Running")
    assert status_of(kube, cj)["site"] == "gansu"
    assert placed(kube, "now") == (["gansu-1"], False)
    job = kube.get(f"/apis/batch/v1/namespaces/{NS}/jobs/now") or {}
    assert job["metadata"]["annotations"]["suandian.io/member-cluster"] == "gansu-1"
    assert job["spec"]["suspend"] is False
    assert "affinity" not in job["spec"]["template"]["spec"]  # the member's nodes: its own
    wait_for(lambda: in_member(karmada, "gansu-1", "now"), timeout=30, what="Job in gansu-1")
    pods = wait_for(lambda: bound_pods(karmada, "gansu-1", "now"), timeout=60,
                    what="its Pod bound by gansu-1's scheduler")
    assert pods[0]["spec"]["nodeName"] == "gansu-1-node"
    assert in_member(karmada, "guizhou-1", "now") is None  # never two copies
    # the site's capacity is its Ready members' resource summary, as Karmada reports it
    site = wait_for(lambda: (kube.get("/apis/suandian.io/v1alpha1/powersites/gansu") or {}).get(
        "status", {}).get("nodes") == 1 and kube.get("/apis/suandian.io/v1alpha1/powersites/"
                                                     "gansu"), timeout=60, what="gansu's status")
    assert site["status"]["allocatable"]["cpu"] == "16"
    # Karmada aggregates the member's Job status into its own
    wait_for(lambda: ((kube.get(f"/apis/batch/v1/namespaces/{NS}/jobs/now") or {}).get(
        "status") or {}).get("active"), timeout=60, what="status aggregated from gansu-1")


@pytest.mark.usefixtures("operator")
def test_a_deferred_job_is_in_no_member(kube: Kube, karmada: KarmadaSet) -> None:
    cj = make(kube, "later", sites=["guizhou"])
    wait_for(lambda: phase(kube, cj) == "Deferred", timeout=60, what="Deferred")
    assert placed(kube, "later") == (["guizhou-1"], True)
    owner = (policy(kube, "later") or {})["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("ComputeJob", "later")
    envkit.settle(3)
    assert anywhere(karmada, "later") == []


@pytest.mark.usefixtures("operator")
def test_a_plan_change_moves_a_held_job_to_the_other_member(
        kube: Kube, karmada: KarmadaSet, start: datetime) -> None:
    envkit.set_green(kube, start, {"gansu": from_(start, 8)})
    cj = make(kube, "mover")
    wait_for(lambda: status_of(kube, cj).get("site") == "guizhou"
             and phase(kube, cj) == "Deferred", timeout=60, what="held at guizhou")
    assert placed(kube, "mover") == (["guizhou-1"], True)
    envkit.set_green(kube, start, {"gansu": from_(start, 2)})
    wait_for(lambda: placed(kube, "mover") == (["gansu-1"], True), timeout=60,
             what="its policy moved to gansu-1, still held")
    wait_for(lambda: status_of(kube, cj).get("site") == "gansu", timeout=30, what="at gansu")
    posted(kube, cj, "Moved")
    envkit.settle(2)
    assert anywhere(karmada, "mover") == []


def test_an_operator_restart_changes_nothing(kube: Kube, karmada: KarmadaSet,
                                             operator: OperatorProcess) -> None:
    before = {n: (policy(kube, n) or {})["metadata"]["resourceVersion"]
              for n in ("later", "mover", "now")}
    jobs = {n: (kube.get(f"/apis/batch/v1/namespaces/{NS}/jobs/{n}") or {})["metadata"][
        "resourceVersion"] for n in ("later", "mover")}
    operator.stop()
    operator.start()
    envkit.settle(8)
    assert {n: (policy(kube, n) or {})["metadata"]["resourceVersion"] for n in before} == before
    assert {n: (kube.get(f"/apis/batch/v1/namespaces/{NS}/jobs/{n}") or {})["metadata"][
        "resourceVersion"] for n in jobs} == jobs
    assert anywhere(karmada, "later") == anywhere(karmada, "mover") == []


@pytest.mark.usefixtures("operator")
def test_deleting_a_computejob_removes_it_everywhere(kube: Kube, karmada: KarmadaSet) -> None:
    cj = kube.get(f"/apis/suandian.io/v1alpha1/namespaces/{NS}/computejobs/doomed") or {}
    wait_for(lambda: bound_pods(karmada, "gansu-1", "doomed"), timeout=60,
             what="doomed running in gansu-1")
    kube.delete(path_of(cj))
    wait_for(lambda: in_member(karmada, "gansu-1", "doomed") is None, timeout=60,
             what="its Job gone from gansu-1")
    wait_for(lambda: policy(kube, "doomed") is None, timeout=60, what="its policy collected")
    wait_for(lambda: kube.get(f"/apis/batch/v1/namespaces/{NS}/jobs/doomed") is None,
             timeout=30, what="its Job gone from Karmada")


@pytest.mark.usefixtures("operator")
def test_a_member_made_not_ready_moves_held_jobs_and_reports_dispatched_ones(
        kube: Kube, karmada: KarmadaSet) -> None:
    assert placed(kube, "mover") == (["gansu-1"], True)
    karmada.stop_member("gansu-1")
    wait_for(lambda: cluster_ready(kube.get(f"{CLUSTERS}/gansu-1")) is False, timeout=90,
             what="gansu-1 NotReady in Karmada")
    wait_for(lambda: placed(kube, "mover") == (["guizhou-1"], True), timeout=60,
             what="the held job moved to guizhou-1")
    now = kube.get(f"/apis/suandian.io/v1alpha1/namespaces/{NS}/computejobs/now") or {}
    reach = wait_for(lambda: condition(status_of(kube, now), "Reachable"), timeout=60,
                     what="the dispatched job's Reachable condition")
    assert (reach["status"], reach["reason"]) == ("False", "MemberNotReady")
    assert "gansu-1" in reach["message"]
    posted(kube, now, "MemberNotReady", type="Warning")
    assert placed(kube, "now") == (["gansu-1"], False)  # left there: never a second copy


@pytest.mark.usefixtures("operator")
def test_at_the_start_held_jobs_are_dispatched_to_their_member(
        kube: Kube, karmada: KarmadaSet, start: datetime) -> None:
    envkit.set_green(kube, start, {"guizhou": steady})
    for name in ("later", "mover"):
        cj = kube.get(f"/apis/suandian.io/v1alpha1/namespaces/{NS}/computejobs/{name}") or {}
        wait_for(lambda c=cj: phase(kube, c) == "Running", timeout=90, what=f"{name} Running")
        assert placed(kube, name) == (["guizhou-1"], False)
        wait_for(lambda n=name: bound_pods(karmada, "guizhou-1", n), timeout=60,
                 what=f"{name}'s Pod bound by guizhou-1's scheduler")


def test_the_members_job_finishing_finishes_the_computejob(kube: Kube,
                                                         karmada: KarmadaSet) -> None:
    """Status comes back through Karmada's aggregation: the member's Pod succeeds (no
    kubelet: the test says so), the member's Job controller completes its Job, Karmada
    aggregates that into its Job, the operator accounts the run."""
    (pod,) = bound_pods(karmada, "guizhou-1", "later")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    karmada.member("guizhou-1").patch(
        f"/api/v1/namespaces/{NS}/pods/{pod['metadata']['name']}/status", {"status": {
            "phase": "Succeeded", "containerStatuses": [{
                "name": "main", "image": "busybox", "imageID": "", "ready": False,
                "restartCount": 0, "state": {"terminated": {
                    "exitCode": 0, "reason": "Completed", "startedAt": now,
                    "finishedAt": now}}}]}})
    cj = kube.get(f"/apis/suandian.io/v1alpha1/namespaces/{NS}/computejobs/later") or {}
    status = wait_for(lambda: (s := status_of(kube, cj)).get("phase") == "Succeeded" and s,
                      timeout=90, what="later Succeeded from its member's Job")
    assert status["completedAt"] and status["startedAt"]
    assert (condition(status, "Complete") or {}).get("status") == "True"
    job = kube.get(f"/apis/batch/v1/namespaces/{NS}/jobs/later") or {}
    assert any(c["type"] == "Complete" and c["status"] == "True"
               for c in job["status"].get("conditions") or [])  # aggregated by Karmada


def test_suandian_release_dispatches_held_jobs_to_their_member(
        kube: Kube, karmada: KarmadaSet, start: datetime, operator: OperatorProcess) -> None:
    """What the uninstall runs by hand in Karmada mode: a held job goes to its member."""
    envkit.set_green(kube, start, {"guizhou": from_(start, 6)})
    cj = make(kube, "parked", sites=["guizhou"])
    wait_for(lambda: phase(kube, cj) == "Deferred", timeout=60, what="parked Deferred")
    assert placed(kube, "parked") == (["guizhou-1"], True)
    done = subprocess.run([sys.executable, "-m", "suandian", "release", "--kubeconfig",
                           str(operator.kubeconfig)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert placed(kube, "parked") == (["guizhou-1"], False)
    wait_for(lambda: bound_pods(karmada, "guizhou-1", "parked"), timeout=60,
             what="parked's Pod bound in guizhou-1")
    assert phase(kube, cj) == "Running"


@pytest.mark.usefixtures("operator")
def test_a_member_back_makes_its_dispatched_job_reachable_again(
        kube: Kube, karmada: KarmadaSet) -> None:
    karmada.restart_member("gansu-1")
    wait_for(lambda: cluster_ready(kube.get(f"{CLUSTERS}/gansu-1")), timeout=90,
             what="gansu-1 Ready again in Karmada")
    now = kube.get(f"/apis/suandian.io/v1alpha1/namespaces/{NS}/computejobs/now") or {}
    reach = wait_for(lambda: (c := condition(status_of(kube, now), "Reachable")) and c[
        "status"] == "True" and c, timeout=60, what="Reachable=True")
    assert reach["reason"] == "Reachable"
    posted(kube, now, "Reachable", type="Normal")
    assert phase(kube, now) == "Running" and in_member(karmada, "gansu-1", "now") is not None


@pytest.mark.usefixtures("operator")
def test_a_site_of_nodes_is_refused_in_karmada_mode_naming_the_field(kube: Kube) -> None:
    stray = envkit.powersite("stray")  # a nodeSelector: the Karmada API server has no nodes
    kube.create(stray)
    ready = wait_for(lambda: condition(status_of(kube, stray), "ForecastReady"), timeout=60,
                     what="the stray site's ForecastReady condition")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.nodeSelector: picks nodes, but in Karmada mode a site is member clusters" in \
        ready["message"]
    kube.delete(path_of(stray))


def test_the_charts_karmada_mode_rbac_refused_nothing(karmada: KarmadaSet) -> None:
    assert karmada.host is not None
    user = f"system:serviceaccount:{envkit.NAMESPACE}:{envkit.SERVICE_ACCOUNT}"
    seen = [e for e in karmada.host.audit_events() if e["user"]["username"] == user]
    used = {(e["verb"], (e.get("objectRef") or {}).get("resource")) for e in seen
            if (e.get("objectRef") or {}).get("apiGroup") in ("policy.karmada.io",
                                                               "cluster.karmada.io")}
    assert {("list", "clusters"), ("watch", "clusters"), ("get", "propagationpolicies"),
            ("create", "propagationpolicies"), ("patch", "propagationpolicies")} <= used
    assert [e["objectRef"] for e in seen if e["responseStatus"].get("code") == 403] == []


def test_karmada_mode_refuses_to_start_without_karmadas_api(
        karmada: KarmadaSet, tmp_path: Path) -> None:
    """A member is a plain cluster: no cluster.karmada.io API."""
    config = karmada.members["guizhou-1"].kubeconfig(tmp_path / "kubeconfig")
    done = subprocess.run([sys.executable, "-m", "suandian", "run", "--kubeconfig",
                           str(config), "--standalone", "--metrics-port", "0"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "SUANDIAN_MODE": "karmada"})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "suandian run: invalid settings: SUANDIAN_MODE: karmada, but this API server serves "
        "no clusters (cluster.karmada.io/v1alpha1): run the operator against the Karmada "
        "API server (its kubeconfig), or set SUANDIAN_MODE=native")

"""ComputeJobs on a real control plane, the operator running as the chart's ServiceAccount.

What only a real server shows: the child Job admitted by the real Job API (and refused
where it would be), the real Job controller making Pods of unsuspended Jobs only, the
real kube-scheduler binding them within the required affinity, the real garbage
collector following owner references, ``observedGeneration`` against the server's
``generation``, and RBAC judging every request the operator makes (the audit log).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.envtest import envkit
from tests.envtest.envkit import child_of, condition, events_of, pods_of, posted, status_of
from tests.support.controlplane import ControlPlane
from tests.support.kube import Kube, path_of, wait_for
from tests.support.objects import computejob
from tests.support.process import OperatorProcess

from suandian.units import parse_time

from conftest import ROOT, load_yaml

NS = "envtest-jobs"
pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture(scope="module", autouse=True)
def namespace(kube: Kube) -> str:
    return envkit.namespace(kube, NS)


def create(kube: Kube, manifest: dict[str, Any]) -> dict[str, Any]:
    return kube.create(manifest)


def phase_is(kube: Kube, cj: dict[str, Any], *phases: str) -> dict[str, Any] | None:
    status = status_of(kube, cj)
    return status if status.get("phase") in phases else None


def nodes_in(region: str) -> set[str]:
    return {name for name, where, _, _ in envkit.NODES if where == region}


def test_a_job_placed_now_runs_on_a_node_of_its_site(kube: Kube) -> None:
    cj = create(kube, computejob("now", namespace=NS, sites=["gansu"], cpu="2"))
    status = wait_for(lambda: phase_is(kube, cj, "Running"), timeout=60, what="Running")
    assert status["site"] == "gansu" and status["jobName"] == "now"
    created = parse_time(cj["metadata"]["creationTimestamp"])
    assert parse_time(status["plannedStart"]) >= created  # not the start of its slot
    assert condition(status, "Started")["reason"] == "Immediate"
    child = child_of(kube, cj)
    assert child is not None and child["spec"]["suspend"] is False
    owner = child["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("ComputeJob",
                                                                  cj["metadata"]["uid"], True)
    # the real Job controller makes the Pod, the real scheduler binds it inside the site
    pod = wait_for(lambda: next((p for p in pods_of(kube, child)
                                 if p["spec"].get("nodeName")), None),
                   timeout=60, what="a Pod bound to a node")
    assert pod["spec"]["nodeName"] in nodes_in("gansu")
    posted(kube, cj, "Started")


def test_a_deferred_job_waits_suspended_with_its_site_required(kube: Kube,
                                                               session_start: datetime) -> None:
    cj = create(kube, computejob("later", namespace=NS, sites=["ningxia"], max_delay="20h"))
    status = wait_for(lambda: phase_is(kube, cj, "Deferred"), timeout=60, what="Deferred")
    assert status["site"] == "ningxia"
    assert parse_time(status["plannedStart"]) >= session_start + envkit.GREEN_AFTER - timedelta(
        minutes=15)  # waits for ningxia's green power
    child = child_of(kube, cj)
    assert child is not None and child["spec"]["suspend"] is True
    required = child["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert required == [{"matchExpressions": [{"key": envkit.REGION, "operator": "In",
                                               "values": ["ningxia"]}]}]
    envkit.settle(3)  # the Job controller makes no Pod of a suspended Job
    assert pods_of(kube, child) == []
    deferred = posted(kube, cj, "Deferred")
    assert deferred and "ningxia" in deferred[0]["message"]


def test_an_edit_before_the_start_rebuilds_the_child(kube: Kube) -> None:
    cj = create(kube, computejob("edited", namespace=NS, sites=["ningxia"], max_delay="20h"))
    wait_for(lambda: phase_is(kube, cj, "Deferred"), timeout=60, what="Deferred")
    first_uid = child_of(kube, cj)["metadata"]["uid"]  # type: ignore[index]
    edited = kube.patch(path_of(cj), {"spec": {"sites": ["gansu"]}})
    assert edited["metadata"]["generation"] == 2
    status = wait_for(lambda: (s := phase_is(kube, cj, "Running")) and s.get(
        "observedGeneration") == 2 and s, timeout=60, what="re-planned at generation 2")
    assert status["site"] == "gansu"
    child = child_of(kube, cj)
    assert child is not None and child["metadata"]["uid"] != first_uid
    assert child["spec"]["suspend"] is False
    posted(kube, cj, "SpecChanged")


def test_deleting_a_job_lets_the_garbage_collector_remove_its_child(kube: Kube) -> None:
    cj = create(kube, computejob("deleted", namespace=NS, sites=["ningxia"], max_delay="20h"))
    wait_for(lambda: child_of(kube, cj), timeout=60, what="the child Job")
    assert kube.delete(path_of(cj))
    wait_for(lambda: child_of(kube, cj) is None, timeout=60,
             what="the garbage collector to delete the child Job")


def test_a_finished_job_is_accounted(kube: Kube) -> None:
    cj = create(kube, computejob("finished", namespace=NS, sites=["gansu"], cpu="1",
                                 watts=2000.0))
    child = wait_for(lambda: child_of(kube, cj), timeout=60, what="the child Job")
    pod = wait_for(lambda: next((p for p in pods_of(kube, child)
                                 if p["spec"].get("nodeName")), None), timeout=60,
                   what="its Pod bound")
    meta = pod["metadata"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # no kubelet here: the test reports the Pod's success, the real Job controller the rest
    kube.patch(f"/api/v1/namespaces/{NS}/pods/{meta['name']}/status", {"status": {
        "phase": "Succeeded", "containerStatuses": [{
            "name": "main", "image": "busybox", "imageID": "", "ready": False,
            "restartCount": 0, "state": {"terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}}]}})
    status = wait_for(lambda: phase_is(kube, cj, "Succeeded"), timeout=60, what="Succeeded")
    assert status["energyKWh"] >= 0 and 0 <= status["actualGreenFraction"] <= 1
    assert status["completedAt"] and "actualGrams" in status["emissions"]
    # the real API server's schema took the account's provenance and the plan's estimate
    assert status["measurement"]["provenance"] == "modelled"
    assert "SUANDIAN_MEASURE_URL" in status["measurement"]["reason"]
    assert sum(status["measurement"]["energyBySourceKWh"].values()) == pytest.approx(
        status["energyKWh"], abs=1e-4)
    assert status["powerEstimate"] == {"source": "declared", "watts": 2000.0,
                                       "template": status["measurement"]["template"]}
    assert condition(status, "Complete")["status"] == "True"
    posted(kube, cj, "Succeeded")


def test_the_gpu_example_gets_the_limits_kubernetes_requires(kube: Kube) -> None:
    """examples/computejobs/urgent-eval.yaml requests GPUs without limits: the server
    refused its child Job (422) until the builder completed limit = request."""
    example = load_yaml(ROOT / "examples/computejobs/urgent-eval.yaml")
    envkit.namespace(kube, example["metadata"]["namespace"])
    cj = create(kube, example)
    status = wait_for(lambda: phase_is(kube, cj, "Running"), timeout=60, what="Running")
    assert status["site"] == "yangtze-delta"  # the only allowed site with GPUs
    child = child_of(kube, cj)
    assert child is not None
    resources = child["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"] == {"nvidia.com/gpu": "2"}
    pod = wait_for(lambda: next((p for p in pods_of(kube, child)
                                 if p["spec"].get("nodeName")), None), timeout=60,
                   what="its Pod bound to the GPU node")
    assert pod["spec"]["nodeName"] in nodes_in("yangtze-delta")


def test_a_child_the_server_refuses_is_reported_and_retried_with_backoff(
        kube: Kube, control_plane: ControlPlane) -> None:
    manifest = computejob("refused", namespace=NS, sites=["gansu"])
    containers = manifest["spec"]["template"]["spec"]["template"]["spec"]["containers"]
    containers[0]["name"] = "Not_A_DNS_Label"  # the CRD lets it through; the Job API does not
    cj = create(kube, manifest)
    status = wait_for(lambda: (s := status_of(kube, cj)) and condition(
        s, "ChildJobCreated") and s, timeout=60, what="the ChildJobCreated condition")
    refused = condition(status, "ChildJobCreated")
    assert refused["status"] == "False" and refused["reason"] == "Invalid"
    assert "RFC 1123" in refused["message"] and "fix spec.template" in refused["message"]
    assert status["phase"] == "Pending" and "refused the child Job (422" in status["reason"]
    warnings = posted(kube, cj, "ChildJobRefused")
    assert warnings and warnings[0]["type"] == "Warning"
    assert child_of(kube, cj) is None
    # backoff from 10 s: two attempts in 12 s (the operator's 1 s retry delay: twelve)
    envkit.settle(12)
    attempts = _creates(control_plane, "refused")
    assert 2 <= attempts <= 3, attempts
    assert len([e for e in events_of(kube, cj) if e["reason"] == "ChildJobRefused"]) == 1
    # the user fixes the template: the edit wakes the job at once
    containers[0]["name"] = "main"
    kube.patch(path_of(cj), {"spec": {"template": manifest["spec"]["template"]}})
    status = wait_for(lambda: phase_is(kube, cj, "Running"), timeout=30, what="Running")
    assert condition(status, "ChildJobCreated")["status"] == "True"


def _creates(plane: ControlPlane, name: str) -> int:
    """Job creations the operator's ServiceAccount attempted for ``name`` (audit log)."""
    return sum(1 for e in plane.audit_events()
               if e.get("verb") == "create" and e["objectRef"].get("resource") == "jobs"
               and e["objectRef"].get("namespace") == NS
               and e["objectRef"].get("name") == name
               and e["user"]["username"].endswith(f":{envkit.SERVICE_ACCOUNT}"))


def test_a_deadline_past_at_creation_is_invalid_even_with_notbefore(kube: Kube) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    manifest = computejob("stale", namespace=NS, sites=["gansu"], duration="3h")
    manifest["spec"]["notBefore"] = (past - timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest["spec"]["deadline"] = {"completeBy": past.strftime("%Y-%m-%dT%H:%M:%SZ")}
    cj = create(kube, manifest)  # admitted: no CRD rule can see the creation time
    status = wait_for(lambda: (s := status_of(kube, cj)) and condition(s, "Valid") and s,
                      timeout=60, what="the Valid condition")
    assert condition(status, "Valid")["status"] == "False"
    assert "deadline has passed" in condition(status, "Valid")["message"]
    posted(kube, cj, "InvalidSpec", type="Warning")
    envkit.settle(2)
    assert child_of(kube, cj) is None


def test_no_request_of_the_operator_was_refused_by_rbac(control_plane: ControlPlane,
                                                        operator: OperatorProcess) -> None:
    """Last in the module: every request the operator made so far, as the chart's
    ServiceAccount, was allowed (the audit log records the answer of each)."""
    user = f"system:serviceaccount:{envkit.NAMESPACE}:{envkit.SERVICE_ACCOUNT}"
    seen = [e for e in control_plane.audit_events() if e["user"]["username"] == user]
    assert len(seen) > 50, "the operator made too few requests for this check to mean much"
    forbidden = [(e["verb"], e["objectRef"], e["responseStatus"].get("message"))
                 for e in seen if e["responseStatus"].get("code") == 403]
    assert forbidden == []
    assert operator.alive

"""The child Job and its patches, built without any API server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from suandian.k8s.decision import Decision
from suandian.k8s.jobs import (
    LABEL_SITE,
    affinity_patch,
    build_child_job,
    child_job_name,
    job_state,
    node_affinity,
    overcommit_allowed,
    suspend_patch,
)

T0 = datetime(2026, 6, 21, tzinfo=UTC)
SITE = {"topology.kubernetes.io/region": "ningxia"}


def decision(site: str = "ningxia", **kw) -> Decision:  # type: ignore[no-untyped-def]
    return Decision(site=site, planned_start=T0 + timedelta(hours=6),
                    latest_start=T0 + timedelta(hours=9), reason="waiting for wind",
                    node_preferences=(("n1", 80), ("n2", 200)), **kw)


def computejob(affinity=None):  # type: ignore[no-untyped-def]
    pod_spec = {"containers": [{"name": "main", "image": "busybox"}]}
    if affinity is not None:
        pod_spec["affinity"] = affinity
    return {
        "apiVersion": "suandian.io/v1alpha1", "kind": "ComputeJob",
        "metadata": {"name": "etl", "namespace": "batch", "uid": "u-1"},
        "spec": {"template": {"metadata": {"labels": {"team": "data"}},
                              "spec": {"backoffLimit": 2, "template": {"spec": pod_spec}}}},
    }


def test_child_job_is_suspended_owned_pinned_and_annotated():
    job = build_child_job(computejob(), decision(), SITE, timedelta(hours=2))
    assert job["spec"]["suspend"] is True
    assert job["spec"]["backoffLimit"] == 2
    owner = job["metadata"]["ownerReferences"][0]
    assert owner == {"apiVersion": "suandian.io/v1alpha1", "kind": "ComputeJob", "name": "etl",
                     "uid": "u-1", "controller": True, "blockOwnerDeletion": True}
    assert job["metadata"]["labels"]["team"] == "data"
    assert job["metadata"]["labels"][LABEL_SITE] == "ningxia"
    annotations = job["metadata"]["annotations"]
    assert annotations["suandian.io/planned-start"] == "2026-06-21T06:00:00Z"
    assert annotations["suandian.io/duration-seconds"] == "7200"
    node = job["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    terms = node["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [
        {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["ningxia"]}]}]
    weights = [p["weight"] for p in node["preferredDuringSchedulingIgnoredDuringExecution"]]
    assert weights == [80, 100]  # clamped to the API's 1..100


def test_site_is_anded_into_every_required_term_the_user_wrote():
    user = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["a100"]}]},
            {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["h100"]}]},
        ]}}}
    affinity = node_affinity(user, SITE, ())
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert len(terms) == 2
    for term in terms:
        assert {"key": "topology.kubernetes.io/region", "operator": "In",
                "values": ["ningxia"]} in term["matchExpressions"]
    assert user["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "gpu", "operator": "In", "values": ["a100"]}]  # the input is not mutated


def test_moving_replaces_our_terms_and_keeps_the_users():
    user = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 5, "preference": {"matchExpressions": [
            {"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}
    job = build_child_job(computejob(user), decision(), SITE, timedelta(hours=1))
    moved = affinity_patch(job, decision("guangdong"),
                           {"topology.kubernetes.io/region": "guangdong"}, user)
    node = moved["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    exprs = node["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchExpressions"]
    assert exprs == [{"key": "topology.kubernetes.io/region", "operator": "In",
                      "values": ["guangdong"]}]
    preferred = node["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred[0]["weight"] == 5 and len(preferred) == 3
    assert moved["metadata"]["labels"][LABEL_SITE] == "guangdong"


def test_long_names_are_shortened_deterministically():
    name = "x" * 80
    assert child_job_name(name) == child_job_name(name)
    assert len(child_job_name(name)) <= 63
    assert child_job_name("short") == "short"


def test_suspend_patch_and_job_state():
    assert suspend_patch(False) == {"spec": {"suspend": False}}
    assert job_state({"spec": {"suspend": True}}) == "Suspended"
    assert job_state({"spec": {"suspend": False}, "status": {"startTime": "t"}}) == "Running"
    assert job_state({"spec": {}, "status": {"conditions": [
        {"type": "Complete", "status": "True"}]}}) == "Complete"
    assert job_state({"spec": {}, "status": {"conditions": [
        {"type": "Failed", "status": "True"}]}}) == "Failed"
    assert job_state({"spec": {"suspend": False}}) == "Pending"


def test_extended_resources_get_the_limit_kubernetes_requires() -> None:
    """A GPU request without a limit is refused by the API server (422, "Limit must be
    set for non overcommitable resources"): the child carries limit = request; native
    resources stay overcommittable, and limits the user set are left to the server."""
    cj = computejob()
    pod = cj["spec"]["template"]["spec"]["template"]["spec"]
    pod["containers"][0]["resources"] = {"requests": {
        "cpu": "16", "memory": "64Gi", "nvidia.com/gpu": 2, "hugepages-2Mi": "1Gi",
        "example.kubernetes.io/thing": 1}}
    pod["initContainers"] = [{"name": "fetch", "image": "busybox", "resources": {
        "requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 3}}}]
    job = build_child_job(cj, decision(), SITE, timedelta(hours=1))
    spec = job["spec"]["template"]["spec"]
    assert spec["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 2,
                                                            "hugepages-2Mi": "1Gi"}
    assert spec["containers"][0]["resources"]["requests"]["cpu"] == "16"
    assert spec["initContainers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 3}
    assert "limits" not in pod["containers"][0]["resources"]  # the ComputeJob is untouched
    assert [r for r in ("cpu", "memory", "ephemeral-storage", "example.kubernetes.io/x",
                        "nvidia.com/gpu", "hugepages-1Gi") if not overcommit_allowed(r)
            ] == ["nvidia.com/gpu", "hugepages-1Gi"]

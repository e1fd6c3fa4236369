"""Operator settings from the environment; the cluster view over index stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from suandian.config import Settings
from suandian.controllers.view import ClusterView, node_record, pod_request_record
from suandian.errors import InvalidSpecError


def test_settings_from_environment_with_units():
    s = Settings.from_env({"SUANDIAN_REPLAN_INTERVAL": "90s", "SUANDIAN_SAFETY_MARGIN": "600",
                           "SUANDIAN_RISK_AVERSION": "0.8", "UNRELATED": "x"})
    assert s.replan_interval == timedelta(seconds=90)
    assert s.safety_margin == timedelta(minutes=10)
    assert s.risk_aversion == 0.8
    assert s.horizon_slots == Settings().horizon_slots


def test_bad_settings_name_each_variable():
    with pytest.raises(InvalidSpecError) as err:
        Settings.from_env({"SUANDIAN_RISK_AVERSION": "high", "SUANDIAN_HORIZON_SLOTS": "0"})
    assert "SUANDIAN_RISK_AVERSION" in err.value.fields
    with pytest.raises(InvalidSpecError) as err:
        Settings.from_env({"SUANDIAN_HORIZON_SLOTS": "0"})
    assert err.value.fields == ("SUANDIAN_HORIZON_SLOTS",)


def test_move_thresholds_out_of_range_are_named():
    with pytest.raises(InvalidSpecError) as err:
        Settings.from_env({"SUANDIAN_MOVE_THRESHOLD_G": "-5",
                           "SUANDIAN_MOVE_THRESHOLD_SHARE": "1.5"})
    assert err.value.fields == ("SUANDIAN_MOVE_THRESHOLD_G", "SUANDIAN_MOVE_THRESHOLD_SHARE")
    fine = Settings.from_env({"SUANDIAN_MOVE_THRESHOLD_G": "0",
                              "SUANDIAN_MOVE_THRESHOLD_SHARE": "0"})
    assert (fine.move_threshold_g, fine.move_threshold_share) == (0.0, 0.0)


def test_the_planner_settings_reach_the_planner_and_are_checked():
    """The delay cost and the repair's budget are settings of the operator too, passed to
    the planner as they are, and refused out of range with the variable's name."""
    from suandian.controllers.clock import LoopClock
    from suandian.controllers.planning import PlanningService

    settings = Settings.from_env({"SUANDIAN_DELAY_PENALTY_SHARE_H": "0.02",
                                  "SUANDIAN_REPAIR_WORK": "100", "SUANDIAN_REPAIR_JOBS": "0"})
    service = PlanningService(settings, LoopClock(datetime(2026, 6, 1, tzinfo=UTC)),
                              dict, lambda: None)
    params = service.params
    assert (params.delay_penalty_share_h, params.repair_work, params.repair_jobs) == (
        0.02, 100, 0)
    with pytest.raises(InvalidSpecError) as err:
        Settings.from_env({"SUANDIAN_DELAY_PENALTY_SHARE_H": "2",
                           "SUANDIAN_REPAIR_WORK": "-1"})
    assert err.value.fields == ("SUANDIAN_DELAY_PENALTY_SHARE_H", "SUANDIAN_REPAIR_WORK")


def test_every_setting_is_described():
    described = Settings.describe()
    assert len(described) == len(Settings.__dataclass_fields__)
    assert all(meaning for _, _, meaning in described)


def node(name: str, region: str, cpu: str, memory: str = "8Gi", unschedulable: bool = False):  # type: ignore[no-untyped-def]
    return node_record(name, {"metadata": {"labels": {"region": region}},
                              "spec": {"unschedulable": unschedulable},
                              "status": {"allocatable": {"cpu": cpu, "memory": memory,
                                                         "pods": "110"}}})


def test_free_capacity_is_allocatable_minus_bound_requests():
    nodes = {"a": [node("a", "west", "16")], "b": [node("b", "west", "8")],
             "c": [node("c", "east", "32")], "d": [node("d", "west", "64", unschedulable=True)]}
    running = pod_request_record({"spec": {"nodeName": "a", "containers": [
        {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
        {"resources": {"requests": {"cpu": "1500m"}}}]}, "status": {"phase": "Running"}})
    done = pod_request_record({"spec": {"nodeName": "a", "containers": [
        {"resources": {"requests": {"cpu": "4"}}}]}, "status": {"phase": "Succeeded"}})
    assert done is None
    assert pod_request_record({"spec": {"containers": []}}) is None
    view = ClusterView(nodes, {"a": {"p1": running}})
    free = view.free_capacity({"region": "west"})
    assert free["cpu"] == pytest.approx(22.0)
    assert free["memory"] == pytest.approx(15.0)
    assert [n.name for n in view.site_nodes({"region": "east"})] == ["c"]
    assert view.site_nodes({}) == []  # an empty selector picks nothing, never everything


def test_the_cluster_cache_frees_a_pod_when_it_finishes_or_goes():
    from suandian.controllers.view import ClusterCache

    cache = ClusterCache()
    cache.set_node("a", {"metadata": {"labels": {"region": "west"}},
                         "status": {"allocatable": {"cpu": "16"}}})
    pod = {"spec": {"nodeName": "a", "containers": [
        {"resources": {"requests": {"cpu": "4"}}}]}, "status": {"phase": "Running"}}
    cache.set_pod("p1", pod)
    cache.set_pod("p2", pod)
    view = ClusterView(cache.nodes, cache.pod_requests)
    assert view.free_capacity({"region": "west"})["cpu"] == pytest.approx(8.0)
    cache.set_pod("p1", {**pod, "status": {"phase": "Succeeded"}})
    assert view.free_capacity({"region": "west"})["cpu"] == pytest.approx(12.0)
    cache.set_pod("p2", None)
    assert view.free_capacity({"region": "west"})["cpu"] == pytest.approx(16.0)
    assert cache.pod_requests == {} and cache.pod_nodes == {}
    cache.set_node("a", None)
    assert view.site_nodes({"region": "west"}) == []


def test_site_nodes_from_the_label_index_match_every_selector_as_a_scan_would():
    """The index answers exactly what matching each selector against each node did, in
    node order, and follows nodes added, relabelled, cordoned and removed."""
    import random

    from suandian.controllers.view import ClusterCache, selects

    rng = random.Random(7)
    cache = ClusterCache()
    view = ClusterView(cache.nodes, cache.pod_requests, lambda: cache.node_version)

    def set_random(name: str) -> None:
        labels = {k: rng.choice("xyz") for k in ("region", "zone", "tier") if rng.random() < .8}
        cache.set_node(name, {"metadata": {"labels": labels},
                              "spec": {"unschedulable": rng.random() < 0.1},
                              "status": {"allocatable": {"cpu": "4"}}})

    selectors = [{}, {"region": "x"}, {"zone": "y", "tier": "z"}, {"region": "q"},
                 {"region": "x", "zone": "x", "tier": "x"}]
    for step in range(200):
        name = f"n{rng.randrange(40)}"
        set_random(name) if rng.random() < 0.8 else cache.set_node(name, None)
        if step % 10 == 0:
            for selector in selectors:
                scan = [n for n in view.nodes() if n.schedulable and selects(selector, n.labels)]
                assert view.site_nodes(selector) == scan, (step, selector)
                assert view.free_capacity(selector)["cpu"] == pytest.approx(4.0 * len(scan))


def test_the_cluster_cache_keeps_only_what_the_controllers_read_of_a_child_job():
    from suandian.controllers.view import ClusterCache

    cache = ClusterCache()
    job = {"metadata": {
        "name": "j", "namespace": "n", "uid": "c-1", "labels": {"suandian.io/site": "a"},
        "annotations": {"suandian.io/run-seconds": "5", "kubectl.kubernetes.io/x": "big",
                        "kueue.x-k8s.io/admission-gated-by": "suandian.io/green-window"},
        "managedFields": [{"big": "x" * 1000}]},
        "spec": {"suspend": True, "template": {}}, "status": {"startTime": "t"}}
    cache.set_child("u", job)
    assert cache.child("u") == {
        "metadata": {"name": "j", "namespace": "n", "uid": "c-1",
                     "labels": {"suandian.io/site": "a"},
                     "annotations": {"suandian.io/run-seconds": "5"}},
        "spec": {"suspend": True}, "status": {"startTime": "t"}}
    # what the backend reads is kept too (Kueue mode: the admission gates)
    cache.kept_annotations = (*cache.kept_annotations, "kueue.x-k8s.io/admission-gated-by")
    cache.set_child("u", job)
    assert set(cache.child("u")["metadata"]["annotations"]) == {  # type: ignore[index]
        "suandian.io/run-seconds", "kueue.x-k8s.io/admission-gated-by"}
    cache.set_child("u", None)
    assert cache.child("u") is None and cache.child_jobs == {}


def test_an_older_copy_of_a_child_job_never_replaces_a_newer_one():
    from suandian.controllers.view import ClusterCache

    def job(version: str, suspend: bool) -> dict:  # type: ignore[type-arg]
        return {"metadata": {"name": "j", "namespace": "n", "resourceVersion": version},
                "spec": {"suspend": suspend}}

    cache = ClusterCache()
    cache.set_child("u", job("7", suspend=False))  # the answer to our unsuspend patch
    cache.set_child("u", job("5", suspend=True))  # a watch event from before it, late
    assert cache.child("u")["spec"]["suspend"] is False  # type: ignore[index]
    cache.set_child("u", job("9", suspend=True))  # newer news wins
    assert cache.child("u")["spec"]["suspend"] is True  # type: ignore[index]
    cache.set_child("u", None)
    cache.set_child("u", job("3", suspend=False))  # a new child after a deletion
    assert cache.child("u") is not None

"""Karmada mode's pure parts: the Job and PropagationPolicy it builds, what it reads of
``Cluster`` objects, the capacity it plans on, the requests it sends (the real-Karmada
tier proves them on real Karmada: tests/envtest/test_karmada.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from suandian.api.powersite import MemberClusters, Placement, PowerSiteSpec
from suandian.backends import KarmadaBackend, backend_for
from suandian.backends.karmada import MemberView
from suandian.config import Settings
from suandian.errors import InvalidSpecError, KubeApiError, PlanningError
from suandian.k8s.decision import Decision
from suandian.k8s.jobs import ANNOTATION_RUN_SECONDS, job_state
from suandian.k8s.karmada import (
    ANNOTATION_MEMBER,
    choose_member,
    cluster_free,
    karmada_job,
    policy_state,
    propagation_policy,
)

T0 = datetime(2026, 6, 21, tzinfo=UTC)
GANSU = Placement(clusters=MemberClusters(names=["gansu-1", "gansu-2"]))
GUIZHOU = Placement(clusters=MemberClusters(selector={"suandian.io/hub": "guizhou"}))


def decision(site: str = "gansu", prefs: tuple[tuple[str, int], ...] = ()) -> Decision:
    return Decision(site=site, planned_start=T0 + timedelta(hours=6),
                    latest_start=T0 + timedelta(hours=9), reason="waiting for wind",
                    node_preferences=prefs)


def computejob(affinity: dict[str, Any] | None = None) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
    if affinity is not None:
        pod["affinity"] = affinity
    return {"apiVersion": "suandian.io/v1alpha1", "kind": "ComputeJob",
            "metadata": {"name": "etl", "namespace": "batch", "uid": "u-1"},
            "spec": {"template": {"spec": {"template": {"spec": pod}}}}}


def cluster(name: str, *, ready: bool = True, labels: dict[str, str] | None = None,
            allocatable: dict[str, str] | None = None, allocated: dict[str, str] | None = None,
            allocating: dict[str, str] | None = None) -> dict[str, Any]:
    summary: dict[str, Any] = {"allocatable": allocatable or {"cpu": "16", "memory": "64Gi"}}
    if allocated:
        summary["allocated"] = allocated
    if allocating:
        summary["allocating"] = allocating
    return {"metadata": {"name": name, "labels": labels or {}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "message": "cluster is healthy" if ready else
                                       "cluster is not reachable"}],
                       "resourceSummary": summary}}


def backend(*clusters: dict[str, Any]) -> KarmadaBackend:
    chosen = KarmadaBackend()
    ((_, _, reset, _),) = chosen.feeds()
    reset(list(clusters))
    return chosen


MEMBERS = (cluster("gansu-1"), cluster("gansu-2", allocated={"cpu": "10"}),
           cluster("guizhou-1", labels={"suandian.io/hub": "guizhou"}),
           cluster("guizhou-2", labels={"suandian.io/hub": "guizhou"}, ready=False))


# -- the API ---------------------------------------------------------------------------


def test_a_site_names_nodes_or_member_clusters_exactly_once() -> None:
    base = {"location": {"latitude": 36.0, "longitude": 103.8, "timeZone": "Asia/Shanghai"},
            "grid": {"importLimitKW": 1000, "carbonIntensity": 550}}
    spec = PowerSiteSpec.model_validate({**base, "clusters": {"names": ["gansu-1"]}})
    assert spec.placement.clusters is not None and dict(spec.placement) == {}
    nodes = PowerSiteSpec.model_validate({**base, "nodeSelector": {"region": "gansu"}})
    assert dict(nodes.placement) == {"region": "gansu"} and nodes.placement.clusters is None
    for wrong in ({}, {"nodeSelector": {"region": "gansu"}, "clusters": {"names": ["a"]}}):
        with pytest.raises(ValueError, match="exactly one of 'nodeSelector'"):
            PowerSiteSpec.model_validate({**base, **wrong})
    for wrong_clusters in ({}, {"names": ["a"], "selector": {"hub": "x"}}):
        with pytest.raises(ValueError, match="exactly one of 'names'"):
            MemberClusters.model_validate(wrong_clusters)
    with pytest.raises(ValueError):
        MemberClusters.model_validate({"names": [""]})


def test_member_clusters_pick_by_name_or_by_labels() -> None:
    assert MemberClusters(names=["a"]).picks("a", {}) and not MemberClusters(
        names=["a"]).picks("b", {})
    by_label = MemberClusters(selector={"hub": "gansu", "tier": "gpu"})
    assert by_label.picks("x", {"hub": "gansu", "tier": "gpu", "zone": "1"})
    assert not by_label.picks("x", {"hub": "gansu"})


# -- builders --------------------------------------------------------------------------


def test_the_karmada_job_is_held_with_no_site_affinity_and_names_its_member() -> None:
    body = karmada_job(computejob(), decision(prefs=(("gansu-2", 90),)), "gansu-2",
                       timedelta(hours=1))
    assert body["spec"]["suspend"] is True
    assert "affinity" not in body["spec"]["template"]["spec"]  # no node affinity, no prefs
    assert body["metadata"]["annotations"][ANNOTATION_MEMBER] == "gansu-2"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    user = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    kept = karmada_job(computejob(user), decision(), "gansu-1", timedelta(hours=1))
    assert kept["spec"]["template"]["spec"]["affinity"] == user


def test_the_policy_names_one_member_holds_dispatch_and_is_owned_by_the_computejob() -> None:
    job = karmada_job(computejob(), decision(), "gansu-1", timedelta(hours=1))
    held = propagation_policy(job, "gansu-1", dispatch=False)
    assert held["metadata"]["name"] == "etl" and held["metadata"]["namespace"] == "batch"
    assert held["spec"]["resourceSelectors"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "etl"}]
    assert held["spec"]["placement"]["clusterAffinity"] == {"clusterNames": ["gansu-1"]}
    assert {(t["key"], t["effect"], "tolerationSeconds" in t)  # failover never evicts it
            for t in held["spec"]["placement"]["clusterTolerations"]} == {
        ("cluster.karmada.io/not-ready", "NoExecute", False),
        ("cluster.karmada.io/unreachable", "NoExecute", False)}
    assert held["spec"]["suspension"] == {"dispatching": True}
    owner = held["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], "blockOwnerDeletion" in owner) == (
        "ComputeJob", "u-1", False)
    assert policy_state(held) == (("gansu-1",), False)
    assert policy_state(propagation_policy(job, "b", dispatch=True)) == (("b",), True)
    assert policy_state(None) is None


def test_free_capacity_is_allocatable_minus_allocated_and_allocating() -> None:
    free = cluster_free(cluster("a", allocatable={"cpu": "16", "memory": "64Gi",
                                                  "nvidia.com/gpu": "4"},
                                allocated={"cpu": "6", "memory": "16Gi"},
                                allocating={"cpu": "2", "nvidia.com/gpu": "1"}))
    assert free == {"cpu": 8.0, "memory": 48.0, "nvidia.com/gpu": 3.0}
    assert cluster_free(cluster("a", allocated={"cpu": "20"}))["cpu"] == 0.0  # never < 0
    assert set(cluster_free(cluster("a", ready=False)).values()) == {0.0}


def test_the_member_chosen_stays_else_the_planners_best_else_the_first() -> None:
    assert choose_member(["a", "b"], (("b", 10), ("a", 90)), current="b") == "b"
    assert choose_member(["a", "b"], (("b", 10), ("a", 90)), current="c") == "a"
    assert choose_member(["b", "a"], ()) == "a"
    assert choose_member([], (("a", 1),)) is None


def test_a_job_dispatched_but_suspended_in_the_member_shows_no_status_and_is_held() -> None:
    """Karmada aggregates nothing for a Job suspended in its member (``status: {}``): the
    state comes from the Karmada Job's ``spec.suspend``."""
    job = {"spec": {"suspend": True}, "status": {}}
    assert job_state(job) == "Suspended"
    assert job_state({"spec": {"suspend": False}, "status": {}}) == "Pending"


# -- the backend -----------------------------------------------------------------------


def test_the_mode_picks_the_karmada_backend() -> None:
    assert isinstance(backend_for(Settings(mode="karmada")), KarmadaBackend)
    assert Settings.from_env({"SUANDIAN_MODE": "karmada"}).mode == "karmada"


class Nodes:
    """A capacity view of a cluster with one node-selected site (a Karmada API server
    has no nodes; a site that names nodes reads them)."""

    def site_nodes(self, selector: Any) -> list[Any]:
        return ["node"] if dict(selector) == {"r": "x"} else []

    def free_capacity(self, selector: Any) -> dict[str, float]:
        return {"cpu": 1.0} if dict(selector) == {"r": "x"} else {}

    def allocatable(self, selector: Any) -> dict[str, float]:
        return {"cpu": 2.0} if dict(selector) == {"r": "x"} else {}


def test_a_sites_capacity_is_its_ready_members() -> None:
    view = backend(*MEMBERS).view(Nodes())
    assert isinstance(view, MemberView)
    assert [n.name for n in view.site_nodes(GANSU)] == ["gansu-1", "gansu-2"]
    assert [n.name for n in view.site_nodes(GUIZHOU)] == ["guizhou-1"]  # guizhou-2 NotReady
    assert view.free_capacity(GANSU)["cpu"] == pytest.approx(22.0)  # 16 + (16 - 10)
    assert view.allocatable(GANSU)["cpu"] == pytest.approx(32.0)
    assert view.free_capacity(GUIZHOU)["memory"] == pytest.approx(64.0)
    assert view.free_capacity(Placement({"r": "x"})) == {"cpu": 1.0}  # a node site
    assert view.site_nodes({"r": "x"}) == ["node"]


def test_the_feed_replans_on_capacity_and_steps_every_job_on_readiness() -> None:
    chosen, calls = KarmadaBackend(), []
    ((path, apply, reset, _),) = chosen.feeds(lambda: calls.append("replan"),
                                              lambda: calls.append("wake"))
    assert path == "/apis/cluster.karmada.io/v1alpha1/clusters"
    reset([cluster("a")])
    assert calls == ["replan", "wake"]
    calls.clear()
    apply("MODIFIED", cluster("a"))  # a status update that changes nothing
    assert calls == []
    apply("MODIFIED", cluster("a", allocated={"cpu": "4"}))
    assert calls == ["replan"]
    calls.clear()
    apply("MODIFIED", cluster("a", ready=False, allocated={"cpu": "4"}))
    assert calls == ["replan", "wake"]
    calls.clear()
    apply("DELETED", cluster("a"))
    assert calls == ["replan", "wake"] and chosen.members == {}


def released(member: str) -> dict[str, Any]:
    return {"metadata": {"name": "etl", "namespace": "batch", "uid": "j-1",
                         "annotations": {ANNOTATION_MEMBER: member}},
            "spec": {"suspend": False}}


def test_trouble_is_a_released_job_on_a_member_not_ready_or_gone() -> None:
    chosen = backend(*MEMBERS)
    assert chosen.trouble(released("gansu-1")) is None
    reason, message = chosen.trouble(released("guizhou-2")) or ("", "")
    assert reason == "MemberNotReady" and "guizhou-2" in message and "twice" in message
    assert (chosen.trouble(released("gone")) or ("",))[0] == "MemberUnknown"
    held = {**released("guizhou-2"), "spec": {"suspend": True}}
    assert chosen.trouble(held) is None  # held: nothing of it is in any member


def test_the_target_of_a_job_that_ran_is_where_it_ran() -> None:
    chosen = backend(*MEMBERS)
    never = {**released("guizhou-2"), "spec": {"suspend": True}}
    assert chosen.target(never, decision("guizhou"), GUIZHOU) == "guizhou-1"  # 2 NotReady
    ran = {"metadata": {**never["metadata"], "annotations": {
        ANNOTATION_MEMBER: "guizhou-2", ANNOTATION_RUN_SECONDS: "60"}}, "spec": {"suspend": True}}
    assert chosen.target(ran, decision("guizhou"), GUIZHOU) == "guizhou-2"
    with pytest.raises(PlanningError, match="no Ready member"):
        backend(cluster("gansu-1", ready=False)).target(never, decision(), GANSU)


def test_the_child_goes_to_the_planners_best_member_and_may_be_due() -> None:
    chosen = backend(*MEMBERS)
    body = chosen.child(computejob(), decision(prefs=(("gansu-2", 90), ("gansu-1", 10))),
                        GANSU, timedelta(hours=1), due=True, now=T0)
    assert body["metadata"]["annotations"][ANNOTATION_MEMBER] == "gansu-2"
    assert body["spec"]["suspend"] is False
    with pytest.raises(PlanningError):
        backend().child(computejob(), decision(), GANSU, timedelta(hours=1), due=False, now=T0)


class Api:
    """Records requests; answers GETs of the policy from ``policy``."""

    def __init__(self, policy: dict[str, Any] | None = None, *,
                 discovery: dict[str, list[str]] | None = None, conflict: bool = False) -> None:
        self.policy, self.discovery, self.conflict = policy, discovery or {}, conflict
        self.sent: list[tuple[str, str, Any]] = []

    async def request(self, method: str, path: str, body: Any = None, **_: Any
                      ) -> dict[str, Any]:
        self.sent.append((method, path, body))
        if method == "GET" and path in self.discovery:
            return {"resources": [{"name": n} for n in self.discovery[path]]}
        if method == "GET":
            if self.policy is None:
                raise KubeApiError(404, "NotFound", "not found")
            return self.policy
        if method == "POST" and self.conflict:
            raise KubeApiError(409, "AlreadyExists", "exists")
        return {}


def prepared(api: Api, child: dict[str, Any], dispatch: bool,
             placement: Placement = GANSU) -> list[tuple[str, str]]:
    chosen = backend(*MEMBERS)
    asyncio.run(chosen.prepare(api, child, decision(), placement,  # type: ignore[arg-type]
                               dispatch=dispatch))
    return [(m, p) for m, p, _ in api.sent]


POLICY = "/apis/policy.karmada.io/v1alpha1/namespaces/batch/propagationpolicies"


def test_prepare_creates_the_policy_before_the_job_and_leaves_one_in_step_alone() -> None:
    body = karmada_job(computejob(), decision(), "gansu-1", timedelta(hours=1))
    api = Api()
    assert prepared(api, body, dispatch=False) == [("GET", f"{POLICY}/etl"), ("POST", POLICY)]
    assert api.sent[1][2]["spec"]["suspension"] == {"dispatching": True}
    in_step = propagation_policy(body, "gansu-1", dispatch=False)
    assert prepared(Api(in_step), {**released("gansu-1"), "spec": {"suspend": True}},
                    dispatch=False) == [("GET", f"{POLICY}/etl")]
    api = Api(in_step)
    assert prepared(api, {**released("gansu-1"), "spec": {"suspend": True}},
                    dispatch=True) == [("GET", f"{POLICY}/etl"), ("PATCH", f"{POLICY}/etl")]
    assert api.sent[1][2] == {"spec": {"placement": {"clusterAffinity": {
        "clusterNames": ["gansu-1"]}}, "suspension": {"dispatching": False}}}
    api = Api(conflict=True)  # made meanwhile (another replica): corrected, not refused
    assert [m for m, _ in prepared(api, body, dispatch=True)] == ["GET", "POST", "PATCH"]


def test_a_move_retargets_the_policy_and_the_jobs_annotations_alike() -> None:
    chosen = backend(*MEMBERS)
    child = {**released("gansu-1"), "spec": {"suspend": True}}
    api = Api(propagation_policy(child, "gansu-1", dispatch=False))
    asyncio.run(chosen.prepare(api, child, decision("guizhou"), GUIZHOU,  # type: ignore[arg-type]
                               dispatch=False))
    assert api.sent[-1][2]["spec"]["placement"]["clusterAffinity"]["clusterNames"] == [
        "guizhou-1"]
    patch = chosen.move(child, decision("guizhou"), GUIZHOU, None)
    assert isinstance(patch, dict)
    assert patch["metadata"]["annotations"][ANNOTATION_MEMBER] == "guizhou-1"
    assert patch["metadata"]["labels"] == {"suandian.io/site": "guizhou"}
    release = chosen.release(child, decision("guizhou"), T0)
    assert isinstance(release, dict) and release["spec"] == {"suspend": False}


def test_the_mode_refuses_an_api_server_without_karmada() -> None:
    clusters = "/apis/cluster.karmada.io/v1alpha1"
    policies = "/apis/policy.karmada.io/v1alpha1"
    asyncio.run(KarmadaBackend().check(Api(discovery={  # type: ignore[arg-type]
        clusters: ["clusters", "clusters/status"], policies: ["propagationpolicies"]})))
    with pytest.raises(InvalidSpecError) as refused:
        asyncio.run(KarmadaBackend().check(Api(discovery={  # type: ignore[arg-type]
            policies: ["propagationpolicies"]})))
    assert "serves no clusters (cluster.karmada.io/v1alpha1)" in str(refused.value)
    with pytest.raises(InvalidSpecError, match="propagationpolicies"):
        asyncio.run(KarmadaBackend().check(Api(discovery={  # type: ignore[arg-type]
            clusters: ["clusters"]})))


def test_the_crd_admits_a_site_of_members_and_refuses_both_or_neither() -> None:
    from suandian.api.crd import crd_for

    from crdcheck import admit

    def site(**spec: Any) -> dict[str, Any]:
        return {"apiVersion": "suandian.io/v1alpha1", "kind": "PowerSite",
                "metadata": {"name": "gansu"}, "spec": {
                    "location": {"latitude": 36.0, "longitude": 103.8,
                                 "timeZone": "Asia/Shanghai"},
                    "grid": {"importLimitKW": 1000, "carbonIntensity": 550}, **spec}}

    crd = crd_for("PowerSite")
    assert admit(crd, site(clusters={"selector": {"suandian.io/hub": "gansu"}})) == []
    assert admit(crd, site(nodeSelector={"r": "gansu"})) == []
    both = admit(crd, site(nodeSelector={"r": "gansu"}, clusters={"names": ["gansu-1"]}))
    assert any("exactly one of 'nodeSelector'" in e for e in both)
    assert any("exactly one of 'nodeSelector'" in e for e in admit(crd, site()))
    assert any("exactly one of 'names'" in e for e in admit(
        crd, site(clusters={"names": ["a"], "selector": {"h": "x"}})))


def test_each_mode_names_the_site_field_it_cannot_use() -> None:
    from suandian.backends import KueueBackend, NativeBackend

    base = {"location": {"latitude": 36.0, "longitude": 103.8, "timeZone": "Asia/Shanghai"},
            "grid": {"importLimitKW": 1000, "carbonIntensity": 550}}
    members = PowerSiteSpec.model_validate({**base, "clusters": {"names": ["gansu-1"]}})
    nodes = PowerSiteSpec.model_validate({**base, "nodeSelector": {"region": "gansu"}})
    for one_cluster in (NativeBackend(), KueueBackend()):
        assert one_cluster.site_problem(nodes) is None
        problem = one_cluster.site_problem(members)
        assert problem is not None and problem.path == "spec.clusters"
        assert "SUANDIAN_MODE=karmada" in problem.message and "nodeSelector" in problem.message
    assert KarmadaBackend().site_problem(members) is None
    problem = KarmadaBackend().site_problem(nodes)
    assert problem is not None and problem.path == "spec.nodeSelector"
    assert "give spec.clusters" in problem.message


def test_only_a_move_or_release_leaves_its_member_for_the_patch_that_follows() -> None:
    chosen = backend(*MEMBERS)
    body = karmada_job(computejob(), decision(), "gansu-1", timedelta(hours=1))
    asyncio.run(chosen.prepare(Api(), body, decision(), GANSU,  # type: ignore[arg-type]
                               dispatch=False))
    assert chosen._chosen == {}  # nothing kept per created job
    held = {**released("gansu-2"), "spec": {"suspend": True}}
    asyncio.run(chosen.prepare(Api(), held, decision(), GANSU,  # type: ignore[arg-type]
                               dispatch=True))
    assert chosen._chosen == {("batch", "etl"): "gansu-2"}
    release = chosen.release(held, decision(), T0)
    assert isinstance(release, dict)
    assert release["metadata"]["annotations"][ANNOTATION_MEMBER] == "gansu-2"
    assert chosen._chosen == {}

"""Scenarios: the child Job deleted, its name taken, the spec edited to the same plan."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, JOBS, PSITES, computejob, eventually
from tests.support.operator import running_operator

pytestmark = pytest.mark.looptime

REGION = "topology.kubernetes.io/region"


def one_site(api, cluster, green):  # type: ignore[no-untyped-def]
    cluster.add_node("ningxia-1", {REGION: "ningxia"})
    api.create(PSITES, powersite("ningxia", "ningxia"))
    return keeper_factory({"ningxia": ScriptedProvider(green)})


def job_posts(api, name):  # type: ignore[no-untyped-def]
    return [r for r in api._requests if r.method.value == "POST" and r.resource
            and r.resource.plural == "jobs" and (r.data or {}).get("metadata", {}).get(
                "name") == name]


def events(api, reason):  # type: ignore[no-untyped-def]
    return [e for e in api.items("v1/events") if e["reason"] == reason]


async def test_a_child_deleted_after_its_start_fails_the_job_and_is_not_run_again(
        api, cluster, clock):
    factory = one_site(api, cluster, lambda t: 1000.0)  # green now: starts at once
    cluster.runtimes["once"] = timedelta(hours=3)
    async with running_operator(api, clock, factory):
        api.create(CJ, computejob("once", max_delay="20h"))
        await eventually(lambda: cluster.starts, what="the start")
        await asyncio.sleep(600)
        api.remove(JOBS, "batch", "once")  # e.g. a ttlSecondsAfterFinished or a person
        status = await eventually(
            lambda: (api.read(CJ, "batch", "once").get("status") or {}).get(
                "phase") == "Failed" and api.read(CJ, "batch", "once")["status"],
            what="Failed")
        await asyncio.sleep(3600)
    assert "deleted after it started" in status["reason"]
    assert len(job_posts(api, "once")) == 1 and api.read(JOBS, "batch", "once") is None
    assert [e["type"] for e in events(api, "ChildJobDeleted")] == ["Warning"]
    assert [n for n, _ in cluster.starts] == ["once"]


async def test_a_child_deleted_while_deferred_is_made_again_and_starts_on_time(
        api, cluster, clock):
    three = clock.start + timedelta(hours=3)
    factory = one_site(api, cluster, lambda t: 1000.0 if t >= three else 0.0)
    async with running_operator(api, clock, factory):
        api.create(CJ, computejob("again", max_delay="20h"))
        await eventually(lambda: api.read(JOBS, "batch", "again"), what="the child Job")
        api.remove(JOBS, "batch", "again")
        await eventually(lambda: api.read(JOBS, "batch", "again"), what="the child again")
        await eventually(lambda: cluster.starts, timeout=4 * 3600, step=60, what="the start")
    assert len(job_posts(api, "again")) == 2
    assert abs(cluster.starts[0][1] - three) < timedelta(minutes=20)


async def test_a_job_name_taken_by_another_job_is_never_adopted(api, cluster, clock):
    factory = one_site(api, cluster, lambda t: 1000.0)
    api.create(JOBS, {"metadata": {"name": "taken", "namespace": "batch"},
                      "spec": {"suspend": True, "template": {"spec": {"containers": []}}}})
    async with running_operator(api, clock, factory):
        api.create(CJ, computejob("taken", max_delay="20h"))
        await eventually(lambda: events(api, "NameTaken"), what="a NameTaken warning")
        await asyncio.sleep(120)
        assert api.read(JOBS, "batch", "taken")["spec"]["suspend"] is True  # not ours
        assert cluster.starts == []
        api.remove(JOBS, "batch", "taken")  # the namesake goes: ours is made and runs
        await eventually(lambda: cluster.starts, timeout=600, step=5, what="the start")
    owner = api.read(JOBS, "batch", "taken")["metadata"]["ownerReferences"][0]
    assert owner["uid"] == api.read(CJ, "batch", "taken")["metadata"]["uid"]


async def test_a_spec_edit_that_plans_the_same_rebuilds_the_child_and_keeps_the_plan(
        api, cluster, clock):
    three = clock.start + timedelta(hours=3)
    factory = one_site(api, cluster, lambda t: 1000.0 if t >= three else 0.0)
    async with running_operator(api, clock, factory):
        api.create(CJ, computejob("edited", max_delay="20h"))
        await eventually(lambda: api.read(JOBS, "batch", "edited"), what="the child Job")
        planned = api.read(CJ, "batch", "edited")["status"]["plannedStart"]
        image = {"spec": {"template": {"spec": {"template": {"spec": {"containers": [
            {"name": "main", "image": "busybox:2",
             "resources": {"requests": {"cpu": "4", "memory": "1Gi"}}}]}}}}}}
        api.change(CJ, "batch", "edited", image)
        # at once: the round that re-plans it wakes it even though its plan is the same
        await eventually(lambda: len(job_posts(api, "edited")) == 2, timeout=30, step=1,
                         what="the child rebuilt")
        await eventually(lambda: cluster.starts, timeout=4 * 3600, step=60, what="the start")
    child = api.read(JOBS, "batch", "edited")
    containers = child["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "busybox:2"
    assert api.read(CJ, "batch", "edited")["status"]["plannedStart"] == planned
    assert abs(cluster.starts[0][1] - three) < timedelta(minutes=20)

"""Scenarios: where and when jobs start, against the emulated API, on fake time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, JOBS, PSITES, computejob, eventually
from tests.support.operator import running_operator

pytestmark = pytest.mark.looptime

REGION = "topology.kubernetes.io/region"


def two_sites(api, cluster, green_a, green_b):  # type: ignore[no-untyped-def]
    providers = {"ningxia": ScriptedProvider(green_a), "guangdong": ScriptedProvider(green_b)}
    for name in providers:
        cluster.add_node(f"{name}-1", {REGION: name})
        cluster.add_node(f"{name}-2", {REGION: name})
        api.create(PSITES, powersite(name, name))
    return providers


async def test_job_whose_best_window_is_now_starts_now_on_the_green_site(api, cluster, clock):
    providers = two_sites(api, cluster, lambda t: 1000.0, lambda t: 0.0)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(CJ, computejob("etl", sites=["ningxia", "guangdong"]))
        job = await eventually(
            lambda: (j := api.read(JOBS, "batch", "etl")) and not j["spec"]["suspend"] and j,
            what="the child Job to be unsuspended")
    affinity = job["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    term = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert {"key": REGION, "operator": "In", "values": ["ningxia"]} in term["matchExpressions"]
    preferred = {p["preference"]["matchExpressions"][0]["values"][0]
                 for p in affinity["preferredDuringSchedulingIgnoredDuringExecution"]}
    assert preferred <= {"ningxia-1", "ningxia-2"} and preferred
    assert job["metadata"]["ownerReferences"][0]["kind"] == "ComputeJob"
    status = api.read(CJ, "batch", "etl")["status"]
    assert status["phase"] == "Running"
    assert status["site"] == "ningxia"
    assert status["expectedGreenFraction"] > 0.9
    assert cluster.starts == [("etl", clock.now() - (clock.now() - cluster.starts[0][1]))]
    assert cluster.starts[0][1] - clock.start < timedelta(minutes=1)


def events_of(api, name, reason=None):  # type: ignore[no-untyped-def]
    return [e for e in api.items("v1/events")
            if e.get("involvedObject", {}).get("name") == name
            and (reason is None or e.get("reason") == reason)]


def job_posts(api):  # type: ignore[no-untyped-def]
    return [r for r in api._requests if r.method.value == "POST" and r.url.path.endswith("/jobs")]


def status_writes(api, name):  # type: ignore[no-untyped-def]
    return [r for r in api._requests if r.method.value == "PATCH"
            and r.url.path.endswith(f"/computejobs/{name}/status")]


async def test_job_deferred_six_hours_starts_at_its_planned_time(api, cluster, clock):
    six = clock.start + timedelta(hours=6)
    providers = two_sites(api, cluster, lambda t: 1000.0 if t >= six else 0.0, lambda t: 0.0)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(CJ, computejob("nightly", max_delay="20h"))
        await eventually(lambda: api.read(JOBS, "batch", "nightly"), what="the child Job")
        status = api.read(CJ, "batch", "nightly")["status"]
        assert status["phase"] == "Deferred"
        assert status["plannedStart"] == "2026-06-21T06:00:00Z"
        assert api.read(JOBS, "batch", "nightly")["spec"]["suspend"] is True
        await asyncio.sleep(600)  # waiting: the decision is written and announced once
        assert len(status_writes(api, "nightly")) == 1
        assert len(events_of(api, "nightly", "Deferred")) == 1
        assert len(job_posts(api)) == 1
        await eventually(lambda: cluster.starts, timeout=8 * 3600, step=60, what="the start")
    assert [name for name, _ in cluster.starts] == ["nightly"]
    assert abs(cluster.starts[0][1] - six) < timedelta(minutes=2)
    assert events_of(api, "nightly", "Deferred")
    assert events_of(api, "nightly", "Started")


async def test_job_that_never_gets_green_starts_at_its_latest_start(api, cluster, clock):
    providers = two_sites(api, cluster, lambda t: 0.0, lambda t: 0.0)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(CJ, computejob("picky", max_delay="6h", minGreenFraction=0.5))
        await eventually(lambda: api.read(JOBS, "batch", "picky"), what="the child Job")
        latest = api.read(CJ, "batch", "picky")["status"]["latestStart"]
        await eventually(lambda: cluster.starts, timeout=8 * 3600, step=60, what="the start")
    started = cluster.starts[0][1]
    assert latest == "2026-06-21T05:45:00Z"  # deadline 08:00 - 2h - 15m safety margin
    assert started <= clock.start + timedelta(hours=5, minutes=46)
    assert started >= clock.start + timedelta(hours=5)


async def test_deleting_a_deferred_job_removes_its_child_job(api, cluster, clock):
    six = clock.start + timedelta(hours=6)
    providers = two_sites(api, cluster, lambda t: 1000.0 if t >= six else 0.0, lambda t: 0.0)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(CJ, computejob("doomed", max_delay="20h"))
        await eventually(lambda: api.read(JOBS, "batch", "doomed"), what="the child Job")
        await api.delete("/apis/suandian.io/v1alpha1/namespaces/batch/computejobs/doomed")
        await eventually(lambda: api.read(CJ, "batch", "doomed") is None, what="deletion")
        assert api.read(JOBS, "batch", "doomed") is None
        await asyncio.sleep(7 * 3600)
    assert cluster.starts == []


async def test_a_job_placed_nowhere_is_reported_at_risk_at_its_latest_start(api, cluster,
                                                                           clock):
    """Its only allowed site does not exist: not placed, and once its latest start comes
    (00:45: a 2 h job due by 03:00, less the 15 min margin) one Warning says the deadline
    is at risk, hours before it passes; nothing is created."""
    providers = two_sites(api, cluster, lambda t: 1000.0, lambda t: 1000.0)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(CJ, computejob("nowhere", max_delay="1h", sites=["atlantis"]))
        pending = await eventually(lambda: (s := api.read(CJ, "batch", "nowhere").get(
            "status")) and s.get("phase") == "Pending" and s.get("latestStart") and s,
            what="not placed")
        assert "no site matches" in pending["reason"]
        await eventually(lambda: [e for e in api.items("v1/events")
                                  if e["reason"] == "DeadlineAtRisk"],
                         timeout=4 * 3600, step=60, what="the deadline at risk")
        warned_at = clock.now()
        await asyncio.sleep(3600)  # re-planned, re-stepped: said once
    (event,) = [e for e in api.items("v1/events") if e["reason"] == "DeadlineAtRisk"]
    assert event["type"] == "Warning" and "not placed by its latest start" in event["message"]
    assert pending["latestStart"] == "2026-06-21T00:45:00Z"
    assert clock.start + timedelta(minutes=45) <= warned_at <= clock.start + timedelta(
        minutes=46)
    assert api.read(JOBS, "batch", "nowhere") is None

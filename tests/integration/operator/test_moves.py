"""Scenarios: a deferred job follows a flipped forecast to another site; an interruptible
job runs in two green windows and finishes before its deadline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, JOBS, PSITES, computejob, eventually
from tests.support.operator import running_operator

pytestmark = pytest.mark.looptime

REGION = "topology.kubernetes.io/region"


def sites(api, cluster, **greens):  # type: ignore[no-untyped-def]
    providers = {}
    for name, green in greens.items():
        providers[name] = ScriptedProvider(green)
        cluster.add_node(f"{name}-1", {REGION: name})
        api.create(PSITES, powersite(name, name))
    return providers


def required_region(job):  # type: ignore[no-untyped-def]
    terms = job["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return {e["values"][0] for t in terms for e in t["matchExpressions"] if e["key"] == REGION}


async def test_deferred_job_moves_while_suspended_when_the_forecast_flips(api, cluster, clock):
    two, four = clock.start + timedelta(hours=2), clock.start + timedelta(hours=4)
    providers = sites(api, cluster, ningxia=lambda t: 1000.0 if t >= four else 0.0,
                      guangdong=lambda t: 0.0)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(CJ, computejob("mover", max_delay="20h"))
        job = await eventually(lambda: api.read(JOBS, "batch", "mover"), what="the child Job")
        assert required_region(job) == {"ningxia"}
        assert api.read(CJ, "batch", "mover")["status"]["site"] == "ningxia"
        providers["ningxia"].green_kw = lambda t: 0.0
        providers["guangdong"].green_kw = lambda t: 1000.0 if t >= two else 0.0
        moved = await eventually(
            lambda: (j := api.read(JOBS, "batch", "mover")) and required_region(j) ==
            {"guangdong"} and j, timeout=3600, step=30, what="the move")
        assert moved["spec"]["suspend"] is True
        await eventually(lambda: cluster.starts, timeout=4 * 3600, step=60, what="the start")
    assert abs(cluster.starts[0][1] - two) < timedelta(minutes=20)
    status = api.read(CJ, "batch", "mover")["status"]
    assert status["site"] == "guangdong"
    assert [e for e in api.items("v1/events") if e["reason"] == "Moved"]


async def test_interruptible_job_runs_in_two_green_windows_before_its_deadline(
        api, cluster, clock):
    start = clock.start

    def green(t):  # type: ignore[no-untyped-def]
        hours = (t - start).total_seconds() / 3600
        return 1000.0 if 2 <= hours < 4 or 8 <= hours < 10 else 0.0

    providers = sites(api, cluster, ningxia=green)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(CJ, computejob("chunky", duration="4h", max_delay="16h",
                                  interruptible=True))
        await eventually(lambda: (s := api.read(CJ, "batch", "chunky").get("status"))
                         and s.get("phase") == "Succeeded", timeout=24 * 3600, step=300,
                         what="completion")
    assert [n for n, _ in cluster.starts] == ["chunky", "chunky"]
    (_, first), (_, second) = cluster.starts
    assert abs(first - (start + timedelta(hours=2))) < timedelta(minutes=20)
    assert abs(second - (start + timedelta(hours=8))) < timedelta(minutes=20)
    assert len(cluster.suspensions) == 1
    status = api.read(CJ, "batch", "chunky")["status"]
    done = status["completedAt"]
    assert done <= "2026-06-21T20:00:00Z"
    assert status["emissions"]["actualGrams"] >= 0

"""Scenarios: restarts, API faults and forecast outages; jobs still start once, on time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, JOBS, PSITES, computejob, eventually
from tests.support.operator import running_operator, start_operator

from suandian import metrics
from suandian.controllers.context import SITE_WAIT
from suandian.controllers.next_action import UNREADABLE
from suandian.units import parse_time

pytestmark = pytest.mark.looptime

REGION = "topology.kubernetes.io/region"


def one_site(api, cluster, green):  # type: ignore[no-untyped-def]
    providers = {"ningxia": ScriptedProvider(green)}
    cluster.add_node("ningxia-1", {REGION: "ningxia"})
    api.create(PSITES, powersite("ningxia", "ningxia"))
    return providers


def sample(name: str, **labels: str) -> float | None:
    return metrics.registry().get_sample_value(name, labels)


def successful_job_posts(api):  # type: ignore[no-untyped-def]
    return [o for o in api.objects.values() if o.history and o.history[0] is not None
            and o.history[0].get("kind") == "Job"]


async def test_operator_killed_while_jobs_wait_each_starts_once_on_time(api, cluster, clock):
    three, five = clock.start + timedelta(hours=3), clock.start + timedelta(hours=5)
    providers = one_site(api, cluster, lambda t: 1000.0 if t >= three else 0.0)
    factory = keeper_factory(providers)
    first = await start_operator(api, clock, factory)
    api.create(CJ, computejob("a", max_delay="20h"))
    api.create(CJ, computejob("b", max_delay="20h", duration="1h", watts=10_000.0))
    await eventually(lambda: api.read(JOBS, "batch", "a") and api.read(JOBS, "batch", "b"),
                     what="both child Jobs")
    planned = {n: api.read(CJ, "batch", n)["status"]["plannedStart"] for n in ("a", "b")}
    assert all(p >= "2026-06-21T03:00:00Z" for p in planned.values())
    await first.kill()  # no graceful shutdown
    await asyncio.sleep(2 * 3600)
    async with running_operator(api, clock, factory):
        await eventually(lambda: len(cluster.starts) == 2, timeout=4 * 3600, step=60,
                         what="both starts")
        assert clock.now() < five
        await asyncio.sleep(3600)
    assert sorted(name for name, _ in cluster.starts) == ["a", "b"]
    for name, when in cluster.starts:
        assert abs(when - three) < timedelta(minutes=20), name
    assert len(successful_job_posts(api)) == 2


async def lose_the_status_write(api, cluster, clock, factory):  # type: ignore[no-untyped-def]
    """A job due at once has its child Job created running, then its status written: two
    requests. The process that made the child dies before the second lands (``kill -9``
    in ``tests/envtest/test_restarts.py``; here the write fails, unapplied, and the
    operator is killed). What is left: a running child, and a job with no status."""
    lost = api.fail(action="update", plural="computejobs", subresource="status",
                    status=503, times=1_000)
    first = await start_operator(api, clock, factory)
    api.create(CJ, computejob("due", max_delay="1h", duration="10h"))  # runs past the test
    child = await eventually(
        lambda: (j := api.read(JOBS, "batch", "due")) and not j["spec"]["suspend"] and j,
        what="the child Job, created running")
    await asyncio.sleep(30)  # the first operator's retries (status writes still fail)
    assert not api.read(CJ, "batch", "due").get("status"), "the status write was lost"
    await first.kill()
    lost.times = 0
    return child


def status_of(api):  # type: ignore[no-untyped-def]
    return api.read(CJ, "batch", "due").get("status") or {}


async def test_a_started_child_whose_status_write_was_lost_gets_its_status(
        api, cluster, clock):
    """The next operator writes the decision the child carries (site, starts, reason)
    and the start; it never leaves the job without a status (no round re-plans a started
    job), nor makes a second child."""
    factory = keeper_factory(one_site(api, cluster, lambda t: 1000.0))  # due at once
    child = await lose_the_status_write(api, cluster, clock, factory)
    restarted = clock.now()
    async with running_operator(api, clock, factory):
        status = await eventually(lambda: status_of(api).get("phase") and status_of(api),
                                  timeout=3600, step=10, what="a status for the job")
    annotations = child["metadata"]["annotations"]
    assert status["phase"] == "Running"
    assert status["site"] == annotations["suandian.io/site"] == "ningxia"
    assert status["plannedStart"] == annotations["suandian.io/planned-start"]
    assert status["latestStart"] == annotations["suandian.io/latest-start"]
    assert status["reason"] == annotations["suandian.io/reason"]
    assert status["jobName"] == "due"
    # when the child started, not when the second operator found it 30 s or more later
    assert status["startedAt"] == api.read(JOBS, "batch", "due")["status"]["startTime"]
    assert parse_time(status["startedAt"]) <= restarted - timedelta(seconds=30)
    started = next(c for c in status["conditions"] if c["type"] == "Started")
    assert started["status"] == "True"
    assert len(successful_job_posts(api)) == 1


async def test_a_started_child_without_a_readable_decision_is_said_once(
        api, cluster, clock):
    """Annotations edited away: the status says so, once, and the job is not re-read
    and rewritten at every step."""
    factory = keeper_factory(one_site(api, cluster, lambda t: 1000.0))
    await lose_the_status_write(api, cluster, clock, factory)
    metrics.reset()
    api.change(JOBS, "batch", "due", {"metadata": {"annotations": {
        "suandian.io/planned-start": None, "suandian.io/latest-start": None}}})
    before = len(child_reads(api))  # the first operator's, its writes failing
    async with running_operator(api, clock, factory):
        status = await eventually(lambda: status_of(api).get("phase") and status_of(api),
                                  timeout=3600, step=10, what="a status for the job")
        await asyncio.sleep(3600)  # four re-plan intervals, a step due at each
        assert status_of(api) == status
    assert status["phase"] == "Running" and status["jobName"] == "due"
    assert status["reason"] == UNREADABLE
    assert "site" not in status
    assert len(successful_job_posts(api)) == 1
    assert len(child_reads(api)) - before == 1  # read back once, not at every step
    assert sample("suandian_step_failures_total", reason="Bug") in (None, 0.0)


async def test_a_started_child_gone_when_read_back_fails_the_job(api, cluster, clock):
    """Deleted after it started (its GET answers 404): the work is not made again."""
    factory = keeper_factory(one_site(api, cluster, lambda t: 1000.0))
    await lose_the_status_write(api, cluster, clock, factory)
    api.fail(action="fetch", plural="jobs", name="due", status=404, times=1)
    async with running_operator(api, clock, factory):
        status = await eventually(lambda: status_of(api).get("phase") and status_of(api),
                                  timeout=3600, step=10, what="a status for the job")
        await asyncio.sleep(600)
    assert status["phase"] == "Failed"
    complete = next(c for c in status["conditions"] if c["type"] == "Complete")
    assert complete["reason"] == "ChildJobDeleted"
    assert len(successful_job_posts(api)) == 1
    assert [e for e in api.items("v1/events") if e["reason"] == "ChildJobDeleted"]


def child_reads(api):  # type: ignore[no-untyped-def]
    """The GETs of the child Job ``due`` (the cluster view lists and watches instead)."""
    return [r for r in api._requests if r.method.value == "GET"
            and r.url.path == "/apis/batch/v1/namespaces/batch/jobs/due"]


def two_sites(api, cluster, ningxia):  # type: ignore[no-untyped-def]
    """gansu: never green, its forecast at once; ningxia: as given (its delay too)."""
    cluster.add_node("gansu-1", {REGION: "gansu"})
    cluster.add_node("ningxia-1", {REGION: "ningxia"})
    api.create(PSITES, powersite("gansu", "gansu"))
    api.create(PSITES, powersite("ningxia", "ningxia"))
    return {"gansu": ScriptedProvider(lambda t: 0.0), "ningxia": ningxia}


def first_version(api, name):  # type: ignore[no-untyped-def]
    """The child Job ``name`` as it was created."""
    return next(o for o in api.objects.values() if o.history and o.history[0] is not None
                and o.history[0].get("kind") == "Job"
                and o.history[0]["metadata"]["name"] == name).history[0]


async def test_no_job_starts_before_every_site_has_its_first_forecast(api, cluster, clock):
    """Sites come in one refresh at a time. A job due at once, allowed at a grid-only
    site whose forecast comes at once and at a green one whose provider takes seconds,
    starts at the green one: a round that knew only the first would have started it
    there for good (a started job never moves)."""
    providers = two_sites(api, cluster, ScriptedProvider(lambda t: 1000.0, delay=5.0))
    api.create(CJ, computejob("due", max_delay="2h", sites=["gansu", "ningxia"]))
    async with running_operator(api, clock, keeper_factory(providers)):
        await eventually(lambda: cluster.starts, timeout=120, step=1, what="the start")
        await asyncio.sleep(60)
    assert first_version(api, "due")["metadata"]["labels"]["suandian.io/site"] == "ningxia"
    assert [name for name, _ in cluster.starts] == ["due"]
    assert api.read(CJ, "batch", "due")["status"]["site"] == "ningxia"
    assert not [e for e in api.items("v1/events") if e["reason"] == "Moved"]


async def test_a_hung_provider_holds_the_rounds_for_site_wait_at_most(api, cluster, clock):
    """ningxia's provider answers after ten minutes: the job is planned without it once
    SITE_WAIT has passed (the wait's own timer: no other event comes to end it)."""
    providers = two_sites(api, cluster, ScriptedProvider(lambda t: 1000.0, delay=600.0))
    api.create(CJ, computejob("due", max_delay="2h", sites=["gansu", "ningxia"]))
    async with running_operator(api, clock, keeper_factory(providers)):
        await eventually(lambda: cluster.starts, timeout=300, step=1, what="the start")
    (name, when), = cluster.starts
    assert name == "due" and api.read(CJ, "batch", "due")["status"]["site"] == "gansu"
    assert SITE_WAIT <= when - clock.start < SITE_WAIT + timedelta(seconds=10)


async def test_a_restart_moves_no_job_away_from_a_site_whose_forecast_is_coming(
        api, cluster, clock):
    """A job waits at ningxia for its green power in six hours (gansu, also allowed, is
    never green). After a restart ningxia's provider takes seconds: the first round must
    not move the job to gansu, the only site it would know."""
    six = clock.start + timedelta(hours=6)
    providers = two_sites(api, cluster, ScriptedProvider(lambda t: 1000.0 if t >= six
                                                         else 0.0))
    factory = keeper_factory(providers)
    async with running_operator(api, clock, factory):
        api.create(CJ, computejob("waits", max_delay="20h", sites=["ningxia", "gansu"]))
        await eventually(lambda: (api.read(CJ, "batch", "waits").get("status") or {}
                                  ).get("phase") == "Deferred", what="the job deferred")
    assert api.read(CJ, "batch", "waits")["status"]["site"] == "ningxia"
    providers["ningxia"].delay = 5.0
    async with running_operator(api, clock, factory):
        await asyncio.sleep(120)
    assert api.read(JOBS, "batch", "waits")["metadata"]["labels"][
        "suandian.io/site"] == "ningxia"
    assert api.read(CJ, "batch", "waits")["status"]["site"] == "ningxia"
    assert cluster.starts == []
    assert not [e for e in api.items("v1/events") if e["reason"] == "Moved"]


async def test_overdue_job_starts_at_once_after_a_restart(api, cluster, clock):
    two = clock.start + timedelta(hours=2)
    providers = one_site(api, cluster, lambda t: 1000.0 if t >= two else 0.0)
    factory = keeper_factory(providers)
    first = await start_operator(api, clock, factory)
    api.create(CJ, computejob("late", max_delay="20h"))
    await eventually(lambda: api.read(JOBS, "batch", "late"), what="the child Job")
    await first.stop()
    await asyncio.sleep(4 * 3600)  # the planned start passes while no operator runs
    assert cluster.starts == []
    async with running_operator(api, clock, factory):
        await eventually(lambda: cluster.starts, timeout=120, step=1, what="the start")
    assert cluster.starts[0][1] - (clock.start + timedelta(hours=4)) < timedelta(minutes=2)


async def test_job_started_after_its_latest_start_is_a_deadline_miss(api, cluster, clock):
    metrics.reset()
    providers = one_site(api, cluster, lambda t: 0.0)  # no green: nothing to wait for
    factory = keeper_factory(providers)
    first = await start_operator(api, clock, factory)
    api.create(CJ, computejob("tardy", max_delay="1h", duration="1h",
                              notBefore="2026-06-21T02:00:00Z"))
    await eventually(lambda: api.read(JOBS, "batch", "tardy"), what="the child Job")
    await eventually(lambda: sample("suandian_jobs", site="ningxia", phase="Deferred") == 1,
                     what="the census to count the deferred job")
    assert sample("suandian_deadline_misses_total", site="ningxia") == 0
    await first.stop()
    await asyncio.sleep(5 * 3600)  # its latest start (03:00) passes while no operator runs
    assert cluster.starts == []
    async with running_operator(api, clock, factory):
        await eventually(lambda: cluster.starts, timeout=120, step=1, what="the start")
        await eventually(lambda: sample("suandian_jobs", site="ningxia", phase="Running") == 1,
                         what="the census to count the running job")
    assert sample("suandian_deadline_misses_total", site="ningxia") == 1
    assert sample("suandian_jobs", site="ningxia", phase="Deferred") is None


async def test_api_faults_do_not_duplicate_or_lose_jobs(api, cluster, clock):
    providers = one_site(api, cluster, lambda t: 1000.0)
    api.fail(action="create", plural="jobs", status=500, times=2)
    api.fail(action="update", plural="computejobs", subresource="status", status=409, times=1)
    api.fail(action="update", plural="computejobs", subresource="status", status=503, times=2)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(CJ, computejob("x"))
        api.create(CJ, computejob("y"))
        await asyncio.sleep(5)
        assert api.drop_watches() > 0
        api.create(CJ, computejob("z"))
        await eventually(lambda: len(cluster.starts) == 3, timeout=600, step=1,
                         what="three starts")
    assert sorted(name for name, _ in cluster.starts) == ["x", "y", "z"]
    assert len(successful_job_posts(api)) == 3
    assert all(f.times == 0 for f in api._faults)


async def test_forecast_outage_degrades_the_site_and_misses_no_deadline(api, cluster, clock):
    metrics.reset()
    provider = ScriptedProvider(lambda t: 0.0, down=True)
    cluster.add_node("ningxia-1", {REGION: "ningxia"})
    api.create(PSITES, powersite("ningxia", "ningxia"))
    async with running_operator(api, clock, keeper_factory({"ningxia": provider})):
        api.create(CJ, computejob("steady", max_delay="4h", minGreenFraction=0.3))
        site = await eventually(
            lambda: (s := api.read(PSITES, None, "ningxia").get("status")) and s, what="status")
        conditions = {c["type"]: c for c in site["conditions"]}
        assert conditions["Degraded"]["status"] == "True"
        assert conditions["ForecastReady"]["status"] == "False"
        assert site["forecastSource"] == "conservative"
        await eventually(lambda: cluster.starts, timeout=6 * 3600, step=60, what="the start")
        latest = api.read(CJ, "batch", "steady")["status"]["latestStart"]
    assert (sample("suandian_provider_errors_total", provider="builtin",
                   reason="ServerError") or 0) >= 1
    assert sample("suandian_provider_requests_total", provider="builtin") == sample(
        "suandian_provider_request_duration_seconds_count", provider="builtin")
    assert sample("suandian_deadline_misses_total", site="ningxia") == 0
    assert cluster.starts[0][1].strftime("%Y-%m-%dT%H:%M:%SZ") <= latest
    assert [e for e in api.items("v1/events") if e["reason"] == "ForecastDegraded"]


async def test_a_site_whose_refresh_fails_keeps_its_forecast_and_is_retried(
        api, cluster, clock):
    """ningxia's status writes are refused (403, not transient) three times. Its refresh
    raised out of the daemon, which took the site and its forecast with it: the job due
    at once was planned without ningxia and started at gansu, never green. Now the
    failure is logged, counted and retried with backoff, and the site stays."""
    metrics.reset()
    providers = two_sites(api, cluster, ScriptedProvider(lambda t: 1000.0))
    refused = api.fail(action="update", plural="powersites", name="ningxia",
                       subresource="status", status=403, times=3)
    api.create(CJ, computejob("due", max_delay="2h", sites=["gansu", "ningxia"]))
    async with running_operator(api, clock, keeper_factory(providers)):
        await eventually(lambda: cluster.starts, timeout=120, step=1, what="the start")
        await eventually(lambda: (api.read(PSITES, None, "ningxia").get("status") or {}
                                  ).get("greenPowerKW"), timeout=600, step=5,
                         what="ningxia's status, once the writes are accepted")
    assert refused.times == 0
    assert api.read(CJ, "batch", "due")["status"]["site"] == "ningxia"
    assert sample("suandian_site_refresh_failures_total", reason="ApiError") == 3
    assert sample("suandian_site_refresh_failures_total", reason="Bug") == 0

"""The grid asks, the operator answers (GridEvents, against the emulator, on fake time).

A site with no green power (every kW it draws is imported), jobs of 50 kW (60 kW with
the site's PUE), and a request over a window a few hours ahead: the request log shows
what the operator did before the window opened and after it closed, and the event's
status what it committed and delivered.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, PSITES, computejob, eventually
from tests.support.operator import running_operator

from suandian import metrics
from suandian.k8s.decision import format_time

pytestmark = pytest.mark.looptime

GEV = "suandian.io/v1alpha1/gridevents"
REGION = "topology.kubernetes.io/region"


def site(api: Any, cluster: Any, name: str = "jiangsu", green: Any = None
         ) -> dict[str, ScriptedProvider]:
    cluster.add_node(f"{name}-1", {REGION: name})
    api.create(PSITES, powersite(name, name))
    return {name: ScriptedProvider(green or (lambda t: 0.0))}


def shed(name: str, start: datetime, end: datetime, *, ceiling_kw: float = 0.0,
         mandatory: bool = False, sites: tuple[str, ...] = ("jiangsu",)) -> dict[str, Any]:
    return {"apiVersion": "suandian.io/v1alpha1", "kind": "GridEvent",
            "metadata": {"name": name},
            "spec": {"type": "Shed", "sites": list(sites), "start": format_time(start),
                     "end": format_time(end), "shed": {"ceilingKW": ceiling_kw},
                     "mandatory": mandatory}}


def status(api: Any, name: str) -> dict[str, Any]:
    return (api.read(GEV, None, name) or {}).get("status") or {}


async def test_a_shed_is_met_by_suspending_an_interruptible_job_over_the_window(
        api, cluster, clock):
    registry = metrics.reset()
    t1, t2 = clock.start + timedelta(hours=1), clock.start + timedelta(hours=3)
    async with running_operator(api, clock, keeper_factory(site(api, cluster))):
        api.create(GEV, shed("evening-peak", t1, t2))
        api.create(CJ, computejob("chunky", duration="4h", max_delay="12h",
                                  interruptible=True))
        api.create(CJ, computejob("later", duration="2h", max_delay="12h"))
        before = await eventually(lambda: (s := status(api, "evening-peak")).get(
            "jobsAffected") == 2 and s, timeout=1800, step=30, what="the answer")
        assert before["phase"] == "Accepted" and before["shortfallKW"] == 0.0
        # the baseline runs both at once: 120 kW to shed, then 60 kW once later is done
        assert before["committed"] == "60 kW" and before["committedKW"] == 60.0
        assert [s["committedKW"] for s in before["slots"]] == [120.0] * 4 + [60.0] * 4
        assert before["reason"] == "met: 2 job(s) moved out of the window"
        assert before["affectedJobs"] == ["batch/chunky", "batch/later"]
        assert before["emissionsEffectGrams"] == pytest.approx(0.0, abs=1.0)  # flat carbon
        assert before["deadlineMisses"] == 0 and "costEffect" not in before  # no tariff
        await eventually(lambda: cluster.starts, timeout=1800, step=30, what="the start")
        await eventually(lambda: status(api, "evening-peak").get("phase") == "Completed",
                         timeout=4 * 3600, step=60, what="the end of the window")
        done = status(api, "evening-peak")
        await eventually(lambda: len(cluster.starts) == 3, timeout=2 * 3600, step=60,
                         what="the resume")
    starts = {(n, t) for n, t in cluster.starts}
    chunky = sorted(t for n, t in starts if n == "chunky")
    assert chunky[0] < t1 <= t2 <= chunky[1]  # suspended over the window, resumed after
    assert [t >= t2 for n, t in starts if n == "later"] == [True]  # deferred past it
    assert cluster.suspensions == [("chunky", cluster.suspensions[0][1])]
    assert cluster.suspensions[0][1] <= t1
    assert done["compliance"] == 1.0 and done["delivered"] == "100%"
    # asked: 120 kW for the first hour (the baseline runs both), 60 kW for the second
    assert done["deliveredKWh"] == pytest.approx(180.0, rel=0.01)
    reasons = [e["reason"] for e in api.items("v1/events")
               if e["involvedObject"]["kind"] == "GridEvent"]
    assert reasons[:3] == ["Accepted", "Active", "Completed"]
    assert done["deadlineMisses"] == 0
    assert reasons.count("Active") == 1 and reasons.count("Completed") == 1
    # the counter holds what the status says, once (no look before the watch's echo
    # counts the same interval twice)
    joules = registry.get_sample_value("suandian_grid_delivered_joules_total",
                                       {"type": "Shed"})
    assert joules == pytest.approx(done["deliveredKWh"] * 3.6e6, rel=1e-6)
    metrics.reset()


async def test_a_shed_on_an_idle_site_is_answered_met(api, cluster, clock):
    """No job waits or runs: a full round answers the request all the same (it has
    nothing to shed), so the event is Accepted and an OpenADR VEN can opt in."""
    t1, t2 = clock.start + timedelta(hours=1), clock.start + timedelta(hours=3)
    async with running_operator(api, clock, keeper_factory(site(api, cluster))):
        api.create(GEV, shed("quiet-peak", t1, t2, mandatory=True))
        answered = await eventually(lambda: (s := status(api, "quiet-peak")).get(
            "phase") == "Accepted" and s, timeout=1800, step=30, what="the answer")
    assert answered["shortfallKW"] == 0.0 and answered["jobsAffected"] == 0
    assert answered["committed"] == "0 kW" and answered["asked"] == "≤ 0 kW"
    assert answered["reason"] == "met: the plan stays under it, no job moved"


async def test_a_shed_that_comes_while_an_interruptible_job_runs_suspends_it(
        api, cluster, clock):
    """The job has started (one 4 h run window) when the shed arrives, for 1-3 h: the
    round that answers it plans the job again, it is suspended before the window and
    resumed after it, and the shed is met whole."""
    t1, t2 = clock.start + timedelta(hours=1), clock.start + timedelta(hours=3)
    async with running_operator(api, clock, keeper_factory(site(api, cluster))):
        api.create(CJ, computejob("chunky", duration="4h", max_delay="12h",
                                  interruptible=True))
        await eventually(lambda: cluster.starts, timeout=1800, step=30, what="the start")
        api.create(GEV, shed("late-notice", t1, t2, mandatory=True))
        await eventually(lambda: status(api, "late-notice").get("phase") == "Completed",
                         timeout=4 * 3600, step=60, what="the end of the window")
        done = status(api, "late-notice")
        await eventually(lambda: len(cluster.starts) == 2, timeout=2 * 3600, step=60,
                         what="the resume")
    (first, resumed) = sorted(t for n, t in cluster.starts)
    assert first < t1 and resumed >= t2
    [(job, suspended)] = cluster.suspensions
    assert job == "chunky" and first < suspended <= t1
    assert done["shortfallKW"] == 0.0 and done["compliance"] == 1.0
    assert "batch/chunky" in done["affectedJobs"]


def urgent(api: Any) -> None:
    """A job that must start within 30 minutes and runs 2 h: into any window at 1 h."""
    api.create(CJ, computejob("urgent", duration="2h", max_delay="30m"))


def grid_events(api: Any) -> list[tuple[str, str, str]]:
    return [(e["type"], e["reason"], e["message"]) for e in api.items("v1/events")
            if e["involvedObject"]["kind"] == "GridEvent"]


async def test_a_mandatory_shed_that_a_deadline_prevents_is_reported_short_before_it_opens(
        api, cluster, clock):
    t1, t2 = clock.start + timedelta(hours=1), clock.start + timedelta(hours=3)
    async with running_operator(api, clock, keeper_factory(site(api, cluster))):
        api.create(GEV, shed("must-shed", t1, t2, mandatory=True))
        urgent(api)
        short = await eventually(lambda: (s := status(api, "must-shed")).get(
            "shortfallKW") and s, timeout=1800, step=30, what="the shortfall")
        assert clock.now() < t1
        assert short["phase"] == "Accepted" and short["committed"] == "60 kW short"
        assert short["shortfallKW"] == 60.0 and short["affectedJobs"] == ["batch/urgent"]
        assert "must run then to meet their deadlines" in short["reason"]
        warned = [e for e in grid_events(api) if e[1] == "ShortOfRequest"]
        assert warned and warned[0][0] == "Warning" and "60 kW" in warned[0][2]
        await eventually(lambda: (s := api.read(CJ, "batch", "urgent").get("status"))
                         and s.get("phase") == "Succeeded", timeout=4 * 3600, step=60,
                         what="the job to finish")
    assert [n for n, _ in cluster.starts] == ["urgent"] and not cluster.suspensions
    assert cluster.starts[0][1] <= clock.start + timedelta(minutes=30)


async def test_a_voluntary_shed_that_would_break_a_deadline_is_declined(api, cluster, clock):
    t1, t2 = clock.start + timedelta(hours=1), clock.start + timedelta(hours=3)
    async with running_operator(api, clock, keeper_factory(site(api, cluster))):
        api.create(GEV, shed("may-shed", t1, t2))
        urgent(api)
        declined = await eventually(lambda: (s := status(api, "may-shed")).get(
            "phase") == "Declined" and s, timeout=1800, step=30, what="the decline")
        assert clock.now() < t1 and declined["committed"] == "declined"
        accepted = next(c for c in declined["conditions"] if c["type"] == "Accepted")
        assert (accepted["status"], accepted["reason"]) == ("False", "Declined")
        assert "declined: the plan can shed only 0 kW of 60 kW" in declined["reason"]
        assert [e[:2] for e in grid_events(api)][-1] == ("Warning", "Declined")
        await eventually(lambda: cluster.starts, timeout=1800, step=30, what="the start")
    assert cluster.starts[0][1] <= clock.start + timedelta(minutes=30)


def absorb(name: str, start: datetime, end: datetime, power_kw: float) -> dict[str, Any]:
    return {"apiVersion": "suandian.io/v1alpha1", "kind": "GridEvent",
            "metadata": {"name": name},
            "spec": {"type": "Absorb", "sites": ["jiangsu"], "start": format_time(start),
                     "end": format_time(end), "absorb": {"powerKW": power_kw}}}


async def test_a_surplus_pulls_deferred_work_into_its_window(api, cluster, clock):
    t1, t2 = clock.start + timedelta(hours=6), clock.start + timedelta(hours=10)
    async with running_operator(api, clock, keeper_factory(site(api, cluster))):
        api.create(GEV, absorb("night-wind", t1, t2, 1000.0))
        api.create(CJ, computejob("flexible", duration="2h", max_delay="20h"))
        accepted = await eventually(lambda: (s := status(api, "night-wind")).get(
            "phase") == "Accepted" and s, timeout=1800, step=30, what="the answer")
        assert accepted["asked"] == "+1,000 kW" and accepted["committedKW"] == 0.0
        assert max(s["committedKW"] for s in accepted["slots"]) == 60.0
        assert accepted["emissionsEffectGrams"] < 0  # the surplus is carbon-free
        await eventually(lambda: status(api, "night-wind").get("phase") == "Completed",
                         timeout=11 * 3600, step=300, what="the end of the window")
        done = status(api, "night-wind")
    [(job, started)] = cluster.starts
    assert job == "flexible"
    assert t1 <= started <= t2 - timedelta(hours=2)
    # 60 kW for 2 h, sampled every 5 minutes: a start between two samples counts from
    # the second (at most one sample's worth, 5 kWh, is missed)
    assert done["deliveredKWh"] == pytest.approx(120.0, abs=60.0 * 5 / 60)


async def test_a_restart_in_the_middle_of_a_shed_loses_nothing(api, cluster, clock):
    t1, t2 = clock.start + timedelta(hours=1), clock.start + timedelta(hours=3)
    providers = site(api, cluster)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(GEV, shed("evening-peak", t1, t2))
        api.create(CJ, computejob("chunky", duration="4h", max_delay="12h",
                                  interruptible=True))
        await eventually(lambda: (status(api, "evening-peak").get("deliveredKWh") or 0) > 50,
                         timeout=3 * 3600, step=60, what="an hour into the window")
    kept = status(api, "evening-peak")
    assert kept["phase"] == "Active"
    async with running_operator(api, clock, keeper_factory(providers)):
        await eventually(lambda: status(api, "evening-peak").get("phase") == "Completed",
                         timeout=3 * 3600, step=60, what="the end of the window")
        await eventually(lambda: len(cluster.starts) == 2, timeout=2 * 3600, step=60,
                         what="the resume")
    done = status(api, "evening-peak")
    assert done["deliveredKWh"] == pytest.approx(120.0, rel=0.01)
    assert done["compliance"] == 1.0
    assert cluster.starts[1][1] >= t2 and len(cluster.suspensions) == 1
    completed = [e for e in grid_events(api) if e[1] == "Completed"]
    assert len(completed) == 1 and "delivered 120 kWh (100% of what was asked)" in \
        completed[0][2]
    assert completed[0][2].endswith("; 0 deadline(s) missed")


async def test_a_job_the_event_moved_that_misses_its_deadline_is_counted(api, cluster, clock):
    """The shed moves the job (2 h, which would run into the window at once) to its latest
    start, as the window closes; the operator is
    down then, so the job starts late. Its status says so, and the event counts it,
    after a restart whose rounds no longer know which jobs the event moved."""
    t1, t2 = clock.start + timedelta(hours=1), clock.start + timedelta(hours=3)
    providers = site(api, cluster)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(GEV, shed("evening-peak", t1, t2, mandatory=True))
        api.create(CJ, computejob("tardy", duration="2h", max_delay="3h"))
        moved = await eventually(lambda: (s := status(api, "evening-peak")).get(
            "affectedJobs") == ["batch/tardy"] and s, timeout=1800, step=30,
            what="the answer")
        assert moved["deadlineMisses"] == 0
    await asyncio.sleep(5 * 3600)  # its latest start (03:00) passes while no operator runs
    assert cluster.starts == []
    async with running_operator(api, clock, keeper_factory(providers)):
        await eventually(lambda: cluster.starts, timeout=1800, step=30, what="the start")
        assert api.read(CJ, "batch", "tardy")["status"]["deadlineMissed"] is True
        done = await eventually(lambda: (s := status(api, "evening-peak")).get(
            "deadlineMisses") == 1 and s, timeout=3600, step=60, what="the miss counted")
    assert done["phase"] == "Completed"
    assert [e for e in grid_events(api) if e[1] == "DeadlineMissed"]


async def test_a_price_schedule_moves_work_to_the_valley(api, cluster, clock):
    """Carbon is flat here: the tariff alone (peak 1.2 CNY/kWh for 6 h, then valley 0.3
    for a day) moves the job to the valley's first hours; a job created between full
    rounds is priced the same."""
    valley = clock.start + timedelta(hours=6)
    tou = {"apiVersion": "suandian.io/v1alpha1", "kind": "GridEvent",
           "metadata": {"name": "tou"},
           "spec": {"type": "Price", "sites": ["jiangsu"], "start": format_time(clock.start),
                    "end": format_time(clock.start + timedelta(hours=30)),
                    "prices": {"currency": "CNY", "periods": [
                        {"start": format_time(clock.start), "end": format_time(valley),
                         "pricePerKWh": 1.2, "name": "peak"},
                        {"start": format_time(valley),
                         "end": format_time(clock.start + timedelta(hours=30)),
                         "pricePerKWh": 0.3, "name": "valley"}]}}}
    async with running_operator(api, clock, keeper_factory(site(api, cluster))):
        api.create(GEV, tou)
        api.create(CJ, computejob("first", duration="2h", max_delay="20h"))
        priced = await eventually(lambda: (s := status(api, "tou")).get("jobsAffected")
                                  and s, timeout=1800, step=30, what="the answer")
        assert priced["phase"] == "Active" and priced["committed"] == "priced in"
        assert priced["reason"] == "priced in: 1 job(s) moved to cheaper hours"
        # 60 kW for 2 h, all imported, from the peak (1.2) to the valley (0.3)
        assert (priced["costEffect"], priced["currency"]) == (pytest.approx(-108.0), "CNY")
        assert priced["effect"].endswith("-108.00 CNY")
        api.create(CJ, computejob("second", duration="1h", max_delay="20h"))
        await eventually(lambda: len(cluster.starts) == 2, timeout=8 * 3600, step=300,
                         what="both starts")
    assert all(valley <= t < valley + timedelta(hours=2) for _, t in cluster.starts)

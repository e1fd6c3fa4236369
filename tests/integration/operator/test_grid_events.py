"""The grid asks, the operator answers (GridEvents, against the emulator, on fake time).

A site with no green power (every kW it draws is imported), jobs of 50 kW (60 kW with
the site's PUE), and a request over a window a few hours ahead: the request log shows
what the operator did before the window opened and after it closed, and the event's
status what it committed and delivered.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, PSITES, computejob, eventually
from tests.support.operator import running_operator

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
    t1, t2 = clock.start + timedelta(hours=1), clock.start + timedelta(hours=3)
    async with running_operator(api, clock, keeper_factory(site(api, cluster))):
        api.create(GEV, shed("evening-peak", t1, t2))
        api.create(CJ, computejob("chunky", duration="4h", max_delay="12h",
                                  interruptible=True))
        before = await eventually(lambda: (s := status(api, "evening-peak")).get(
            "phase") == "Accepted" and s, timeout=1800, step=30, what="the answer")
        assert before["shortfallKW"] == 0.0 and before["committed"] == "60 kW"
        assert before["affectedJobs"] == ["batch/chunky"]
        await eventually(lambda: cluster.starts, timeout=1800, step=30, what="the start")
        await eventually(lambda: status(api, "evening-peak").get("phase") == "Completed",
                         timeout=4 * 3600, step=60, what="the end of the window")
        done = status(api, "evening-peak")
        await eventually(lambda: len(cluster.starts) == 2, timeout=2 * 3600, step=60,
                         what="the resume")
    (_, first), (_, second) = cluster.starts
    assert first < t1 and second >= t2
    assert len(cluster.suspensions) == 1 and cluster.suspensions[0][1] <= t1
    assert done["compliance"] == 1.0 and done["delivered"] == "100%"
    assert done["deliveredKWh"] == pytest.approx(120.0, rel=0.02)  # 60 kW for 2 h
    reasons = [e["reason"] for e in api.items("v1/events")
               if e["involvedObject"]["kind"] == "GridEvent"]
    assert reasons[:3] == ["Accepted", "Active", "Completed"]

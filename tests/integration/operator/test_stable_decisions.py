"""Stable decisions on the running operator: while only the clock moves (full rounds
every few minutes, forecast refreshes with the same numbers, slot boundaries passing),
deferred jobs keep their decisions and the operator writes nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, JOBS, PSITES, computejob, eventually
from tests.support.operator import running_operator

from suandian.config import Settings

pytestmark = pytest.mark.looptime

REGION = "topology.kubernetes.io/region"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def windows(start: datetime, *spans: tuple[float, float, float]):  # type: ignore[no-untyped-def]
    """Green kW as a function of time: ``(from hour, to hour, kW)`` spans after start."""
    def green(t: datetime) -> float:
        hours = (t - start).total_seconds() / 3600
        return sum(kw for a, b, kw in spans if a <= hours < b)
    return green


def writes(api: Any, since: int, names: set[str]) -> list[str]:
    """``METHOD plural/name`` of every write from request ``since`` on that concerns one
    of ``names`` (the object itself, its child Job, or an Event about it)."""
    out = []
    for request in api._requests[since:]:
        if request.method.value not in WRITES or request.resource is None:
            continue
        data = request.data or {}
        name = (request.name or data.get("metadata", {}).get("name")
                or data.get("involvedObject", {}).get("name"))
        if request.resource.plural == "events":
            name = data.get("involvedObject", {}).get("name")
        if name in names:
            out.append(f"{request.method.value} {request.resource.plural}/{name}")
    return out


async def test_while_only_the_clock_moves_no_decision_changes_and_nothing_is_written(
        api, cluster, clock):  # type: ignore[no-untyped-def]
    start = clock.start
    providers = {
        "ningxia": ScriptedProvider(windows(start, (4, 7, 120.0), (9, 11, 60.0)), carbon=600),
        "gansu": ScriptedProvider(windows(start, (5, 9, 100.0)), carbon=500),
    }
    for name in providers:
        cluster.add_node(f"{name}-1", {REGION: name}, cpu="64")
        api.create(PSITES, powersite(name, name))
    settings = Settings(plan_batch_window=0.02, replan_interval=timedelta(minutes=5),
                        full_rounds="thread")
    names = [f"etl-{i:02d}" for i in range(16)]
    async with running_operator(api, clock, keeper_factory(providers), settings=settings):
        for i, name in enumerate(names):
            api.create(CJ, computejob(name, duration=f"{1 + i % 3}h", cpu="16",
                                      max_delay=f"{12 + i}h", watts=30_000.0 + 2_000 * i,
                                      interruptible=i % 4 == 0))
        await eventually(lambda: all(api.read(JOBS, "batch", n) for n in names),
                         timeout=600, step=5, what="every child Job")
        await asyncio.sleep(10 * 60)  # settled
        later = (start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
        planned = {n: p for n in names
                   if (p := api.read(CJ, "batch", n)["status"]["plannedStart"]) >= later}
        assert len(planned) >= 8, planned  # deferred past the quiet hours (the rest run now)
        quiet = len(api._requests)
        await asyncio.sleep(3 * 3600)  # 36 full rounds, 12 refreshes, 12 slot boundaries
        written = writes(api, quiet, set(planned))
        now = {n: api.read(CJ, "batch", n)["status"]["plannedStart"] for n in planned}
    assert now == planned
    assert written == [], f"{len(written)} writes while nothing changed: {written[:5]}"

"""Arrival rounds after the sites changed: they reuse the last full round's nodes, whose
site indices count that round's sites, not the sites known now.

A PowerSite that leaves the service's sites (deleted, or its daemon ended) or joins them
shifts every index after it. An arrival round that read the old nodes against the new
sites raised ``PlanningError: node ...: bad site index`` when the last site went (seen
once in hack/bench_operator.py's burst), and gave a job the nodes of another site as its
preferred ones when a site joined before others in name order.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from tests.support.forecasts import powersite
from tests.support.objects import computejob
from tests.unit.controllers.test_commitments import SLOT, T0, FixedClock, demand

from suandian.api.validation import parse_computejob, parse_powersite
from suandian.config import Settings
from suandian.controllers.planning import Demand, PlanningService, SiteEntry
from suandian.controllers.view import ClusterView, NodeRecord
from suandian.forecast import SiteForecast, TimeGrid
from suandian.planner import JobTerms, NodeInfo
from suandian.planning import process as worker
from suandian.planning.rounds import nodes_for

REGION = "topology.kubernetes.io/region"


def entry(name: str) -> SiteEntry:
    """Site ``name`` (its nodes in region ``r-<name>``), green in slots 2-3."""
    green = np.zeros(8)
    green[2:4] = 60.0
    forecast = SiteForecast(
        site=name, grid=TimeGrid(T0, SLOT, 8), green_kw={"wind": green},
        green_total_kw=green, green_p10_kw=green, green_p90_kw=green,
        storage_kw=np.zeros(8), carbon_g_per_kwh=np.full(8, 500.0),
        carbon_p10=np.full(8, 500.0), carbon_p90=np.full(8, 500.0), price=None,
        source="t", issued_at=T0)
    return SiteEntry(parse_powersite(powersite(name, f"r-{name}")), forecast)


class Sites:
    """The service's sites, as the PowerSite handlers keep them (``Context.sites``)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.now: dict[str, SiteEntry] = {n: entry(n) for n in names}

    def __call__(self) -> Mapping[str, SiteEntry]:
        return self.now


def service(sites: Sites, names: Sequence[str], full_rounds: str) -> PlanningService:
    """Two nodes at each of ``names`` (``node-<site>-0``, ``-1``), 64 CPUs each."""
    nodes = {f"node-{n}-{i}": [NodeRecord(f"node-{n}-{i}", {REGION: f"r-{n}"},
                                          {"cpu": 64.0, "memory": 256.0, "pods": 110.0},
                                          True)]
             for n in names for i in range(2)}
    view = ClusterView(nodes, {})
    settings = dataclasses.replace(Settings(), full_rounds=full_rounds)
    return PlanningService(settings, FixedClock(), sites, lambda: view)


def at(key: str, site: str) -> Demand:
    """:func:`demand`, allowed at ``site`` only."""
    job = parse_computejob(computejob(key, duration="30m", max_delay="2h", sites=[site]),
                           created=T0)
    return Demand(key, JobTerms.from_computejob(job), T0)


def own_nodes_only(planning: PlanningService, keys: Sequence[str]) -> None:
    """Each decision of ``keys`` is placed, and prefers some nodes, of its own site only."""
    for key in keys:
        d = planning.current(key)
        assert d is not None and d.site is not None, key
        assert d.node_preferences, key
        assert all(name.startswith(f"node-{d.site}-") for name, _ in d.node_preferences), (
            key, d.site, d.node_preferences)


@pytest.fixture(params=["thread", "process"])
def full_rounds(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def made() -> Any:
    """The services a test made; their planner processes closed after it."""
    services: list[PlanningService] = []
    yield services
    for planning in services:
        if planning._planner is not None:
            planning._planner.close()


async def test_an_arrival_round_after_the_last_site_went_plans_on_the_others(
        full_rounds: str, made: list[PlanningService]) -> None:
    sites = Sites(["a", "b", "c"])
    planning = service(sites, ["a", "b", "c"], full_rounds)
    made.append(planning)
    for i in range(10):
        planning.upsert(demand(f"old-{i}"))
    await planning.run_round()  # the first round, a full one: nodes indexed a=0 b=1 c=2
    own_nodes_only(planning, [f"old-{i}" for i in range(10)])
    del sites.now["c"]  # as when its daemon ends: no full round asked for
    planning.upsert(demand("new"))
    await planning.run_round()  # an arrival round: c's nodes are not a site's any more
    own_nodes_only(planning, ["new"])
    assert planning.current("new").site in {"a", "b"}  # type: ignore[union-attr]


async def test_an_arrival_round_after_a_site_joined_before_the_others_keeps_their_nodes(
        full_rounds: str, made: list[PlanningService]) -> None:
    sites = Sites(["b", "c"])
    planning = service(sites, ["a", "b", "c"], full_rounds)  # a's nodes are there already
    made.append(planning)
    for i in range(10):
        planning.upsert(demand(f"old-{i}"))
    await planning.run_round()  # nodes indexed b=0 c=1 (a is no site yet)
    sites.now["a"] = entry("a")  # now a=0 b=1 c=2: b's nodes are not a's
    for site in ("a", "b", "c"):
        planning.upsert(at(f"new-{site}", site))
    await planning.run_round()
    own_nodes_only(planning, ["new-b", "new-c"])
    # a's nodes were never counted: no room there until a full round reads them (its
    # capacity was once unbounded, and a job went to a site of no known node)
    assert planning.current("new-a").site is None  # type: ignore[union-attr]
    planning.replan()
    await planning.run_round()
    own_nodes_only(planning, ["new-a", "new-b", "new-c"])
    assert [planning.current(f"new-{s}").site  # type: ignore[union-attr]
            for s in ("a", "b", "c")] == ["a", "b", "c"]


@pytest.mark.looptime(False)
async def test_arrivals_during_the_full_round_a_site_deletion_asked_for(
        monkeypatch: pytest.MonkeyPatch, made: list[PlanningService]) -> None:
    """The PowerSite handler's path: a site deleted asks for a full round; the loop starts
    it in the planner process and goes on deciding arrivals meanwhile, against the nodes
    of the last full round that ended."""
    sites = Sites(["a", "b", "c"])
    planning = service(sites, ["a", "b", "c"], "process")
    made.append(planning)
    gate, entered = asyncio.Event(), asyncio.Event()
    real = worker.PlannerProcess.compute
    held = False

    async def compute(self: worker.PlannerProcess, inputs: Any, params: Any
                      ) -> worker.RemoteRound:
        if held:  # a full round that takes as long as the test likes
            entered.set()
            await gate.wait()
        return await real(self, inputs, params)

    monkeypatch.setattr(worker.PlannerProcess, "compute", compute)
    told: list[str] = []
    for i in range(10):
        planning.upsert(demand(f"old-{i}"), lambda d: told.append(d.key))
    planning.start()
    try:
        await asyncio.wait_for(_until(lambda: len(told) == 10), 30)
        held = True
        del sites.now["c"]
        planning.replan()
        await asyncio.wait_for(entered.wait(), 30)
        planning.upsert(demand("new"), lambda d: told.append(d.key))
        await asyncio.wait_for(_until(lambda: "new" in told or planning.last_error), 30)
        assert planning.last_error is None and planning.computing
        own_nodes_only(planning, ["new"])
    finally:
        gate.set()
        await planning.stop()


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_nodes_follow_their_site_by_name() -> None:
    def node(name: str, site: int) -> NodeInfo:
        return NodeInfo(name=name, site=site, allocatable=np.ones(3))

    nodes = (node("x", 0), node("y", 1), node("z", 2))
    assert nodes_for(nodes, ("a", "b", "c"), ("a", "b", "c")) is nodes  # nothing moved
    moved = nodes_for(nodes, ("a", "b", "c"), ("0", "b", "c"))  # a went, 0 came
    assert [(n.name, n.site) for n in moved] == [("y", 1), ("z", 2)]
    assert [(n.name, n.site) for n in nodes_for(nodes, ("a", "b", "c"), ("c", "a"))] == [
        ("x", 1), ("z", 0)]
    assert nodes_for(nodes, ("a", "b", "c"), ()) == ()

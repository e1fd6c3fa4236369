"""The grid's requests in the operator's planning rounds: a full round answers them (in a
thread or in the planner process), an arrival round plans under the accepted ones."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest
from tests.support.objects import computejob
from tests.unit.controllers.test_commitments import SLOT, T0, demand, service

from suandian.api.validation import parse_computejob
from suandian.controllers.planning import Demand, PlanningService
from suandian.planner import JobTerms
from suandian.planner.grid import GridAsk

pytestmark = pytest.mark.parametrize("full_rounds", ["thread", "process"])


def with_asks(planning: PlanningService, *asks: GridAsk) -> PlanningService:
    planning.grid_asks = lambda names: [a for a in asks if names[a.site] == "s"]
    return planning


def shed(end: datetime, *, key: str = "peak@s", mandatory: bool = False,
         ceiling_kw: float = 0.0) -> GridAsk:
    return GridAsk(key=key, site=0, start=T0, end=end, ceiling_kw=ceiling_kw,
                   mandatory=mandatory)


async def test_a_ceiling_moves_the_job_and_the_next_arrival_out_of_its_window(full_rounds):
    """Green in slots 2-3 only (the service's default is moved off: none at all here),
    grid import capped at 0 kW for the first 4 slots: both jobs wait for slot 4."""
    planning = with_asks(service(green=np.zeros(8), full_rounds=full_rounds),
                         shed(T0 + 4 * SLOT))
    try:
        planning.upsert(demand("a"))
        await planning.run_round()
        first = planning.current("a")
        assert first is not None and first.planned_start == T0 + 4 * SLOT
        answer = planning.answers["peak@s"]
        assert answer.accepted and answer.shortfall_kw == 0.0
        assert answer.jobs == ("a",)
        assert answer.committed_kw.tolist() == [60.0, 60.0, 0.0, 0.0]  # baseline: 0-1
        assert planning.answer_grid == (T0, SLOT)
        planning.upsert(demand("b"))  # an arrival round: under the accepted ceiling
        await planning.run_round()
        second = planning.current("b")
        assert second is not None and second.planned_start >= T0 + 4 * SLOT
        # both say why they wait, the arrival round's as the full round's
        assert "; waits past grid shed peak (" in first.reason
        assert "; waits past grid shed peak (" in second.reason
    finally:
        await planning.stop()


async def test_without_the_asks_the_same_jobs_start_at_once(full_rounds):
    planning = service(green=np.zeros(8), full_rounds=full_rounds)
    try:
        planning.upsert(demand("a"))
        await planning.run_round()
        decided = planning.current("a")
        assert decided is not None and decided.planned_start == T0
        assert planning.answers == {}
    finally:
        await planning.stop()


def urgent(key: str) -> Demand:
    """60 kW at the site for 30 minutes, started within 15 minutes."""
    job = parse_computejob(computejob(key, duration="30m", max_delay="15m"), created=T0)
    return Demand(key, JobTerms.from_computejob(job), T0)


async def test_a_voluntary_shed_that_cannot_be_met_is_declined_and_arrivals_ignore_it(
        full_rounds):
    """A ceiling over the first 4 slots, and a job that must start in the first."""
    planning = with_asks(service(green=np.zeros(8), full_rounds=full_rounds),
                         shed(T0 + 4 * SLOT))
    try:
        planning.upsert(urgent("a"))
        await planning.run_round()
        answer = planning.answers["peak@s"]
        assert not answer.accepted and answer.reason.startswith("declined")
        planning.upsert(demand("b"))
        await planning.run_round()
        decided = planning.current("b")
        assert decided is not None and decided.planned_start == T0  # no ceiling kept
    finally:
        await planning.stop()


async def test_a_round_after_the_last_demand_left_still_ends_soundly(full_rounds):
    """(It failed for ever: the round's placeholder time, naive, met the arrival log's.)"""
    planning = service(full_rounds=full_rounds)
    try:
        planning.upsert(demand("a"))
        await planning.run_round()
        planning.remove("a")
        planning.replan()
        await planning.run_round()
        assert planning.last_error is None
    finally:
        await planning.stop()


async def test_a_running_job_planned_afresh_for_a_shed_still_draws_at_its_site(
        full_rounds):
    """What the sites draw (GridEvent delivery, PowerSite compute power) counts a job
    that runs now though it is planned again for a shed ahead (``Demand.runs_at``)."""
    planning = service(green=np.zeros(8), full_rounds=full_rounds)
    job = parse_computejob(computejob("a", duration="30m", max_delay="2h",
                                      interruptible=True), created=T0)
    running = Demand("a", JobTerms.from_computejob(job), T0, running_site="s",
                     remaining=SLOT)
    stuck = replace(demand("d"), running_site="s", remaining=SLOT)  # not interruptible
    afresh = replace(demand("b"), runs_at="s")
    waiting = demand("c")
    for d in (running, stuck, afresh, waiting):
        planning.upsert(d)
    assert planning.running_power_kw("s") == pytest.approx(150.0)  # 50 kW IT each
    assert planning.suspendable_at("s") == ["a"]  # only takes supply, may be suspended
    await planning.stop()


async def test_a_round_with_no_demand_answers_and_freezes_no_baseline(full_rounds):
    """The grid asks a voluntary 25% cut while nothing waits: a round answers it (met,
    nothing moved), but its baseline, nothing at all, is not the one the cut is held to:
    when a job that must run in the window comes, the cut is measured against the plan
    with that job (15 kW asked, declined for 15 kW short), not against nothing (0 kW
    asked, and "only -60 kW" shed)."""
    cut = GridAsk(key="peak@s", site=0, start=T0, end=T0 + 4 * SLOT, reduction_share=0.25)
    planning = with_asks(service(green=np.zeros(8), full_rounds=full_rounds), cut)
    try:
        await planning.run_round()
        idle = planning.answers["peak@s"]
        assert idle.accepted and idle.jobs == () and idle.shortfall_kw == 0.0
        assert idle.asked_kw.tolist() == [0.0] * 4
        planning.upsert(urgent("now"))
        await planning.run_round()  # an arrival round
        planning.replan()
        await planning.run_round()  # a full round, with the job
        answer = planning.answers["peak@s"]
        assert not answer.accepted
        assert answer.asked_kw.max() == pytest.approx(15.0)  # 25% of its 60 kW
        assert answer.shortfall_kw == pytest.approx(15.0)
        assert "can shed only 0 kW of 15 kW" in answer.reason
    finally:
        await planning.stop()

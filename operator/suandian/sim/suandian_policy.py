"""The ``suandian`` policy of the simulator: the planner itself, re-planning every job on
arrivals and on each forecast refresh, under shared green supply and capacity, as the
operator does; it suspends interruptible jobs. Like the operator, it remembers what
arrived and plans the work expected to arrive beside the jobs
(:mod:`~suandian.planner.arrivals`), and it answers the grid's events
(:mod:`~suandian.planner.grid`: a shed is a ceiling on import, a surplus is supply).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np

from suandian.planner import Incumbent, JobDemand, PlanParams, SiteSupply, Snapshot, plan
from suandian.planner.arrivals import DAY, Arrival, expected_arrivals
from suandian.planner.grid import answer, freeze, open_asks
from suandian.sim.engine import SimState
from suandian.sim.world import SimJob, World

__all__ = ["SuandianPolicy"]


class SuandianPolicy:
    """The planner, re-planning on arrivals and forecast refreshes."""

    name = "suandian"
    preemptive = True

    def __init__(self, params: PlanParams | None = None, *, sticky: bool = True) -> None:
        self.params = params or PlanParams(safety_margin=timedelta(0))
        self.sticky = sticky  # as the operator: a waiting job's decision is its incumbent
        self.schedule: dict[int, tuple[int, frozenset[int]]] = {}
        self.plans = 0
        self.moves = 0  # re-plans that changed a waiting job's site or slots
        self._seen = 0
        self._history: deque[Arrival] = deque()  # the last day's arrivals, in order
        self._order: list[int] | None = None  # job indices in the order they arrive
        self._logged = 0  # of which in the history
        self._since: datetime | None = None  # when the history began: the first round
        self._baselines: dict[str, tuple[float, ...]] = {}  # frozen, by the request's key

    def step(self, world: World, state: SimState) -> list[tuple[int, int]]:
        arrived = state.arrived  # a count the engine keeps (recounting grew with the run)
        if state.t % world.refresh == 0 or arrived != self._seen:
            self._replan(world, state)
            self._seen = arrived
        out = []
        for j in state.queued:
            entry = self.schedule.get(j)
            if entry is not None and state.t in entry[1]:
                out.append((j, entry[0]))
        return out

    def _replan(self, world: World, state: SimState) -> None:
        sig = world.signals(state.t)
        horizon, t = sig.slots, state.t
        cap = np.repeat(world.capacity[:, :, None], horizon, axis=2).astype(float)
        jobs: list[JobDemand] = []
        keys: list[int] = []
        now = world.time_at(t)
        for j in state.queued:
            job, st = world.jobs[j], state.jobs[j]
            locked = st.started is not None and not job.interruptible
            if locked:
                assert st.site is not None
                cap[st.site, :, : st.remaining] -= job.resources[:, None]
            sites = (st.site,) if st.site is not None else job.allowed
            held = self.schedule.get(j) if st.started is None else None
            jobs.append(_demand(
                world, job, remaining=st.remaining,
                earliest=max(now, world.time_at(job.submit)), sites=sites,
                running_site=st.site if locked else None,
                incumbent=None if held is None or not self.sticky else Incumbent(
                    held[0], _windows(world, held[1]))))
            keys.append(j)
        supplies = tuple(
            SiteSupply(name=n, green_p50_kw=sig.green_p50[s], green_p10_kw=sig.green_p10[s],
                       carbon_g_per_kwh=sig.carbon[s],
                       import_limit_kw=np.full(horizon, world.import_limit[s]),
                       pue=float(world.pue[s]), capacity=cap[s],
                       green_by_source_kw=sig.by_source[s])
            for s, n in enumerate(world.names))
        self._remember(world, t)
        expected = expected_arrivals(self._history, now, world.time_at(t + horizon)) if (
            self.params.expected_arrivals) else ()
        if self._since is None:
            self._since = now
        snap = Snapshot(now=now, slot=world.slot, resources=world.resources, sites=supplies,
                        jobs=tuple(jobs), expected=expected,
                        arrivals_complete=self.params.expected_arrivals and (
                            now - self._since >= DAY))
        links = getattr(world, "links", None)  # a hand-built world may have none
        if links is not None and self.params.data_links != links:  # as the engine counts
            self.params = replace(self.params, data_links=links)
        events = getattr(world, "events", ())  # a hand-built world may have none
        horizon_end = world.time_at(t + horizon)
        asks = open_asks([e.ask for e in events], now, horizon_end, self._baselines)
        if asks:
            answered = answer(snap, asks, self.params)
            result = answered.plan
            self._baselines = freeze(answered.answers, horizon_end, self._baselines)
        else:
            result = plan(snap, self.params)
        self.plans += 1
        before, self.schedule = self.schedule, {}
        for d in result.decisions:
            if d.site_index is not None:
                self.schedule[int(d.key)] = (d.site_index, frozenset(t + k for k in d.slots))
        self.moves += sum(1 for j in keys if state.jobs[j].started is None and j in before
                          and before[j] != self.schedule.get(j))

    def _remember(self, world: World, t: int) -> None:
        """Log the jobs submitted up to slot ``t`` as they arrived (whole duration, window
        from submission), as the operator keeps the ComputeJobs created."""
        if self._order is None:
            self._order = sorted(range(len(world.jobs)), key=lambda j: (world.jobs[j].submit, j))
        order = self._order
        while self._logged < len(order) and world.jobs[order[self._logged]].submit <= t:
            job = world.jobs[order[self._logged]]
            at = world.time_at(job.submit)
            self._history.append(Arrival(at, _demand(world, job, remaining=job.n,
                                                     earliest=at, sites=job.allowed)))
            self._logged += 1
        oldest = world.time_at(t) - DAY  # what arrived before recurs before now
        while self._history and self._history[0].created <= oldest:
            self._history.popleft()


def _demand(world: World, job: SimJob, *, remaining: int, earliest: datetime,
            sites: Sequence[int], running_site: int | None = None,
            incumbent: Incumbent | None = None) -> JobDemand:
    """The planner's view of a simulated job with ``remaining`` slots to run (its data
    too: a job and its expected repeat are limited alike to where their data reaches)."""
    return JobDemand(
        key=str(job.index), resources=job.resources, power_w=job.power_kw * 1000.0,
        duration=world.slot * remaining, earliest_start=earliest,
        deadline=world.time_at(job.deadline), interruptible=job.interruptible,
        allowed_sites=tuple(int(s) for s in sites),
        min_green_fraction=job.trace.min_green_fraction, priority=job.trace.priority,
        running_site=running_site, incumbent=incumbent,
        data_gb=job.trace.data_gb, data_site=job.trace.data_site)


def _windows(world: World, slots: frozenset[int]) -> tuple[tuple[datetime, datetime], ...]:
    """Contiguous runs of absolute slots as (start, end) times."""
    out: list[tuple[datetime, datetime]] = []
    for k in sorted(slots):
        if out and out[-1][1] == world.time_at(k):
            out[-1] = (out[-1][0], world.time_at(k + 1))
        else:
            out.append((world.time_at(k), world.time_at(k + 1)))
    return tuple(out)

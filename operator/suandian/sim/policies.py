"""The policies compared by ``suandian simulate``, each as its peers implement it.

- ``run-now``: every job starts at once at its home site (no shifting at all).
- ``threshold`` (Compute Gardener): a job waits at its home site while the carbon
  intensity it would run at is above a threshold, up to a max delay (default 24 h, never
  past the job's latest start), then starts.
- ``best-window`` (Carbon Aware SDK, cats): when a job arrives it alone picks, among its
  allowed locations and starts before its latest start, the window of its duration with
  the lowest rolling-mean intensity, and runs then. No knowledge of other jobs.
- ``suandian``: the planner, re-planning every job on arrivals and on each forecast
  refresh, under shared green supply and capacity; suspends interruptible jobs.
- ``oracle``: the MILP with the actuals and every job known up front.

The intensity baselines see is that of the site's power for the job alone, from the same
forecast: ``c · max(q − G, 0) / q`` (grid intensity where green supply runs short).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

from suandian.planner import Incumbent, JobDemand, PlanParams, SiteSupply, Snapshot, plan
from suandian.planner.model import FloatArray
from suandian.planner.oracle import OracleResult, solve_oracle
from suandian.sim.engine import SimState
from suandian.sim.world import SimJob, World

__all__ = ["BestWindow", "OraclePolicy", "RunNow", "SuandianPolicy", "Threshold"]


def job_intensity(q: FloatArray, green: FloatArray, carbon: FloatArray) -> FloatArray:
    """Intensity of the power a job of ``q`` kW alone would draw: ``c · max(q−G, 0)/q``."""
    return carbon * np.maximum(q - green, 0.0) / np.maximum(q, 1e-9)


class RunNow:
    """No shifting: start at the home site as soon as submitted."""

    name = "run-now"
    preemptive = False

    def step(self, world: World, state: SimState) -> list[tuple[int, int]]:
        return [(j, world.jobs[j].home) for j in state.waiting()]


class Threshold:
    """Compute Gardener: hold while intensity > threshold, up to the max delay."""

    name = "threshold"
    preemptive = False

    def step(self, world: World, state: SimState) -> list[tuple[int, int]]:
        sig = world.signals(state.t)
        max_delay = round(world.scenario.threshold_max_delay / world.slot)
        out = []
        for j in state.waiting():
            job = world.jobs[j]
            q = job.power_kw * world.pue[job.home]
            now = float(job_intensity(np.array(q), sig.green_p50[job.home, 0],
                                      sig.carbon[job.home, 0]))
            waited = state.t - job.submit
            give_up = waited >= min(max_delay, job.deadline - job.n - job.submit)
            if now <= world.scenario.threshold_g_per_kwh or give_up:
                out.append((j, job.home))
        return out


class BestWindow:
    """Carbon Aware SDK / cats: each job alone picks its lowest rolling-mean window."""

    name = "best-window"
    preemptive = False

    def __init__(self) -> None:
        self.chosen: dict[int, tuple[int, int]] = {}

    def step(self, world: World, state: SimState) -> list[tuple[int, int]]:
        out = []
        for j in state.waiting():
            if j not in self.chosen:
                self.chosen[j] = self._pick(world, world.jobs[j], state.t)
            site, start = self.chosen[j]
            if state.t >= start:
                out.append((j, site))
        return out

    @staticmethod
    def _pick(world: World, job: SimJob, t: int) -> tuple[int, int]:
        sig = world.signals(t)
        latest = job.deadline - job.n - t
        starts = min(latest, sig.slots - job.n) + 1
        if starts <= 1:
            return job.home, t
        sites = np.array(job.allowed)
        q = (job.power_kw * world.pue[sites])[:, None]
        inten = job_intensity(q, sig.green_p50[sites], sig.carbon[sites])
        prefix = np.concatenate([np.zeros((len(sites), 1)), np.cumsum(inten, axis=1)], axis=1)
        mean = (prefix[:, job.n: job.n + starts] - prefix[:, :starts]) / job.n
        s, k = np.unravel_index(int(np.argmin(mean)), mean.shape)  # ties: home, earliest
        return int(sites[s]), t + int(k)


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

    def step(self, world: World, state: SimState) -> list[tuple[int, int]]:
        arrived = len(state.queued) + sum(1 for s in state.jobs if s.finished is not None)
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
            jobs.append(JobDemand(
                key=str(j), resources=job.resources, power_w=job.power_kw * 1000.0,
                duration=world.slot * st.remaining, earliest_start=max(now, world.time_at(
                    job.submit)), deadline=world.time_at(job.deadline),
                interruptible=job.interruptible, allowed_sites=tuple(int(s) for s in sites),
                min_green_fraction=job.trace.min_green_fraction, priority=job.trace.priority,
                running_site=st.site if locked else None,
                incumbent=None if held is None or not self.sticky else Incumbent(
                    held[0], _windows(world, held[1])),
            ))
            keys.append(j)
        supplies = tuple(
            SiteSupply(name=n, green_p50_kw=sig.green_p50[s], green_p10_kw=sig.green_p10[s],
                       carbon_g_per_kwh=sig.carbon[s],
                       import_limit_kw=np.full(horizon, world.import_limit[s]),
                       pue=float(world.pue[s]), capacity=cap[s],
                       green_by_source_kw=sig.by_source[s])
            for s, n in enumerate(world.names))
        snap = Snapshot(now=now, slot=world.slot, resources=world.resources, sites=supplies,
                        jobs=tuple(jobs))
        result = plan(snap, self.params)
        self.plans += 1
        before, self.schedule = self.schedule, {}
        for d in result.decisions:
            if d.site_index is not None:
                self.schedule[int(d.key)] = (d.site_index, frozenset(t + k for k in d.slots))
        self.moves += sum(1 for j in keys if state.jobs[j].started is None and j in before
                          and before[j] != self.schedule.get(j))


def _windows(world: World, slots: frozenset[int]) -> tuple[tuple[datetime, datetime], ...]:
    """Contiguous runs of absolute slots as (start, end) times."""
    out: list[tuple[datetime, datetime]] = []
    for k in sorted(slots):
        if out and out[-1][1] == world.time_at(k):
            out[-1] = (out[-1][0], world.time_at(k + 1))
        else:
            out.append((world.time_at(k), world.time_at(k + 1)))
    return tuple(out)


class OraclePolicy:
    """Perfect knowledge: the MILP's schedule over the actuals, replayed."""

    name = "oracle"
    preemptive = True

    def __init__(self, world: World, time_limit_s: float = 30.0,
                 starts: Sequence[tuple[float, dict[str, tuple[int, tuple[int, ...]]]]] = (),
                 ) -> None:
        self.result = self._solve(world, time_limit_s, starts)
        self.slots = {int(k): (s, frozenset(v)) for k, (s, v) in self.result.schedule.items()}

    @staticmethod
    def _solve(world: World, time_limit_s: float,
               starts: Sequence[tuple[float, dict[str, tuple[int, tuple[int, ...]]]]],
               ) -> OracleResult:
        """Solve with the actuals. MIP start: the cheapest of the clairvoyant planner's
        schedule and the feasible schedules other policies ran (``(emissions, schedule)``);
        a better start only makes the oracle stronger, never a policy look better."""
        n = world.slots
        supplies = tuple(
            SiteSupply(name=name, green_p50_kw=world.green[s, :n],
                       green_p10_kw=world.green[s, :n], carbon_g_per_kwh=world.carbon[s, :n],
                       import_limit_kw=np.full(n, world.import_limit[s]),
                       pue=float(world.pue[s]),
                       capacity=np.repeat(world.capacity[s][:, None], n, axis=1))
            for s, name in enumerate(world.names))
        jobs = tuple(
            JobDemand(key=str(j.index), resources=j.resources, power_w=j.power_kw * 1000.0,
                      duration=world.slot * j.n, earliest_start=world.time_at(j.submit),
                      deadline=world.time_at(j.deadline), interruptible=j.interruptible,
                      allowed_sites=j.allowed)
            for j in world.jobs)
        snap = Snapshot(now=world.time_at(0), slot=world.slot, resources=world.resources,
                        sites=supplies, jobs=jobs)
        # MIP start: the planner itself, clairvoyant (actuals, every job known up front)
        warm = plan(snap, PlanParams(safety_margin=timedelta(0), risk_aversion=0.0,
                                     delay_penalty_g_per_kwh_h=0.0))
        start = {d.key: (d.site_index, d.slots) for d in warm.decisions
                 if d.site_index is not None}
        candidates = [(_replay_emissions(world, start), start), *starts]
        best = min(candidates, key=lambda c: c[0])[1]
        return solve_oracle(snap, time_limit_s=time_limit_s, start=best)

    def step(self, world: World, state: SimState) -> list[tuple[int, int]]:
        out = []
        for j in state.queued:
            site, slots = self.slots[j]
            if state.t in slots:
                out.append((j, site))
        return out


def _replay_emissions(world: World, schedule: dict[str, tuple[int, tuple[int, ...]]]) -> float:
    """Actual emissions of a schedule (green first at each site and slot)."""
    load = np.zeros_like(world.green)
    for key, (site, slots) in schedule.items():
        job = world.jobs[int(key)]
        load[site, list(slots)] += job.power_kw * world.pue[site]
    grid = load - np.minimum(load, world.green)
    return float((grid * world.carbon).sum() * world.h)

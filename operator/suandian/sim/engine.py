"""The virtual clock: replay a policy slot by slot and account with the actuals.

Each slot: jobs submitted by then join the queue; the policy says which queued jobs run
now and where; the engine admits them while the site's capacity lasts (the rest stay
queued, as pods stay Pending); then it accounts the slot with what really happened:
at each site, the load takes the actual green supply first and the grid for the rest at
the actual intensity. A job that is not interruptible (or whose policy cannot suspend)
runs to completion once started.

A job that reads data (``TraceJob.data_gb``) and runs away from its data's site waits,
whatever the policy, until its data can be there (its submission plus the transfer's
slots over the link, :mod:`suandian.planner.data`), and its first start there accounts
the transfer: its kWh at the actual grid intensity of the data's site in that slot,
added to the policy's emissions and reported apart (``transfer_*``), so that a policy
that moves data is charged for it as the planner expects to be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from suandian.planner.model import FloatArray
from suandian.sim.world import World

__all__ = ["JobState", "PolicyResult", "SimPolicy", "SimState", "run_policy"]


@dataclass
class JobState:
    """Progress of one job under one policy."""

    remaining: int
    ran: list[int] = field(default_factory=list)
    site: int | None = None
    started: int | None = None
    finished: int | None = None


@dataclass
class SimState:
    """Everything a policy may look at: jobs' progress and who holds what."""

    t: int
    jobs: list[JobState]
    queued: list[int] = field(default_factory=list)  # submitted, not finished, not locked
    arrived: int = 0  # jobs submitted so far (a count kept, not recounted each slot)
    finished: int = 0  # of which finished

    def continuing(self, j: int, interruptible: bool, preemptive: bool) -> bool:
        """A started job that cannot be suspended runs on, wherever it is."""
        s = self.jobs[j]
        return (s.started is not None and s.finished is None
                and not (interruptible and preemptive))

    def waiting(self) -> list[int]:
        """Queued jobs that are not locked into running (the policy's to decide)."""
        return [j for j in self.queued if self.jobs[j].started is None]


class SimPolicy(Protocol):
    """A scheduling policy: which queued jobs run in slot ``t``, and where."""

    name: str
    preemptive: bool

    def step(self, world: World, state: SimState) -> list[tuple[int, int]]:
        """``(job index, site index)`` pairs to run now, in priority order."""
        ...


@dataclass
class PolicyResult:
    """What a policy achieved, measured with the actuals."""

    name: str
    emissions_g: float
    energy_kwh: float
    green_kwh: float
    deadline_misses: int
    delays_s: FloatArray
    jobs: int
    unfinished: int
    load_kw: FloatArray
    import_overload_kwh: float
    placements: dict[int, tuple[int, int, int]]  # job -> (site, start slot, finish slot)
    ran: dict[int, tuple[int, tuple[int, ...]]] = field(default_factory=dict)  # site, slots
    transfer_kwh: float = 0.0  # network energy of moving jobs' data (in emissions_g)
    transfer_g: float = 0.0
    transfer_gb: float = 0.0
    transfer_jobs: int = 0  # jobs run away from their data

    def feasible_schedule(self) -> dict[str, tuple[int, tuple[int, ...]]] | None:
        """What ran, as an oracle MIP start, if it kept every deadline and import limit."""
        if self.deadline_misses or self.import_overload_kwh > 1e-6:
            return None
        return {str(j): v for j, v in self.ran.items()}

    @property
    def green_fraction(self) -> float:
        return self.green_kwh / self.energy_kwh if self.energy_kwh > 0 else 0.0

    @property
    def mean_delay_s(self) -> float:
        return float(self.delays_s.mean()) if self.delays_s.size else 0.0

    @property
    def p95_delay_s(self) -> float:
        return float(np.percentile(self.delays_s, 95)) if self.delays_s.size else 0.0


def run_policy(world: World, policy: SimPolicy,
               progress: Callable[[int], None] | None = None) -> PolicyResult:
    """Replay every job of ``world`` under ``policy``; deterministic."""
    jobs = world.jobs
    n_sites, n_slots = len(world.names), world.slots
    states = [JobState(remaining=j.n) for j in jobs]
    state = SimState(0, states)
    arrivals: dict[int, list[int]] = {}
    for job in jobs:
        arrivals.setdefault(job.submit, []).append(job.index)
    load = np.zeros((n_sites, n_slots))
    last_arrival = max(arrivals, default=0)
    for t in range(n_slots):
        state.t = t
        for j in arrivals.get(t, []):
            state.queued.append(j)
            state.arrived += 1
        if state.arrived == state.finished and t > last_arrival:
            break
        used = np.zeros((n_sites, len(world.resources)))
        running = [j for j in state.queued if state.continuing(j, jobs[j].interruptible,
                                                                policy.preemptive)]
        for j in running:
            used[states[j].site] += jobs[j].resources
        admitted = set(running)
        for j, wanted in policy.step(world, state):
            if j in admitted or states[j].finished is not None:
                continue
            held = states[j].site
            s = held if held is not None else wanted  # a started job does not migrate
            if held is None and jobs[j].data_wait and (
                    t < jobs[j].submit + jobs[j].data_wait[s]):
                continue  # its data is not there yet: stays queued
            if np.any(used[s] + jobs[j].resources > world.capacity[s] + 1e-9):
                continue  # no room: stays queued, like a Pending pod
            used[s] += jobs[j].resources
            running.append(j)
            admitted.add(j)
            states[j].site = s
        for j in running:
            st = states[j]
            if st.started is None:
                st.started = t
            site = st.site
            assert site is not None
            load[site, t] += jobs[j].power_kw * world.pue[site]
            st.remaining -= 1
            st.ran.append(t)
            if st.remaining == 0:
                st.finished = t + 1
                state.finished += 1
                state.queued.remove(j)
        if progress is not None:
            progress(t)
    result = _account(world, policy.name, states, load)
    _account_transfers(world, states, result)
    return result


def _account_transfers(world: World, states: list[JobState], result: PolicyResult) -> None:
    """Each job started away from its data: its transfer's kWh at the data site's actual
    intensity in the slot it started, into the policy's emissions."""
    for job, st in zip(world.jobs, states, strict=True):
        if not job.data_wait or st.site is None or st.started is None or (
                job.data_kwh[st.site] <= 0 and job.data_wait[st.site] == 0):
            continue
        row = job.data_row if job.data_row >= 0 else st.site
        at = min(st.started, world.carbon.shape[1] - 1)
        kwh = job.data_kwh[st.site]
        result.transfer_kwh += kwh
        result.transfer_g += kwh * float(world.carbon[row, at])
        result.transfer_gb += job.trace.data_gb
        result.transfer_jobs += 1
    result.emissions_g += result.transfer_g


def _account(world: World, name: str, states: list[JobState], load: FloatArray
             ) -> PolicyResult:
    h = world.h
    n = load.shape[1]
    green = np.minimum(load, world.green[:, :n])
    grid = load - green
    emissions = float((grid * world.carbon[:, :n]).sum() * h)
    overload = float(np.maximum(grid - world.import_limit[:, None], 0.0).sum() * h)
    misses, delays, placements = 0, [], {}
    ran: dict[int, tuple[int, tuple[int, ...]]] = {}
    unfinished = 0
    for job, st in zip(world.jobs, states, strict=True):
        if st.finished is None:
            unfinished += 1
            misses += 1
            continue
        if st.finished > job.deadline:
            misses += 1
        delays.append((st.finished - job.submit - job.n) * h * 3600.0)
        assert st.site is not None
        assert st.started is not None
        placements[job.index] = (st.site, st.started, st.finished)
        ran[job.index] = (st.site, tuple(st.ran))
    return PolicyResult(
        name=name, emissions_g=emissions, energy_kwh=float(load.sum() * h),
        green_kwh=float(green.sum() * h), deadline_misses=misses,
        delays_s=np.array(delays), jobs=len(world.jobs) - unfinished, unfinished=unfinished,
        load_kw=load, import_overload_kwh=overload, placements=placements, ran=ran,
    )

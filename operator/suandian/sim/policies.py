"""The policies compared by ``suandian simulate``, each as its peers implement it.

- ``run-now``: every job starts at once at its home site (no shifting at all).
- ``nominal``: every job starts at its nominal start (its cron time: a trace's
  ``nominal`` column, or the generator's with ``workload.window``) at its home site:
  what happens without carbon awareness when jobs have a usual time and a window around
  it. Without nominal starts it is ``run-now``.
- ``threshold`` (Compute Gardener): a job waits at its home site while the carbon
  intensity it would run at is above a threshold, up to a max delay (default 24 h, never
  past the job's latest start), then starts.
- ``best-window`` (Carbon Aware SDK, cats): when a job arrives it alone picks, among its
  allowed locations and starts before its latest start, the window of its duration with
  the lowest rolling-mean intensity, and runs then. No knowledge of other jobs.
- ``suandian``: the planner, re-planning every job on arrivals and on each forecast
  refresh, under shared green supply and capacity; suspends interruptible jobs
  (:mod:`suandian.sim.suandian_policy`).
- ``oracle``: the MILP with the actuals and every job known up front
  (:mod:`suandian.sim.oracle_policy`; built by :func:`suandian.sim.run.simulate`, which
  hands it the other policies' schedules as MIP starts).

The intensity baselines see is that of the site's power for the job alone, from the same
forecast: ``c · max(q − G, 0) / q`` (grid intensity where green supply runs short).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from suandian.planner.model import FloatArray
from suandian.sim.engine import SimState
from suandian.sim.planner_settings import plan_params
from suandian.sim.suandian_policy import SuandianPolicy
from suandian.sim.world import SimJob, World

__all__ = ["POLICY_NAMES", "BestWindow", "Nominal", "RunNow", "Threshold", "job_intensity",
           "make_policy", "policy_list"]

POLICY_NAMES = ("run-now", "nominal", "threshold", "best-window", "suandian", "oracle")
"""Every policy ``suandian simulate`` can run, in the order its table shows them (and
runs them: the oracle last, as it starts from the others' schedules)."""


def policy_list(text: str) -> tuple[str, ...]:
    """A comma list of policy names, in ``POLICY_NAMES`` order, each once; a ValueError
    naming the unknown ones and the choices."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in POLICY_NAMES]
    if unknown or not names:
        what = f"unknown policy {', '.join(map(repr, unknown))}" if unknown else "no policy"
        raise ValueError(f"{what}; choose from {', '.join(POLICY_NAMES)} (comma-separated)")
    return tuple(n for n in POLICY_NAMES if n in names)


def job_intensity(q: FloatArray, green: FloatArray, carbon: FloatArray) -> FloatArray:
    """Intensity of the power a job of ``q`` kW alone would draw: ``c · max(q−G, 0)/q``."""
    return carbon * np.maximum(q - green, 0.0) / np.maximum(q, 1e-9)


class RunNow:
    """No shifting: start at the home site as soon as submitted."""

    name = "run-now"
    preemptive = False

    def step(self, world: World, state: SimState) -> list[tuple[int, int]]:
        return [(j, world.jobs[j].home) for j in state.waiting()]


class Nominal:
    """No shifting: start at the home site at the job's nominal start."""

    name = "nominal"
    preemptive = False

    def step(self, world: World, state: SimState) -> list[tuple[int, int]]:
        jobs = world.jobs
        return [(j, jobs[j].home) for j in state.waiting() if state.t >= jobs[j].nominal]


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


Baseline = RunNow | Nominal | Threshold | BestWindow | SuandianPolicy


def make_policy(name: str, world: World) -> Baseline:
    """The policy called ``name`` (every one but ``oracle``, which needs the others'
    results first), set up for ``world``: suandian with the scenario's planner settings
    over the simulator's (:mod:`suandian.sim.planner_settings`)."""
    makers: dict[str, Callable[[], Baseline]] = {
        "run-now": RunNow, "nominal": Nominal, "threshold": Threshold,
        "best-window": BestWindow,
        "suandian": lambda: SuandianPolicy(plan_params(world.scenario.planner)),
    }
    if name not in makers:
        raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICY_NAMES)}")
    return makers[name]()

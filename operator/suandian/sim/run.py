"""Run a scenario under every policy and collect the figures side by side."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from suandian.errors import PlanningError
from suandian.planner.oracle import OracleResult
from suandian.sim.engine import PolicyResult, SimPolicy, run_policy
from suandian.sim.oracle_policy import OraclePolicy
from suandian.sim.policies import POLICY_NAMES, make_policy
from suandian.sim.scenario import Scenario
from suandian.sim.workload import TraceJob, generate_trace, read_trace
from suandian.sim.world import World

__all__ = ["POLICY_NAMES", "SimReport", "build_world", "simulate"]

@dataclass
class SimReport:
    """Every policy's result on one scenario run."""

    scenario: Scenario
    world: World
    results: dict[str, PolicyResult]
    seconds: dict[str, float] = field(default_factory=dict)
    oracle_note: str = ""
    oracle_bound_g: float | None = None
    oracle: OracleResult | None = None

    def share_of_oracle(self, name: str) -> float | None:
        """``(E_run-now − E_policy) / (E_run-now − E_oracle)``; None without an oracle."""
        base, oracle = self.results.get("run-now"), self.results.get("oracle")
        if base is None or oracle is None:
            return None
        possible = base.emissions_g - oracle.emissions_g
        if possible <= 0:
            return None
        return (base.emissions_g - self.results[name].emissions_g) / possible

    def share_of_bound(self, name: str) -> float | None:
        """The same against the oracle's proven lower bound: a floor on the true share."""
        base = self.results.get("run-now")
        if base is None or self.oracle_bound_g is None:
            return None
        possible = base.emissions_g - self.oracle_bound_g
        if possible <= 0:
            return None
        return (base.emissions_g - self.results[name].emissions_g) / possible

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: scenario settings and a ``policies`` map."""
        sc = self.scenario
        out: dict[str, Any] = {
            "scenario": sc.name, "days": sc.days, "seed": self.world.seed,
            "forecastError": self.world.error, "slotSeconds": sc.slot.total_seconds(),
            "sites": list(sc.site_names), "jobs": len(self.world.jobs), "policies": {},
        }
        if self.oracle_note:
            out["oracleNote"] = self.oracle_note
        if self.oracle is not None:
            o = self.oracle
            out["oracle"] = {
                "emissions_g": round(o.emissions_g, 1), "bound_g": round(o.bound_g, 1),
                "optimal": o.optimal, "gap": round(o.gap, 4),
                "start_g": None if o.start_g is None else round(o.start_g, 1),
                "returned_start": o.returned_start, "seconds": round(o.seconds, 1),
                "variables": o.variables,
            }
        for name, r in self.results.items():
            share = self.share_of_oracle(name)
            bound_share = self.share_of_bound(name)
            out["policies"][name] = {
                "emissions_g": round(r.emissions_g, 1),
                "energy_kwh": round(r.energy_kwh, 1),
                "green_fraction": round(r.green_fraction, 4),
                "deadline_misses": r.deadline_misses,
                "mean_delay_s": round(r.mean_delay_s, 1),
                "p95_delay_s": round(r.p95_delay_s, 1),
                "jobs": r.jobs,
                "share_of_oracle_savings": None if share is None else round(share, 4),
                "share_of_bound_savings": None if bound_share is None else round(bound_share, 4),
                "import_overload_kwh": round(r.import_overload_kwh, 1),
                "seconds": round(self.seconds.get(name, 0.0), 3),
            }
        return out


def build_world(scenario: Scenario, *, days: int | None = None, seed: int | None = None,
                forecast_error: float | None = None) -> World:
    """The world of one run: the trace (read or generated) and the actuals."""
    sc = replace(scenario, days=days) if days is not None else scenario
    seed = sc.seed if seed is None else seed
    error = sc.forecast_error if forecast_error is None else forecast_error
    jobs: list[TraceJob]
    if sc.trace is not None:
        jobs = read_trace(sc.trace, sc.site_names)
        limit = sc.start.timestamp() + sc.days * 86400
        jobs = [j for j in jobs if j.submit.timestamp() < limit and j.submit >= sc.start]
    else:
        rng = np.random.default_rng([seed, 7])
        w = sc.workload
        jobs = generate_trace(start=sc.start, days=sc.days, jobs_per_day=w.jobs_per_day,
                              sites=sc.site_names, rng=rng, power_scale=w.power_scale,
                              residency_share=w.residency_share)
    return World(sc, jobs, forecast_error=error, seed=seed)


def simulate(
    scenario: Scenario, *, days: int | None = None, seed: int | None = None,
    forecast_error: float | None = None, policies: Sequence[str] = POLICY_NAMES,
    progress: Callable[[str, int, int], None] | None = None, oracle_time_limit_s: float = 20.0,
) -> SimReport:
    """Replay the scenario under each policy; ``progress(policy, slot, slots)``."""
    world = build_world(scenario, days=days, seed=seed, forecast_error=forecast_error)
    report = SimReport(world.scenario, world, {})
    for name in policies:
        t0 = time.perf_counter()
        policy: SimPolicy
        if name == "oracle":
            if progress is not None:
                progress(name, -1, world.slots)  # the solve comes first, then the replay
            try:
                starts = [(r.emissions_g, sched) for r in report.results.values()
                          if (sched := r.feasible_schedule()) is not None]
                policy = OraclePolicy(world, oracle_time_limit_s, starts)
            except PlanningError as exc:
                report.oracle_note = str(exc)
                continue
            r = policy.result
            report.oracle_bound_g = r.bound_g
            report.oracle = r
            report.oracle_note = (
                f"MILP {'optimal' if r.optimal else 'best found'} in {r.seconds:.1f}s, "
                f"{r.variables} variables, bound {r.bound_g / 1e6:.1f} t"
                + ("" if r.start_g is None else
                   "; returned its start unchanged: 'of oracle' is then no better than the "
                   "best policy, judge by 'vs bound'" if r.returned_start else
                   f"; improved its start by {(r.start_g - r.emissions_g) / 1e6:.1f} t"))
        else:
            policy = make_policy(name, world)

        def tick(t: int, name: str = name) -> None:
            if progress is not None:
                progress(name, t, world.slots)

        report.results[name] = run_policy(world, policy, tick)
        tick(world.slots - 1)
        report.seconds[name] = time.perf_counter() - t0
    return report

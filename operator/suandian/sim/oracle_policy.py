"""The ``oracle`` policy of the simulator: the MILP's schedule over the actuals, every job
known up front, replayed on the same clock as the other policies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np

from suandian.planner import JobDemand, PlanParams, SiteSupply, Snapshot, plan
from suandian.planner.oracle import OracleResult, solve_oracle
from suandian.sim.engine import SimState
from suandian.sim.world import World

__all__ = ["OraclePolicy"]


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

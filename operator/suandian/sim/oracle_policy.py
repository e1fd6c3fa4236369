"""The ``oracle`` policy of the simulator: the MILP's schedule over the actuals, every job
known up front, replayed on the same clock as the other policies.

With grid events the oracle answers them as the ``suandian`` policy is asked to: an
absorb's surplus is in the actuals, every shed is a ceiling on import in its window
(:func:`~suandian.sim.grid_events.shed_limits_kw`), and a tariff is a cost of
``w × price`` grams per kWh of grid power (``w``: ``PlanParams.tariff_weight_g_per_unit``),
so its optimum is one of ``carbon + w × cost``. When the sheds cannot all be met within
the deadlines the oracle solves without them and says so (:attr:`OraclePolicy.note`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np

from suandian.errors import PlanningError
from suandian.planner import JobDemand, PlanParams, SiteSupply, Snapshot, plan
from suandian.planner.model import FloatArray
from suandian.planner.oracle import OracleResult, solve_oracle
from suandian.planner.oracle_model import Instance, Schedule
from suandian.sim.engine import SimState
from suandian.sim.grid_events import shed_limits_kw
from suandian.sim.world import World

__all__ = ["OraclePolicy", "clairvoyant", "oracle_snapshot", "replay_emissions"]


class OraclePolicy:
    """Perfect knowledge: the MILP's schedule over the actuals, replayed."""

    name = "oracle"
    preemptive = True

    def __init__(self, world: World, limit: int | None = None,
                 starts: Sequence[tuple[str, float, Schedule]] = (), *,
                 baseline_load: FloatArray | None = None) -> None:
        self.start_name: str | None = None
        self.clairvoyant_g = 0.0  # what the planner emits planning this problem in one round
        self.note = ""  # why the oracle's problem is not the whole one (sheds dropped)
        try:
            self.result = self._solve(oracle_snapshot(world, baseline_load), limit, starts,
                                      world)
        except PlanningError:
            if not any(e.ask.shed for e in world.events):
                raise
            self.note = ("the sheds cannot all be met within the deadlines, so the oracle "
                         "solved without them")
            self.result = self._solve(oracle_snapshot(world, baseline_load, sheds=False),
                                      limit, starts, world)
        self.slots = {int(k): (s, frozenset(v)) for k, (s, v) in self.result.schedule.items()}

    def _solve(self, snap: Snapshot, limit: int | None,
               starts: Sequence[tuple[str, float, Schedule]], world: World) -> OracleResult:
        """Solve ``snap``, the actuals. MIP start: the cheapest feasible one of the
        clairvoyant planner's schedule and those the other policies ran (``(name,
        emissions, schedule)``), cheapest by the oracle's own objective; a better start
        only makes the oracle stronger, never a policy look better, and the oracle never
        ends worse than its start. ``limit``: the oracle's work limit
        (:func:`~suandian.planner.oracle.solve_oracle`)."""
        self.clairvoyant_g, mine = clairvoyant(world, snap)
        candidates = [("clairvoyant planner", mine), *((n, c) for n, _, c in starts)]
        inst = Instance.from_snapshot(snap)
        usable = sorted(((inst.emissions(inst.fixed_load + inst.load_of(c)), n, c)
                         for n, c in candidates if inst.feasible(c)), key=lambda c: c[0])
        self.start_name = usable[0][1] if usable else None
        return solve_oracle(snap, limit=limit, start=usable[0][2] if usable else None)

    def step(self, world: World, state: SimState) -> list[tuple[int, int]]:
        out = []
        for j in state.queued:
            site, slots = self.slots[j]
            if state.t in slots:
                out.append((j, site))
        return out


def oracle_snapshot(world: World, baseline_load: FloatArray | None = None, *,
                    sheds: bool = True,
                    tariff_weight: float = PlanParams.tariff_weight_g_per_unit) -> Snapshot:
    """The oracle's problem: the world's actual supply as fact, every job up front, the
    grid's sheds as import ceilings (``sheds``; a reduction's baseline is run-now's
    ``baseline_load``) and its tariff weighted at ``tariff_weight`` grams per unit."""
    n = world.slots
    limits = np.repeat(np.asarray(world.import_limit, dtype=float)[:, None], n, axis=1)
    if sheds and any(e.ask.shed for e in world.events):
        limits = np.minimum(limits, shed_limits_kw(world.events, world.own_green[:, :n],
                                                   baseline_load))
    tariff = world.tariff
    supplies = tuple(
        SiteSupply(name=name, green_p50_kw=world.green[s, :n],
                   green_p10_kw=world.green[s, :n], carbon_g_per_kwh=world.carbon[s, :n],
                   import_limit_kw=limits[s], pue=float(world.pue[s]),
                   capacity=np.repeat(world.capacity[s][:, None], n, axis=1),
                   tariff_g_per_kwh=None if tariff is None else tariff[s, :n] * tariff_weight)
        for s, name in enumerate(world.names))
    jobs = tuple(
        JobDemand(key=str(j.index), resources=j.resources, power_w=j.power_kw * 1000.0,
                  duration=world.slot * j.n, earliest_start=world.time_at(j.submit),
                  deadline=world.time_at(j.deadline), interruptible=j.interruptible,
                  allowed_sites=j.allowed)
        for j in world.jobs)
    return Snapshot(now=world.time_at(0), slot=world.slot, resources=world.resources,
                    sites=supplies, jobs=jobs)


PRICED = 1200
"""Subgradient steps of the clairvoyant planner when it plans from the round's prices
(:mod:`suandian.planner.prices`)."""


def clairvoyant(world: World, snap: Snapshot | None = None, *, priced: bool = False
                ) -> tuple[float, dict[str, tuple[int, tuple[int, ...]]]]:
    """The planner itself, clairvoyant: the oracle's problem (the actuals, every job known
    up front) planned in one round, and what that schedule emits, replayed. ``priced``:
    from the round's prices too (no reserve: with every job known no work arrives
    later). The oracle's MIP start is the plain one: from the priced one, cheaper on
    ``east-data-west-computing``, its search ended 6 t worse (253.1 against 247.1 t)."""
    warm = plan(snap or oracle_snapshot(world), PlanParams(
        safety_margin=timedelta(0), risk_aversion=0.0, delay_penalty_g_per_kwh_h=0.0,
        delay_penalty_share_h=0.0, price_iterations=PRICED if priced else 0,
        price_reserve_share=0.0))
    mine = {d.key: (d.site_index, d.slots) for d in warm.decisions
            if d.site_index is not None and d.slots}
    return replay_emissions(world, mine), mine


def replay_emissions(world: World, schedule: dict[str, tuple[int, tuple[int, ...]]]) -> float:
    """Actual emissions of a schedule (green first at each site and slot)."""
    load = np.zeros_like(world.green)
    for key, (site, slots) in schedule.items():
        job = world.jobs[int(key)]
        load[site, list(slots)] += job.power_kw * world.pue[site]
    grid = load - np.minimum(load, world.green)
    return float((grid * world.carbon).sum() * world.h)

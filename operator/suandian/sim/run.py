"""Run a scenario under every policy and collect the figures side by side."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from suandian.errors import PlanningError
from suandian.planner.model import PlanParams
from suandian.planner.oracle import OracleResult
from suandian.sim.engine import PolicyResult, SimPolicy, run_policy
from suandian.sim.grid_events import EventFigures, figures
from suandian.sim.oracle_policy import OraclePolicy
from suandian.sim.policies import POLICY_NAMES, make_policy
from suandian.sim.scenario import Scenario
from suandian.sim.workload import TraceJob, generate_trace, read_trace
from suandian.sim.world import World

__all__ = ["POLICY_NAMES", "SimReport", "build_world", "format_mass", "oracle_words",
           "simulate"]

@dataclass
class SimReport:
    """Every policy's result on one scenario run.

    Shares of the saving: a policy's saving against the :attr:`baseline` (run-now, or
    nominal when jobs have nominal starts), over the largest saving possible.
    ``share_of_oracle`` takes the oracle's schedule as the largest (an upper estimate of
    the share of the optimum, exact when the oracle is proven optimal),
    ``share_of_bound`` the oracle's proven lower bound (a lower estimate). Both are None
    when they mean nothing; :meth:`share_note` says why. A policy that missed deadlines
    or drew beyond an import limit gets no share (it broke a promise the oracle keeps):
    the baseline too, though it stays the reference, the emissions of shifting nothing.

    With a tariff (Price events) the shares are of :meth:`score_g`, carbon plus the
    weighted cost, the objective the oracle and the ``suandian`` policy weigh alike.
    The oracle meets every shed; a policy that does not can emit less than it.
    """

    scenario: Scenario
    world: World
    results: dict[str, PolicyResult]
    seconds: dict[str, float] = field(default_factory=dict)
    oracle_note: str = ""
    oracle_bound_g: float | None = None
    oracle: OracleResult | None = None
    oracle_start: str | None = None  # the policy whose schedule the oracle started from
    clairvoyant_g: float | None = None  # the planner in one round, every job known
    grid: dict[str, EventFigures] = field(default_factory=dict)
    """What each policy delivered against the run's grid events (none: no events)."""
    tariff_weight_g: float = PlanParams.tariff_weight_g_per_unit
    """Grams a unit of currency weighs against carbon in :meth:`score_g`."""

    @property
    def priced(self) -> bool:
        """Whether the run has a tariff (then shares are of :meth:`score_g`)."""
        return self.world.tariff is not None

    def score_g(self, name: str) -> float:
        """What the shares count: the policy's emissions, plus its grid cost weighted at
        :attr:`tariff_weight_g` grams per unit when the run has a tariff."""
        r, g = self.results[name], self.grid.get(name)
        cost = 0.0 if g is None or g.cost is None else g.cost
        return r.emissions_g + self.tariff_weight_g * cost

    def infeasible(self, name: str) -> str | None:
        """Why a policy's schedule is out of the ranking (it broke a promise the oracle
        keeps), or None: ``"misses"`` (deadlines) or ``"over import"``."""
        r = self.results[name]
        if r.deadline_misses:
            return "misses"
        if r.import_overload_kwh > 1e-6:
            return "over import"
        return None

    @property
    def baseline(self) -> str:
        """The policy savings are counted from: ``nominal`` when jobs have nominal starts
        (and it ran: what runs without carbon awareness is the job at its usual time),
        else ``run-now`` (start on submission)."""
        if self.world.has_nominal_starts and "nominal" in self.results:
            return "nominal"
        return "run-now"

    def _possible(self, best_g: float | None) -> tuple[float, float] | str:
        """(the baseline's emissions, the largest possible saving), or why there is none."""
        base = self.results.get(self.baseline)
        if base is None:
            return f"no {self.baseline}"
        if best_g is None:
            return "no oracle" if self.oracle is None else "no bound"
        base_g = self.score_g(self.baseline)
        possible = base_g - best_g
        if possible <= 1e-9 * max(1.0, base_g):
            return "nothing to save"
        return base_g, possible

    def _share(self, name: str, best_g: float | None) -> float | str:
        why = self.infeasible(name)
        if why is not None:
            return why
        got = self._possible(best_g)
        if isinstance(got, str):
            return got
        base, possible = got
        return (base - self.score_g(name)) / possible

    def share_of_oracle(self, name: str) -> float | None:
        """``(E_base − E_policy) / (E_base − E_oracle)``; None when n/a."""
        value = self._share(name, self.score_g("oracle") if "oracle" in self.results
                            else None)
        return value if isinstance(value, float) else None

    def share_of_bound(self, name: str) -> float | None:
        """The same against the oracle's proven lower bound: a floor on the true share."""
        value = self._share(name, self.oracle_bound_g)
        return value if isinstance(value, float) else None

    def share_note(self, name: str, against: str = "oracle") -> str | None:
        """Why the share (``against`` ``"oracle"`` or ``"bound"``) is n/a, else None."""
        best = (self.score_g("oracle") if "oracle" in self.results else None) if (
            against == "oracle") else self.oracle_bound_g
        value = self._share(name, best)
        return value if isinstance(value, str) else None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: scenario settings, the oracle's figures and a
        ``policies`` map (grams, kWh, shares as fractions; None where n/a, with the
        reason in ``share_note``)."""
        sc = self.scenario
        out: dict[str, Any] = {
            "scenario": sc.name, "days": sc.days, "seed": self.world.seed,
            "forecastError": self.world.error, "slotSeconds": sc.slot.total_seconds(),
            "sites": list(sc.site_names), "jobs": len(self.world.jobs),
            "errorModel": sc.error_model, "planner": dict(sc.planner),
            "baseline": self.baseline, "policies": {},
        }
        if self.oracle_note:
            out["oracleNote"] = self.oracle_note
        if self.oracle is not None:
            o = self.oracle
            out["oracle"] = {
                "emissions_g": round(o.emissions_g, 1), "bound_g": round(o.bound_g, 1),
                "lp_bound_g": round(o.lp_bound_g, 1),
                "dual_bound_g": None if o.dual_bound_g is None else round(o.dual_bound_g, 1),
                "optimal": o.optimal, "gap": round(o.gap, 5),
                "start_g": None if o.start_g is None else round(o.start_g, 1),
                "start_policy": self.oracle_start, "returned_start": o.returned_start,
                "limit": o.limit, "neighbourhoods": o.neighbourhoods, "blocks": o.blocks,
                "seconds": round(o.seconds, 1), "variables": o.variables,
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
                "feasible": self.infeasible(name) is None,
                "share_of_oracle_savings": None if share is None else round(share, 4),
                "share_of_bound_savings": None if bound_share is None else round(bound_share, 4),
                "share_note": self.share_note(name) or self.share_note(name, "bound"),
                "import_overload_kwh": round(r.import_overload_kwh, 1),
                "transfer": {"jobs": r.transfer_jobs, "gb": round(r.transfer_gb, 1),
                             "kwh": round(r.transfer_kwh, 1), "g": round(r.transfer_g, 1)},
                "seconds": round(self.seconds.get(name, 0.0), 3),
                **self._grid_json(name),
            }
        return out

    def _grid_json(self, name: str) -> dict[str, Any]:
        """``cost`` (the grid power's under the run's tariffs; None without a Price
        event), ``shed_kwh``, ``absorbed_kwh``, ``shed_compliance`` (None: no shed asked,
        or no events in the run) of one policy."""
        g = self.grid.get(name)
        compliance = None if g is None else g.shed_compliance
        cost = None if g is None or g.cost is None else round(g.cost, 2)
        return {"cost": cost, "shed_kwh": 0.0 if g is None else round(g.shed_kwh, 1),
                "absorbed_kwh": 0.0 if g is None else round(g.absorbed_kwh, 1),
                "shed_compliance": None if compliance is None else round(compliance, 4)}


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
        # a job released before the start (a window opening the night before) is still
        # in the run if it can finish after the start: the world releases it at slot 0
        jobs = [j for j in jobs if j.submit.timestamp() < limit
                and j.deadline - j.duration > sc.start]
    else:
        rng = np.random.default_rng([seed, 7])
        w = sc.workload
        jobs = generate_trace(start=sc.start, days=sc.days, jobs_per_day=w.jobs_per_day,
                              sites=sc.site_names, rng=rng, power_scale=w.power_scale,
                              residency_share=w.residency_share, window=w.window,
                              nominal_hour=w.nominal_hour, data_share=w.data_share,
                              data_gb=w.data_gb)
    return World(sc, jobs, forecast_error=error, seed=seed)


def simulate(
    scenario: Scenario, *, days: int | None = None, seed: int | None = None,
    forecast_error: float | None = None, policies: Sequence[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None, oracle_limit: int | None = None,
) -> SimReport:
    """Replay the scenario under each policy; ``progress(policy, slot, slots)``.

    ``oracle_limit`` is the oracle's work limit, in neighbourhoods of its search per 100
    jobs (None: :data:`~suandian.planner.oracle.DEFAULT_LIMIT`, 8; docs/oracle.md). It
    counts work, not time, so the oracle's figures are the same on any machine; the
    oracle runs after the other policies, from the best of their feasible schedules.
    """
    world = build_world(scenario, days=days, seed=seed, forecast_error=forecast_error)
    if policies is None:  # every one; nominal only when it is not run-now again
        policies = [p for p in POLICY_NAMES if p != "nominal" or world.has_nominal_starts]
    report = SimReport(world.scenario, world, {})
    run_now: list[PolicyResult] = []

    def baseline() -> PolicyResult:
        """Run-now's result, the grid events' baseline (run once more if not asked for)."""
        if "run-now" in report.results:
            return report.results["run-now"]
        if not run_now:
            run_now.append(run_policy(world, make_policy("run-now", world)))
        return run_now[0]

    for name in policies:
        t0 = time.perf_counter()
        policy: SimPolicy
        if name == "oracle" and (moving := sum(1 for j in world.jobs if j.data_wait)):
            report.oracle_note = (
                f"not run: {moving} jobs read data and the oracle does not model its "
                "transfer (time or energy), so its optimum would not be one of this "
                "world's schedules; shares are against the best policy (docs/simulator.md)")
            continue
        if name == "oracle":
            if progress is not None:
                progress(name, -1, world.slots)  # the solve comes first, then the replay
            try:
                starts = [(n, r.emissions_g, sched) for n, r in report.results.items()
                          if (sched := r.feasible_schedule()) is not None]
                oracle = OraclePolicy(world, oracle_limit, starts, baseline_load=(
                    baseline().load_kw if any(e.ask.shed for e in world.events) else None))
            except PlanningError as exc:
                report.oracle_note = str(exc)
                continue
            policy = oracle
            report.oracle_bound_g = oracle.result.bound_g
            report.oracle = oracle.result
            report.oracle_start = oracle.start_name
            report.clairvoyant_g = oracle.clairvoyant_g
            report.oracle_note = "; ".join(filter(None, (
                oracle_words(oracle.result, oracle.start_name), oracle.note)))
        else:
            policy = make_policy(name, world)

        def tick(t: int, name: str = name) -> None:
            if progress is not None:
                progress(name, t, world.slots)

        report.results[name] = run_policy(world, policy, tick)
        tick(world.slots - 1)
        report.seconds[name] = time.perf_counter() - t0
    if world.events and report.results:
        # every policy measured against one baseline: run-now's import (module doc of
        # suandian.sim.grid_events)
        base = baseline()
        for name, r in report.results.items():
            report.grid[name] = figures(world.events, world.h, r.load_kw, world.own_green,
                                        base.load_kw, world.tariff)
    return report


def oracle_words(r: OracleResult, start: str | None) -> str:
    """The oracle's outcome in a sentence: how good its schedule is proven to be."""
    how = ((f"{r.blocks} blocks of jobs (the bound is their sum), up to {r.variables:,} "
            "variables each" if r.blocks > 1 else f"{r.variables:,} variables")
           + f", work limit {r.limit} ({r.neighbourhoods} neighbourhood"
           + ("" if r.neighbourhoods == 1 else "s") + f" searched), {r.seconds:.1f} s")
    if r.optimal:
        head = (f"proven optimal: {format_mass(r.emissions_g)}, "
                + (f"within {_pct(r.gap)} of" if r.gap >= 5e-5 else "equal to")
                + f" the lower bound {format_mass(r.bound_g)}")
    else:
        head = (f"best schedule found {format_mass(r.emissions_g)}; the optimum is at least "
                f"{format_mass(r.bound_g)} (gap {_pct(r.gap)})")
    if r.start_g is None:
        start_words = ""
    elif r.returned_start:
        start_words = (f"; it is its start, {start or 'a policy'}'s schedule" if r.optimal
                       else f"; nothing better than its start ({start or 'a policy'}'s "
                       "schedule) was found")
    else:
        start_words = (f"; {format_mass(r.start_g - r.emissions_g)} better than its start "
                       f"({start or 'a policy'}'s schedule)")
    return f"{head}{start_words}; {how}"


def _pct(share: float) -> str:
    """A small share with the digits it needs: ``2.5%``, ``0.03%``."""
    return f"{share:.1%}" if share >= 0.001 or share == 0 else f"{share:.2%}"


def format_mass(grams: float) -> str:
    """Grams of CO2 in the unit that fits, four significant digits: ``812 g``,
    ``17.30 kg``, ``247.3 t``, ``3,949 t`` (a 17 kg difference never prints as 0 t)."""
    g = abs(grams)
    sign = "-" if grams < 0 else ""
    unit, value = ("t", g / 1e6) if g >= 1e6 else ("kg", g / 1e3) if g >= 1e3 else ("g", g)
    digits = max(0, 3 - math.floor(math.log10(value))) if value > 0 else 0
    if unit == "g":
        digits = min(digits, 1)
    return f"{sign}{value:,.{digits}f} {unit}"

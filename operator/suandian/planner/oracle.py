"""The offline oracle: the same problem with perfect knowledge, solved as a MILP (HiGHS).

It defines the "physical limit" of savings: given the true supply (the snapshot's P50
arrays taken as fact) and every job up front, the least emissions any schedule can reach
under the same deadlines, capacities, import limits and residency. Formulation::

    x[j,s,k] ∈ {0,1}   job j starts at slot k on site s          (not interruptible)
    z[j,s]   ∈ {0,1}   job j runs on site s;  y[j,s,t] ∈ {0,1}   it runs in slot t
    g[s,t]   ∈ [0, G[s,t]]   green power used at site s in slot t
    L[s,t]   = F[s,t] + Σ q[j,s] · (x covering t  +  y[j,s,t])    facility load, kW

    minimise   Σ_{s,t} c[s,t] · h · (L[s,t] - g[s,t])
    subject to Σ_{s,k} x[j,s,k] = 1,  Σ_s z[j,s] = 1,  Σ_t y[j,s,t] = n_j · z[j,s]
               g[s,t] ≤ min(F, G) + Σ_j min(q[j,s], G[s,t]) · running[j,s,t]   (*)
               L - g ≤ import limit,  Σ req_r · (running in t) ≤ C[s,r,t]

``F`` is the load of running jobs (not moved). ``c`` is grams per kWh of grid power:
the carbon intensity, plus ``w × price`` where a site has a tariff
(``SiteSupply.tariff_g_per_kwh``, the same cost term the planner weighs; then the
oracle's grams are carbon-equivalent, its bound too). A shed is in the per-slot
``import limit``: the caller puts the grid's ceilings there. (*) is the tightened form
of ``g ≤ L``.
It holds for every integer schedule (the green a slot can use is ``min(G, L)``, and
either ``F`` or one running job alone draws at least ``G`` or the right-hand side is
``L``), and it implies ``g ≤ L``; but a job spread fractionally over several windows can
no longer soak up green it could not use whole: with ``q = 2G``, half a job in each of
two windows gets ``G/2`` of green in each, as the whole job would in one. It raises the
LP relaxation from 69 to 203 tCO2 on the contention scenario's week
(east-data-west-computing: 131 to 241 t), and with it the proven bound every share of
savings is judged against. ``tighten=False`` gives the plain ``g ≤ L``.

Starts range over ``[earliest, deadline - n]`` (no safety margin: the limit, not a plan)
and must end within the horizon.

**Deterministic.** No wall clock anywhere in the result: the search stops at work limits
(:class:`~suandian.planner.oracle_search.Work`: branch-and-bound nodes, a number of
neighbourhoods), HiGHS runs on one thread with a fixed seed. The same snapshot and start
give the same schedule, emissions and bound on an idle or a loaded machine.

**Bound.** ``bound_g`` is ``max(LP relaxation, HiGHS's dual bound, 0)``: each is a
valid lower bound on the optimum, and emissions are never negative. ``optimal`` means
the schedule is proven within :data:`OPTIMAL_GAP` (0.5%) of it.

**Long horizons** (more than :data:`MONOLITHIC_COLUMNS` columns) are solved by blocks of
jobs (:mod:`suandian.planner.oracle_blocks`), with a bound that stays valid: the sum of
the blocks' LP values, each block alone with the full supply.

See docs/oracle.md for the work limit's unit and what the figures mean.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from datetime import timedelta

from suandian.errors import PlanningError
from suandian.planner.model import Snapshot
from suandian.planner.oracle_blocks import partition, solve_by_blocks
from suandian.planner.oracle_model import Instance, Schedule
from suandian.planner.oracle_search import Work

__all__ = ["DEFAULT_LIMIT", "MONOLITHIC_COLUMNS", "OPTIMAL_GAP", "OracleResult",
           "solve_oracle"]

DEFAULT_LIMIT = 8
"""The work limit when none is given: neighbourhoods per 100 jobs (see ``limit``)."""
OPTIMAL_GAP = 0.005
"""A schedule proven within this share of the bound is called optimal."""
MONOLITHIC_COLUMNS = 60_000
"""Above this many MILP columns the oracle decomposes into blocks."""
BLOCK_COLUMNS = 30_000
"""The most columns of one block of a decomposition (a week of the built-in scenario)."""


@dataclass(frozen=True)
class OracleResult:
    """The oracle's schedule: ``schedule[key] = (site index, slot indices)``.

    ``emissions_g`` is what the schedule emits (exact, green first), ``bound_g`` a proven
    lower bound on every schedule's emissions (never below 0, never above
    ``emissions_g``); ``lp_bound_g`` and ``dual_bound_g`` (None when no full MILP ran)
    are its parts. ``start_g``: what the MIP start handed in emits, if one was used.
    ``seconds`` is for information only: nothing in the result depends on it.
    """

    schedule: Schedule
    emissions_g: float
    bound_g: float
    seconds: float
    variables: int
    start_g: float | None = None
    lp_bound_g: float = 0.0
    dual_bound_g: float | None = None
    improved: bool = True
    blocks: int = 1
    limit: int = DEFAULT_LIMIT
    neighbourhoods: int = 0

    @property
    def gap(self) -> float:
        """``(emissions − bound) / emissions``: how far from optimal the schedule may be
        (0 when it emits nothing)."""
        if self.emissions_g <= 0:
            return 0.0
        return max(0.0, (self.emissions_g - self.bound_g) / self.emissions_g)

    @property
    def optimal(self) -> bool:
        """The schedule is proven within :data:`OPTIMAL_GAP` of the optimum."""
        return self.gap <= OPTIMAL_GAP

    @property
    def returned_start(self) -> bool:
        """True when the search found nothing better than the MIP start: the schedule is
        then only as good as that start, and only ``bound_g`` says how far from optimal
        it may be."""
        return self.start_g is not None and not self.improved


def solve_oracle(
    snap: Snapshot, *, limit: int | None = None,
    start: Schedule | None = None, tighten: bool = True, relax: bool = False,
    max_variables: int = 400_000, mip_rel_gap: float = 1e-4,
    decompose: bool | None = None, block_columns: int = BLOCK_COLUMNS,
    work: Work | None = None, time_limit_s: float | None = None,
) -> OracleResult:
    """The least-emissions schedule the work limit finds, and a proven bound.

    ``limit``: the search effort, in neighbourhoods per 100 jobs (default
    :data:`DEFAULT_LIMIT`; 0 keeps the start, or the first MILP's schedule). Work, not
    time: the result does not depend on the machine. ``start`` is an optional feasible
    schedule (``key -> (site, slots)``) the search begins from and can only improve on;
    one that is not feasible is ignored (``start_g`` then None). ``tighten`` uses the
    tightened green row (*) (a stronger relaxation, the same integer optimum). ``relax``
    solves the LP relaxation only: its value is ``bound_g``, with no schedule.
    ``decompose``: by blocks (None: when over :data:`MONOLITHIC_COLUMNS` columns).
    ``max_variables`` caps one block's model. ``work`` overrides the search's other
    counts (:class:`~suandian.planner.oracle_search.Work`). ``time_limit_s`` is
    deprecated and ignored (the oracle has no time limit).

    Raises :class:`PlanningError` if a job cannot fit its window, a block is too large,
    or no feasible schedule exists.
    """
    if time_limit_s is not None:
        warnings.warn("solve_oracle(time_limit_s=...) is ignored: the oracle stops at a "
                      "work limit (limit=...), not a time limit", DeprecationWarning,
                      stacklevel=2)
    t0 = time.perf_counter()  # for the report only
    limit = DEFAULT_LIMIT if limit is None else limit
    if limit < 0:
        raise PlanningError(f"oracle: the work limit must not be negative, got {limit}")
    inst = Instance.from_snapshot(snap)
    if not inst.jobs:
        fixed = inst.emissions(inst.fixed_load)
        return OracleResult(schedule={}, emissions_g=fixed, bound_g=fixed,
                            seconds=time.perf_counter() - t0, variables=0, lp_bound_g=fixed,
                            limit=limit)
    columns = sum(inst.columns(j) for j in range(len(inst.jobs)))
    split = columns > MONOLITHIC_COLUMNS if decompose is None else decompose
    blocks = partition(inst, block_columns) if split else [list(range(len(inst.jobs)))]
    if start is None and not relax and columns > 5_000:
        start = _planner_start(snap, inst)
        given = False
    else:
        given = start is not None
    if start is not None and not inst.feasible(start):
        start, given = None, False
    out = solve_by_blocks(inst, blocks, replace(work or Work(), mip_rel_gap=mip_rel_gap),
                          start, tighten=tighten, max_variables=max_variables,
                          rounds_per_job=limit / 100.0, relax=relax)
    return OracleResult(
        schedule=out.schedule, emissions_g=out.emissions_g, bound_g=out.bound_g,
        seconds=time.perf_counter() - t0, variables=out.variables,
        start_g=out.start_g if given else None, lp_bound_g=out.lp_g,
        dual_bound_g=out.dual_g if out.dual_g > -float("inf") else None,
        improved=out.improved or not given, blocks=out.blocks, limit=limit,
        neighbourhoods=out.rounds)


def _planner_start(snap: Snapshot, inst: Instance) -> Schedule | None:
    """The clairvoyant planner's schedule (the snapshot's supply as fact), if it places
    every job feasibly: a start for large instances, whose whole MILP is too costly to
    find one."""
    from suandian.planner.core import plan
    from suandian.planner.model import PlanParams

    result = plan(snap, PlanParams(safety_margin=timedelta(0), risk_aversion=0.0,
                                   delay_penalty_g_per_kwh_h=0.0))
    schedule = {d.key: (d.site_index, d.slots) for d in result.decisions
                if d.site_index is not None and d.slots}
    return schedule if inst.feasible(schedule) else None

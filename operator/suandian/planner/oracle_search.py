"""Solving one :class:`~suandian.planner.oracle_model.BlockModel` within a work limit.

Deterministic by construction: HiGHS runs single-threaded with a fixed random seed and
no time limit, every MILP stops at a node limit, and the neighbourhood search runs a
fixed number of rounds chosen by a generator seeded with 0. The same model gives the
same schedule, objective and bound on an idle or a loaded machine; only the seconds it
takes change.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np

from suandian.errors import PlanningError
from suandian.planner.model import FloatArray
from suandian.planner.oracle_model import BlockModel

__all__ = ["BlockResult", "Work", "lp_bound", "solve_block"]

OPTIONS: dict[str, bool | int | float | str] = {
    "output_flag": False,
    "threads": 1,
    "random_seed": 0,
    "time_limit": float("inf"),  # never a wall clock: the work limits below stop a solve
}
"""HiGHS options of every oracle solve (``mip_max_nodes``, ``mip_rel_gap`` per solve)."""


@dataclass(frozen=True)
class Work:
    """How much search a block gets; all counts, none of them time.

    ``nodes``: branch-and-bound nodes of each full MILP solve (HiGHS ``mip_max_nodes``;
    the root, with its cuts and heuristics, always runs), at most ``node_work`` divided
    by the block's binary columns: a node's LP grows with the model, and 5,000 nodes of
    a 2,800-column block took over 4 minutes (``contention --days 2``) without moving
    the bound off the LP's. ``rounds``: neighbourhoods of
    the large-neighbourhood search, each a sub-MILP of at most ``free_jobs`` jobs with the
    others fixed, stopped after ``round_nodes`` nodes. ``target_gap``: no search once the
    schedule is proven within it.
    """

    nodes: int = 5_000
    node_work: int = 1_000_000
    rounds: int = 20
    free_jobs: int = 30
    round_nodes: int = 50
    target_gap: float = 0.005
    mip_rel_gap: float = 1e-4


@dataclass(frozen=True)
class BlockResult:
    """A block's schedule (``x``, the MILP point), its exact emissions and bounds."""

    x: FloatArray
    emissions_g: float
    rounds: int  # neighbourhoods searched
    lp_g: float  # the LP relaxation's value (a valid lower bound)
    dual_g: float  # HiGHS's best proven dual bound over the full solves (-inf: none)
    start_g: float | None  # what the start handed in emits, if it was a valid point
    improved: bool  # whether the search found anything better than the start

    @property
    def bound_g(self) -> float:
        """The best valid lower bound: LP relaxation, dual bound, and 0."""
        return max(self.lp_g, self.dual_g, 0.0)


def _highs(model: BlockModel, *, integral: bool, nodes: int = 0, gap: float = 1e-4
           ) -> highspy.Highs:
    highs = highspy.Highs()  # type: ignore[no-untyped-call]
    for name, value in OPTIONS.items():
        highs.setOptionValue(name, value)
    if integral:
        highs.setOptionValue("mip_max_nodes", int(nodes))
        highs.setOptionValue("mip_rel_gap", float(gap))
        model.lp.integrality_ = [highspy.HighsVarType.kInteger] * model.nx + [
            highspy.HighsVarType.kContinuous] * model.ng
    else:
        model.lp.integrality_ = []
    highs.passModel(model.lp)
    return highs


def lp_bound(model: BlockModel) -> float:
    """The LP relaxation's optimum: a lower bound on the block's emissions.

    Raises :class:`PlanningError` when the relaxation is infeasible (then so is every
    schedule) or not solved to optimality."""
    highs = _highs(model, integral=False)
    highs.run()
    status = highs.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        raise PlanningError("oracle: no feasible schedule (the jobs do not fit the "
                            "capacity and import limits within their windows)")
    if status != highspy.HighsModelStatus.kOptimal:
        raise PlanningError("oracle: the LP relaxation was not solved to optimality "
                            f"({highs.modelStatusToString(status)})")
    return float(highs.getInfo().objective_function_value)


def _set_start(highs: highspy.Highs, x: FloatArray) -> None:
    sol = highspy.HighsSolution()
    sol.col_value = list(x)
    sol.value_valid = True
    highs.setSolution(sol)


def _run(highs: highspy.Highs, model: BlockModel, start: FloatArray | None,
         ) -> tuple[FloatArray | None, float]:
    """One MILP run; its schedule (binaries rounded, green at its most) or None, and its
    dual bound (-inf when it has none)."""
    if start is not None:
        _set_start(highs, start)
    highs.run()
    info = highs.getInfo()
    status = highs.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        raise PlanningError("oracle: no feasible schedule (the jobs do not fit the "
                            "capacity and import limits within their windows)")
    dual = float(info.mip_dual_bound)
    x = np.asarray(highs.getSolution().col_value)
    if info.primal_solution_status != 2 or x.size != model.nx + model.ng:
        return None, dual if np.isfinite(dual) else -np.inf
    return _clean(model, x), dual if np.isfinite(dual) else -np.inf


def _clean(model: BlockModel, x: FloatArray) -> FloatArray:
    """``x`` with its binaries rounded and the green each cell can use."""
    out = x.copy()
    out[: model.nx] = np.round(out[: model.nx])
    out[model.nx:] = np.minimum(model.load(out).ravel(), model.green.ravel())
    return out


def solve_block(model: BlockModel, work: Work, start: FloatArray | None = None, *,
                lp_g: float, full: bool) -> BlockResult:
    """The best schedule the work limit finds for the block, and its bounds.

    ``full``: run the whole MILP first (from ``start`` when given), for at most
    ``work.nodes`` nodes; the caller asks for it on small blocks, where it often proves
    optimality, and when there is no start (HiGHS must then find a schedule). Then,
    unless the schedule is proven within ``work.target_gap`` of ``max(lp_g, dual, 0)``,
    ``work.rounds`` neighbourhoods from the incumbent, and, if the whole MILP ran, once
    more from the improved incumbent for a better dual bound. Raises
    :class:`PlanningError` when the block has no feasible schedule or none was found.
    """
    start_g = model.emissions(start) if start is not None else None
    best, dual = start, -np.inf
    nodes = min(work.nodes, max(100, work.node_work // max(1, model.nx)))
    highs = _highs(model, integral=True, nodes=nodes, gap=work.mip_rel_gap)
    if full or start is None:
        x, dual = _run(highs, model, start)
        best = _better(model, x, start)
    if best is None:
        raise PlanningError("oracle: HiGHS found no schedule within its node limit "
                            f"({nodes} nodes) and no feasible start was given")
    value = model.emissions(best)

    def gap() -> float:
        bound = max(lp_g, dual, 0.0)
        return (value - bound) / value if value > 0 else 0.0

    rounds = 0
    if gap() > work.target_gap and work.rounds > 0 and (
            len(model.jobs) > work.free_jobs or not full):
        best, rounds = _neighbourhoods(highs, model, best, work, nodes), work.rounds
        value = model.emissions(best)
        if full and gap() > work.target_gap:
            found, later = _run(highs, model, best)
            dual = max(dual, later)
            kept = _better(model, found, best)  # never None: best is a schedule
            best = best if kept is None else kept
            value = model.emissions(best)
    improved = start_g is None or value < start_g - 1e-9 * max(1.0, start_g)
    return BlockResult(x=best, emissions_g=value, rounds=rounds, lp_g=lp_g, dual_g=dual,
                       start_g=start_g, improved=improved)


def _better(model: BlockModel, x: FloatArray | None, y: FloatArray | None
            ) -> FloatArray | None:
    """The one of two points with the lower exact emissions (either may be None)."""
    if x is None or y is None:
        return x if y is None else y
    return x if model.emissions(x) < model.emissions(y) else y


def _neighbourhoods(highs: highspy.Highs, model: BlockModel, x: FloatArray, work: Work,
                    nodes: int) -> FloatArray:
    """``work.rounds`` rounds of large-neighbourhood search from the incumbent ``x``
    (then the full solve's node limit, ``nodes``, back in place).

    Each round frees the jobs that run, or could run, near a random slot (at most
    ``free_jobs``, drawn at random when more), fixes every other job to its incumbent
    choice (upper bound 0 on its other columns) and solves that sub-MILP from the
    incumbent for at most ``round_nodes`` nodes; a better schedule becomes the
    incumbent. Every schedule it returns is feasible for the block (the bounds only
    remove choices). The stretches come from a generator seeded with 0.
    """
    rng = np.random.default_rng(0)
    nx = model.nx
    jobs = model.col_job
    n_jobs = len(model.jobs)
    every = np.arange(nx, dtype=np.int32)
    best = model.emissions(x)
    width = max(4, model.width // 8)
    first = np.array([model.inst.jobs[j].first for j in model.jobs])
    end = np.array([model.inst.jobs[j].end for j in model.jobs])
    highs.setOptionValue("mip_max_nodes", int(work.round_nodes))
    for _ in range(work.rounds):
        lo, hi = model.span(x)
        centre = model.t0 + int(rng.integers(0, model.width))
        # the jobs running near the centre, and those that could move there
        near = np.flatnonzero(((hi >= centre - width) & (lo <= centre + width))
                              | ((end > centre - width) & (first <= centre + width)))
        if near.size > work.free_jobs:
            near = rng.choice(near, size=work.free_jobs, replace=False)
        free = np.zeros(n_jobs, dtype=bool)
        free[near] = True
        upper = np.where(free[jobs] | (x[:nx] > 0.5), 1.0, 0.0)
        highs.changeColsBounds(nx, every, np.zeros(nx), upper)
        found, _ = _run(highs, model, x)
        if found is not None:
            value = model.emissions(found)
            if value < best - 1e-9 * max(1.0, best):
                x, best = found, value
    highs.changeColsBounds(nx, every, np.zeros(nx), np.ones(nx))
    highs.setOptionValue("mip_max_nodes", int(nodes))
    return x

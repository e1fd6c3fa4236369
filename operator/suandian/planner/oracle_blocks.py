"""Long horizons: the oracle by blocks of jobs, with a lower bound that stays valid.

Jobs are cut into blocks by earliest start, each of at most ``block_columns`` MILP
columns. Two passes:

- **Bound.** Each block alone, its jobs over their whole windows with the *full* supply,
  import limit and capacity of every slot it touches (no other job there), relaxed to an
  LP. A slot's emissions ``c·max(L − G, 0)`` are convex in its load and 0 at 0, hence
  superadditive: ``f(a + b) ≥ f(a) + f(b)`` for loads ``a, b ≥ 0``. Any schedule splits
  into the blocks' loads and a block's part of it is feasible for that block alone (its
  limits are the full ones), so its emissions are at least the running jobs' own plus the
  sum over blocks of each block's optimum, which each LP value bounds from below.
- **Schedule.** Block by block in time order, the block's jobs are re-solved with every
  other job held where the current schedule has it (the blocks before at their new
  places, those after at the start's, when a start is given; with none, only the blocks
  before: a rolling horizon, where a block the ones before left no room is solved again
  together with the one before it). Each step keeps the whole schedule feasible and
  never raises its emissions, so the result is never worse than the start.

Time and memory grow with the number of blocks, not faster: each model spans only the
slots its jobs can touch, and one is alive at a time.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from suandian.errors import PlanningError
from suandian.planner.model import FloatArray
from suandian.planner.oracle_model import BlockModel, Instance, Schedule
from suandian.planner.oracle_search import BlockResult, Work, lp_bound, solve_block

__all__ = ["Blocks", "partition", "solve_by_blocks"]

FULL_MILP_COLUMNS = 5_000
"""Blocks this small (in columns) get the whole MILP first (its node limit shrinking with
the block, :class:`~suandian.planner.oracle_search.Work`): its root is cheap there and
often proves optimality. Larger ones go straight to the neighbourhood search from the
start: HiGHS's root cut loop on 25,000 columns took over 100 s (east-data-west-computing)
and raised the bound by 0.03%, and on ``contention``'s blocks of 5,000 to 10,000 columns
it tripled the oracle's time (93 to 266 s) for a bound 7% higher."""

LINEAR_MILP_COLUMNS = 30_000
"""Blocks with no green supply in reach get the whole MILP up to this size: their
emissions are linear in the load (``c·L``, nothing to cover), so the LP is tight and the
root usually proves the optimum; ``contended-continental``'s 6,339 columns are proven in
0.3 s, 0.4% below the best the neighbourhood search alone found."""


def partition(inst: Instance, block_columns: int) -> list[list[int]]:
    """Job indices in blocks by earliest start (ties by index), each block at most
    ``block_columns`` columns (a single larger job is a block of its own)."""
    order = sorted(range(len(inst.jobs)), key=lambda j: (inst.jobs[j].first, j))
    blocks: list[list[int]] = []
    current: list[int] = []
    size = 0
    for j in order:
        columns = inst.columns(j)
        if current and size + columns > block_columns:
            blocks.append(current)
            current, size = [], 0
        current.append(j)
        size += columns
    if current:
        blocks.append(current)
    return blocks


def window(inst: Instance, jobs: list[int]) -> tuple[int, int]:
    """The slots ``[t0, t1)`` that ``jobs`` can touch."""
    return (min(inst.jobs[j].first for j in jobs), max(inst.jobs[j].end for j in jobs))


class Blocks:
    """The outcome of :func:`solve_by_blocks`."""

    def __init__(self, schedule: Schedule, emissions_g: float, bound_g: float,
                 lp_g: float, dual_g: float, start_g: float | None, improved: bool,
                 variables: int, blocks: int, rounds: int) -> None:
        self.schedule, self.emissions_g, self.bound_g = schedule, emissions_g, bound_g
        self.lp_g, self.dual_g, self.start_g = lp_g, dual_g, start_g
        self.improved, self.variables, self.blocks = improved, variables, blocks
        self.rounds = rounds


def solve_by_blocks(inst: Instance, blocks: list[list[int]], work: Work,
                    start: Schedule | None, *, tighten: bool, max_variables: int,
                    rounds_per_job: float, relax: bool = False) -> Blocks:
    """Bound and schedule by blocks (module docstring); one block is the monolithic
    model, whose LP and MILP dual bound are then the bound.

    ``work.rounds`` is ignored: a block gets ``ceil(rounds_per_job × its jobs)``
    neighbourhoods. ``start`` must be feasible (see :meth:`Instance.feasible`) or None.
    Raises :class:`PlanningError` when a block has no feasible schedule.
    """
    n_sites = inst.green.shape[0]
    single = len(blocks) == 1
    fixed_g = inst.emissions(inst.fixed_load)
    lp_total = fixed_g
    models = 0
    if not single:
        for jobs in blocks:
            t0, t1 = window(inst, jobs)
            alone = BlockModel(inst, jobs, t0, t1, np.zeros((n_sites, t1 - t0)),
                               tighten=tighten, max_variables=max_variables)
            lp_total += max(lp_bound(alone), 0.0)
            models = max(models, alone.nx + alone.ng)
        if relax:
            return Blocks({}, lp_total, lp_total, lp_total, -np.inf, None, False, models,
                          len(blocks), 0)
    current: Schedule = dict(start) if start is not None else {}
    load = inst.fixed_load + inst.load_of(current)
    use = inst.use_of(current, [j for j, job in enumerate(inst.jobs) if job.key in current])
    dual_g = -np.inf
    improved = start is None
    total_rounds = 0
    blocks = list(blocks)
    saved: list[tuple[FloatArray, FloatArray, Schedule, int]] = []  # before each block
    k = 0
    while k < len(blocks):
        jobs = blocks[k]
        saved[k:] = [(load.copy(), use.copy(), dict(current), total_rounds)]
        t0, t1 = window(inst, jobs)
        placed = [j for j in jobs if inst.jobs[j].key in current]
        mine = inst.load_of(current, placed)
        mine_use = inst.use_of(current, placed)
        model = BlockModel(inst, jobs, t0, t1, (load - mine)[:, t0:t1],
                           (use - mine_use)[:, :, t0:t1], tighten=tighten,
                           max_variables=max_variables)
        models = max(models, model.nx + model.ng)
        x0 = model.vector(current) if start is not None else None
        rounds = int(np.ceil(rounds_per_job * len(jobs)))
        if single:
            lp_total = lp_bound(model)
            if relax:
                return Blocks({}, lp_total, lp_total, lp_total, -np.inf, None, False,
                              models, 1, 0)
        try:
            result: BlockResult = solve_block(
                model, _with_rounds(work, rounds), x0,
                lp_g=lp_total if single else -np.inf,
                full=x0 is None or model.nx <= FULL_MILP_COLUMNS or (
                    model.nx <= LINEAR_MILP_COLUMNS and not model.green.any()))
        except PlanningError:
            if start is not None or k == 0:
                raise
            # rolling without a start, the blocks before left this one no room: solve it
            # together with the one before, from where that one began
            blocks[k - 1:k + 1] = [blocks[k - 1] + jobs]
            k -= 1
            load, use, current, total_rounds = saved[k]
            continue
        total_rounds += result.rounds
        if single:
            dual_g = result.dual_g
        improved = improved or result.improved
        placed_now = model.schedule(result.x)
        if len(placed_now) != len(jobs):
            raise PlanningError("oracle: a block's schedule left jobs out")
        load = load - mine + inst.load_of(placed_now, jobs)
        use = use - mine_use + inst.use_of(placed_now, jobs)
        current.update(placed_now)
        k += 1
    emissions = inst.emissions(load)
    start_g = inst.emissions(inst.fixed_load + inst.load_of(start)) if start else None
    if start is not None and start_g is not None and emissions > start_g:
        current, emissions = dict(start), start_g  # by construction never; the guarantee
    bound = max(lp_total, dual_g, 0.0)
    return Blocks(current, emissions, min(bound, emissions), lp_total, dual_g, start_g,
                  improved and (start_g is None or emissions < start_g - 1e-9 * max(
                      1.0, start_g)), models, len(blocks), total_rounds)


def _with_rounds(work: Work, rounds: int) -> Work:
    return replace(work, rounds=rounds)


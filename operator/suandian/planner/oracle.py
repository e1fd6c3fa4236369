"""The offline oracle: the same problem with perfect knowledge, solved as a MILP (HiGHS).

It defines the "physical limit" of savings: given the true supply (the snapshot's P50
arrays taken as fact) and every job up front, the least emissions any schedule can reach
under the same deadlines, capacities, import limits and residency. Formulation::

    x[j,s,k] ∈ {0,1}   job j starts at slot k on site s          (not interruptible)
    z[j,s]   ∈ {0,1}   job j runs on site s;  y[j,s,t] ∈ {0,1}   it runs in slot t
    g[s,t]   ∈ [0, G[s,t]]   green power used at site s in slot t
    L[s,t]   = Σ q[j,s] · (x covering t  +  y[j,s,t])            facility load, kW

    minimise   Σ_{s,t} c[s,t] · h · (L[s,t] - g[s,t])
    subject to Σ_{s,k} x[j,s,k] = 1,  Σ_s z[j,s] = 1,  Σ_t y[j,s,t] = n_j · z[j,s]
               g[s,t] ≤ Σ_j min(q[j,s], G[s,t]) · running[j,s,t]          (*)
               L - g ≤ import limit,  Σ req_r · (running in t) ≤ C[s,r,t]

(*) is the tightened form of ``g ≤ L``. It holds for every integer schedule (the green a
slot can use is ``min(G, L)``, and either one running job alone draws at least ``G`` or
the right-hand side is ``L``), and it implies ``g ≤ L``; but a job spread fractionally
over several windows can no longer soak up green it could not use whole: with
``q = 2G``, half a job in each of two windows gets ``G/2`` of green in each, as the whole
job would in one. It raises the LP relaxation from 69 to 203 tCO2 on the contention
scenario's week (east-data-west-computing: 131 to 241 t), and with it the proven bound
every share of savings is judged against. ``tighten=False`` gives the plain ``g ≤ L``.

Starts range over ``[earliest, deadline - n]`` (no safety margin: the limit, not a plan)
and must end within the horizon. Only small instances: see ``max_variables``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import highspy
import numpy as np
from scipy import sparse

from suandian.errors import PlanningError
from suandian.planner.model import JobDemand, Snapshot
from suandian.planner.terms import mean_kw, slots_for

__all__ = ["OracleResult", "solve_oracle"]

_FREE_JOBS = 15  # jobs re-solved at once by the neighbourhood search


@dataclass(frozen=True)
class OracleResult:
    """The optimal schedule: ``schedule[key] = (site index, slot indices)``."""

    schedule: dict[str, tuple[int, tuple[int, ...]]]
    emissions_g: float
    bound_g: float
    optimal: bool
    seconds: float
    variables: int
    start_g: float | None = None  # emissions of the MIP start handed in, if one was used

    @property
    def returned_start(self) -> bool:
        """True when the solver did not improve on the MIP start it was given: the
        schedule is then only as good as that start, and only ``bound_g`` says how far
        from optimal it may be."""
        return self.start_g is not None and self.emissions_g >= self.start_g - 1e-6 * max(
            1.0, abs(self.start_g))

    @property
    def gap(self) -> float:
        """Relative gap between the schedule found and the proven bound."""
        return (self.emissions_g - self.bound_g) / max(abs(self.emissions_g), 1e-9)


@dataclass
class _Columns:
    cost: list[float]
    rows: list[np.ndarray]  # per column: flat (site, slot) cells it loads
    job: list[int]
    site: list[int]
    kind: list[int]  # 0 = start x, 1 = site choice z, 2 = slot y
    slots: list[np.ndarray]


def solve_oracle(
    snap: Snapshot, *, time_limit_s: float = 30.0, mip_rel_gap: float = 1e-4,
    max_variables: int = 400_000,
    start: dict[str, tuple[int, tuple[int, ...]]] | None = None, tighten: bool = True,
    relax: bool = False, neighbourhood_share: float = 0.6, first_share: float = 0.15,
) -> OracleResult:
    """Solve the snapshot's jobs optimally; raises :class:`PlanningError` if too large
    or infeasible.

    ``start`` is an optional feasible schedule (``key -> (site, slots)``) handed to HiGHS
    as a MIP start: the search then begins from it and can only improve on it. The result
    says whether optimality was proven; ``bound_g`` is HiGHS's proven lower bound, and
    ``start_g`` what the start emits (``returned_start`` says if nothing better was
    found). ``tighten`` uses the tightened green row (*) (a stronger relaxation, the same
    integer optimum). ``relax`` solves the LP relaxation
    only: its value is a lower bound on the optimum (``bound_g``), with no schedule.

    With a start and more than 15 jobs, the full MILP runs first for ``first_share`` of
    the time limit (small instances are proven optimal there); if not optimal, a large
    neighbourhood search follows for ``neighbourhood_share`` of it
    (:func:`_neighbourhood_search`: HiGHS re-solves 15 jobs at a time with every other job
    fixed where the incumbent has it, which improves a good start far faster than
    branching on the whole model), then the full MILP again from the improved incumbent
    for the rest. ``bound_g`` is the best dual bound of the full runs.
    """
    t0 = time.perf_counter()
    n_sites, n_slots, n_res = len(snap.sites), snap.slots, len(snap.resources)
    h = snap.slot_hours
    slot_s = snap.slot.total_seconds()
    green = np.maximum(snap.stacked("green_p50_kw"), 0.0)
    carbon = snap.stacked("carbon_g_per_kwh")
    imports = snap.stacked("import_limit_kw")
    cap = np.stack([np.asarray(s.capacity, dtype=float) for s in snap.sites])
    pue = np.array([s.pue for s in snap.sites])
    cols = _Columns([], [], [], [], [], [])
    fixed_load = np.zeros((n_sites, n_slots))
    jobs = [j for j in snap.jobs if j.running_site is None]
    powers: list[np.ndarray] = []
    requests: list[np.ndarray] = []
    for ji, job in enumerate(jobs):
        n = slots_for(job.duration, snap.slot)
        q_it = mean_kw(job.power_w, job.duration, n, snap.slot)
        e = max(0, math.ceil((job.earliest_start - snap.now).total_seconds() / slot_s - 1e-9))
        end = min(n_slots, math.floor((job.deadline - snap.now).total_seconds() / slot_s + 1e-9))
        if end - e < n:
            raise PlanningError(f"oracle: job {job.key} does not fit between its earliest "
                                "start and deadline within the horizon")
        sites = job.allowed_sites if job.allowed_sites is not None else tuple(range(n_sites))
        powers.append(q_it * pue)
        requests.append(np.asarray(job.resources, dtype=float))
        for s in sites:
            q = q_it * pue[s]
            if job.interruptible and job.policy == "Optimize":
                _add(cols, 0.0, np.zeros(0, int), ji, s, 1, np.zeros(0, int))
                for t in range(e, end):
                    _add(cols, carbon[s, t] * h * q, np.array([s * n_slots + t]), ji, s, 2,
                         np.array([t]))
            else:
                last = end - n if job.policy == "Optimize" else e
                for k in range(e, last + 1):
                    cells = np.arange(k, k + n)
                    _add(cols, float(carbon[s, cells].sum() * h * q), s * n_slots + cells, ji, s, 0,
                         cells)
        if len(cols.cost) > max_variables:
            raise PlanningError(f"oracle: instance too large (over {max_variables} variables)")
    for job in snap.jobs:
        if job.running_site is not None:
            n = slots_for(job.duration, snap.slot)
            fixed_load[job.running_site, : min(n, n_slots)] += job.power_w / 1000.0 * pue[
                job.running_site]
    return _solve(snap, cols, jobs, powers, requests, green, carbon, imports, cap, fixed_load,
                  h, time_limit_s, mip_rel_gap, t0, n_res, start, tighten, relax,
                  neighbourhood_share, first_share)


def _add(cols: _Columns, cost: float, cells: np.ndarray, job: int, site: int, kind: int,
         slots: np.ndarray) -> None:
    cols.cost.append(cost)
    cols.rows.append(cells)
    cols.job.append(job)
    cols.site.append(site)
    cols.kind.append(kind)
    cols.slots.append(slots)


def _solve(
    snap: Snapshot, cols: _Columns, jobs: list[JobDemand], powers: list[np.ndarray],
    requests: list[np.ndarray], green: np.ndarray, carbon: np.ndarray, imports: np.ndarray,
    cap: np.ndarray, fixed_load: np.ndarray, h: float, time_limit_s: float,
    mip_rel_gap: float, t0: float, n_res: int,
    start: dict[str, tuple[int, tuple[int, ...]]] | None, tighten: bool, relax: bool,
    neighbourhood_share: float, first_share: float,
) -> OracleResult:
    n_sites, n_slots = green.shape
    nx = len(cols.cost)
    ng = n_sites * n_slots
    nvar = nx + ng
    site = np.array(cols.site, dtype=int)
    job = np.array(cols.job, dtype=int)
    kind = np.array(cols.kind, dtype=int)
    lens = np.array([len(r) for r in cols.rows], dtype=int)
    col_of_cell = np.repeat(np.arange(nx), lens)
    cells = np.concatenate(cols.rows) if nx else np.zeros(0, int)
    q = np.array([powers[j][s] for j, s in zip(job, site, strict=True)]) if nx else np.zeros(0)
    # rows: [green ≤ load] (ng), [load - green ≤ import] (ng), capacity (n_res·ng), job (J),
    # interruptible link (one per z column)
    data, ri, ci = [], [], []
    lo, hi = [], []
    # load coefficients on cells
    flat_green = green.ravel()
    for block in (0, 1):
        sign = -1.0 if block == 0 else 1.0
        # green row: g ≤ Σ_j min(q_j, G)·running_j (tightened) or ≤ Σ_j q_j·running_j
        coef = np.minimum(q[col_of_cell], flat_green[cells]) if (
            block == 0 and tighten) else q[col_of_cell]
        data += [sign * coef]
        ri += [block * ng + cells]
        ci += [col_of_cell]
        data += [np.full(ng, -sign)]
        ri += [block * ng + np.arange(ng)]
        ci += [nx + np.arange(ng)]
    flat_fixed = fixed_load.ravel()
    lo += [np.full(ng, -np.inf), np.full(ng, -np.inf)]
    hi += [np.minimum(flat_fixed, flat_green) if tighten else flat_fixed,
           imports.ravel() - flat_fixed]
    base = 2 * ng
    for r in range(n_res):
        req = np.array([requests[j][r] for j in job]) if nx else np.zeros(0)
        data += [req[col_of_cell]]
        ri += [base + r * ng + cells]
        ci += [col_of_cell]
        lo += [np.full(ng, -np.inf)]
        hi += [np.where(np.isfinite(cap[:, r, :]), cap[:, r, :], 1e15).ravel()]
    base += n_res * ng
    nj = len(jobs)
    choice = kind != 2
    data += [np.ones(int(choice.sum()))]
    ri += [base + job[choice]]
    ci += [np.flatnonzero(choice)]
    lo += [np.ones(nj)]
    hi += [np.ones(nj)]
    base += nj
    zcols = np.flatnonzero(kind == 1)
    zrow = {(int(job[c]), int(site[c])): base + i for i, c in enumerate(zcols)}
    if zcols.size:
        ycols = np.flatnonzero(kind == 2)
        data += [np.ones(ycols.size)]
        ri += [np.array([zrow[(int(job[c]), int(site[c]))] for c in ycols])]
        ci += [ycols]
        nslots = [slots_for(jobs[int(job[c])].duration, snap.slot) for c in zcols]
        data += [-np.array(nslots, dtype=float)]
        ri += [base + np.arange(zcols.size)]
        ci += [zcols]
        lo += [np.zeros(zcols.size)]
        hi += [np.zeros(zcols.size)]
    nrows = base + zcols.size
    matrix = sparse.csr_array(
        (np.concatenate(data), (np.concatenate(ri), np.concatenate(ci))), shape=(nrows, nvar))
    cost = np.concatenate([np.array(cols.cost), -(carbon * h).ravel()])
    highs = highspy.Highs()  # type: ignore[no-untyped-call]
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", float(time_limit_s))
    highs.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("random_seed", 0)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = nvar, nrows
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(nvar)
    lp.col_upper_ = np.concatenate([np.ones(nx), green.ravel()])
    lp.row_lower_ = np.concatenate(lo)
    lp.row_upper_ = np.concatenate(hi)
    csc = matrix.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr
    lp.a_matrix_.index_ = csc.indices
    lp.a_matrix_.value_ = csc.data
    if not relax:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * nx + [
            highspy.HighsVarType.kContinuous] * ng
    highs.passModel(lp)
    fixed_g = float((fixed_load * carbon * h).sum())
    start_g = None
    x0 = None
    if start and not relax:
        x0 = _start_vector(cols, jobs, start, q, green, nx)
        if x0 is not None:
            start_g = float(cost @ x0) + fixed_g
            _set_start(highs, x0)
    n_jobs = len(jobs)
    search = x0 is not None and neighbourhood_share > 0 and n_jobs > _FREE_JOBS
    bound, optimal = -np.inf, False
    if relax or not search or first_share > 0:
        if search:  # a short full solve first: small instances end here, proven optimal
            highs.setOptionValue("time_limit", float(time_limit_s) * first_share)
        highs.run()
        info = highs.getInfo()
        x = np.asarray(highs.getSolution().col_value)
        if info.primal_solution_status != 2 or x.size != nvar:
            status = highs.modelStatusToString(highs.getModelStatus())
            raise PlanningError(f"oracle: no schedule found ({status})")
        fun = float(info.objective_function_value)
        if relax:
            if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                raise PlanningError("oracle: the LP relaxation was not solved to optimality "
                                    f"({highs.modelStatusToString(highs.getModelStatus())})")
            return OracleResult(schedule={}, emissions_g=fun + fixed_g, bound_g=fun + fixed_g,
                                optimal=True, seconds=time.perf_counter() - t0,
                                variables=nvar)
        bound = float(info.mip_dual_bound)
        optimal = highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
    else:
        assert x0 is not None
        x = x0
    if search and not optimal:
        # every dual bound is a bound on the same model: keep the best of the runs
        until = t0 + (first_share + neighbourhood_share) * time_limit_s
        x = _neighbourhood_search(highs, cols, cost, _integral(x, nx), nx, n_slots, until)
        highs.setOptionValue("time_limit", max(1.0, t0 + time_limit_s - time.perf_counter()))
        _set_start(highs, x)
        highs.run()
        info = highs.getInfo()
        found = np.asarray(highs.getSolution().col_value)
        if info.primal_solution_status == 2 and found.size == nvar and (
                float(cost @ found) < float(cost @ x)):
            x = found
        later = float(info.mip_dual_bound)
        bound = max(bound, later) if np.isfinite(later) else bound
        optimal = highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
    # the schedule's exact emissions, green first (not the solver's objective, which
    # carries its tolerances): what a replay of the schedule will account
    xi = _integral(x, nx)[:nx]
    load = fixed_load.ravel().copy()
    np.add.at(load, cells, (q * xi)[col_of_cell])
    fun = float(((load - np.minimum(load, green.ravel())) * (carbon * h).ravel()).sum())
    fun -= float((fixed_load * carbon * h).sum())  # fixed_g is added back below
    picked = np.flatnonzero((x[:nx] > 0.5) & (kind != 1))
    schedule: dict[str, tuple[int, list[int]]] = {}
    for c in picked:
        key = jobs[int(job[c])].key
        entry = schedule.setdefault(key, (int(site[c]), []))
        entry[1].extend(int(t) for t in cols.slots[c])
    return OracleResult(
        schedule={k: (s, tuple(sorted(v))) for k, (s, v) in schedule.items()},
        emissions_g=fun + fixed_g,
        # no dual bound yet (time ran out before the root LP): emissions are never
        # negative, so 0 is the only honest bound then
        bound_g=(min(bound, fun) if np.isfinite(bound) else 0.0) + fixed_g,
        optimal=optimal,
        seconds=time.perf_counter() - t0,
        variables=nvar,
        start_g=start_g,
    )


def _neighbourhood_search(
    highs: highspy.Highs, cols: _Columns, cost: np.ndarray, x: np.ndarray, nx: int,
    n_slots: int, until: float, free_jobs: int = _FREE_JOBS, round_s: float = 1.0,
) -> np.ndarray:
    """Improve the incumbent ``x`` until ``until`` (a ``perf_counter`` time).

    Each round frees the jobs the incumbent runs within a random stretch of the horizon
    (at most ``free_jobs`` of them, drawn at random), fixes every other job to its
    incumbent choice (upper bound 0 on its other columns) and solves that sub-MILP from
    the incumbent for at most ``round_s``; a better schedule becomes the incumbent. Every
    schedule it returns is feasible for the full model (the bounds only remove choices).
    Deterministic: the stretches come from a generator seeded with 0.
    """
    rng = np.random.default_rng(0)
    job = np.asarray(cols.job, dtype=int)
    kind = np.asarray(cols.kind, dtype=int)
    first = np.array([sl[0] if len(sl) else n_slots for sl in cols.slots])
    last = np.array([sl[-1] if len(sl) else -1 for sl in cols.slots])
    n_jobs = int(job.max()) + 1 if nx else 0
    every = np.arange(nx, dtype=np.int32)
    best = float(cost @ x)
    width = max(4, n_slots // 8)
    while time.perf_counter() < until - 0.2 and n_jobs:
        on = (x[:nx] > 0.5) & (kind != 1)
        span_lo = np.full(n_jobs, n_slots)
        span_hi = np.full(n_jobs, -1)
        np.minimum.at(span_lo, job[on], first[on])
        np.maximum.at(span_hi, job[on], last[on])
        centre = int(rng.integers(0, n_slots))
        near = np.flatnonzero((span_hi >= centre - width) & (span_lo <= centre + width))
        if near.size > free_jobs:
            near = rng.choice(near, size=free_jobs, replace=False)
        free = np.zeros(n_jobs, dtype=bool)
        free[near] = True
        upper = np.where(free[job] | (x[:nx] > 0.5), 1.0, 0.0)
        highs.changeColsBounds(nx, every, np.zeros(nx), upper)
        _set_start(highs, x)
        highs.setOptionValue("time_limit", max(0.1, min(round_s, until - time.perf_counter())))
        highs.run()
        found = np.asarray(highs.getSolution().col_value)
        if highs.getInfo().primal_solution_status == 2 and found.size == x.size:
            value = float(cost @ found)
            if value < best - 1e-9 * max(1.0, abs(best)):
                x, best = _integral(found, nx), value
    highs.changeColsBounds(nx, every, np.zeros(nx), np.ones(nx))
    return x


def _set_start(highs: highspy.Highs, x: np.ndarray) -> None:
    sol = highspy.HighsSolution()
    sol.col_value = list(x)
    sol.value_valid = True
    highs.setSolution(sol)


def _integral(x: np.ndarray, nx: int) -> np.ndarray:
    """A MIP solution with its binaries rounded (HiGHS returns them within tolerance)."""
    out = x.copy()
    out[:nx] = np.round(out[:nx])
    return out


def _start_vector(
    cols: _Columns, jobs: list[JobDemand], start: dict[str, tuple[int, tuple[int, ...]]],
    q: np.ndarray, green: np.ndarray, nx: int,
) -> np.ndarray | None:
    """The MIP start for a schedule, or None if it uses a choice the model lacks."""
    index = {}
    for c in range(nx):
        key = (int(cols.job[c]), int(cols.site[c]), int(cols.kind[c]),
               int(cols.slots[c][0]) if len(cols.slots[c]) else -1)
        index[key] = c
    x = np.zeros(nx + green.size)
    load = np.zeros(green.size)
    for ji, job in enumerate(jobs):
        if job.key not in start:
            return None
        site, slots = start[job.key]
        if not slots:
            return None
        wanted = [(ji, site, 1, -1), *((ji, site, 2, t) for t in slots)] if (
            (ji, site, 1, -1) in index) else [(ji, site, 0, slots[0])]
        for key in wanted:
            if key not in index:
                return None
            c = index[key]
            x[c] = 1.0
            load[cols.rows[c]] += q[c]
    x[nx:] = np.minimum(load, green.ravel())
    return x

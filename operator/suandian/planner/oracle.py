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
               g ≤ L,  L - g ≤ import limit,  Σ req_r · (running in t) ≤ C[s,r,t]

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

__all__ = ["OracleResult", "solve_oracle"]


@dataclass(frozen=True)
class OracleResult:
    """The optimal schedule: ``schedule[key] = (site index, slot indices)``."""

    schedule: dict[str, tuple[int, tuple[int, ...]]]
    emissions_g: float
    bound_g: float
    optimal: bool
    seconds: float
    variables: int


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
    start: dict[str, tuple[int, tuple[int, ...]]] | None = None,
) -> OracleResult:
    """Solve the snapshot's jobs optimally; raises :class:`PlanningError` if too large
    or infeasible.

    ``start`` is an optional feasible schedule (``key -> (site, slots)``) handed to HiGHS
    as a MIP start: the search then begins from it and can only improve on it. The result
    says whether optimality was proven; ``bound_g`` is HiGHS's proven lower bound.
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
        n = max(1, math.ceil(job.duration.total_seconds() / slot_s - 1e-9))
        q_it = job.power_w / 1000.0 * job.duration.total_seconds() / (n * slot_s)
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
            n = max(1, math.ceil(job.duration.total_seconds() / slot_s - 1e-9))
            fixed_load[job.running_site, : min(n, n_slots)] += job.power_w / 1000.0 * pue[
                job.running_site]
    return _solve(snap, cols, jobs, powers, requests, green, carbon, imports, cap, fixed_load,
                  h, time_limit_s, mip_rel_gap, t0, n_res, start)


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
    start: dict[str, tuple[int, tuple[int, ...]]] | None,
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
    for block in (0, 1):
        sign = -1.0 if block == 0 else 1.0
        data += [sign * q[col_of_cell]]
        ri += [block * ng + cells]
        ci += [col_of_cell]
        data += [np.full(ng, -sign)]
        ri += [block * ng + np.arange(ng)]
        ci += [nx + np.arange(ng)]
    flat_fixed = fixed_load.ravel()
    lo += [np.full(ng, -np.inf), np.full(ng, -np.inf)]
    hi += [flat_fixed, imports.ravel() - flat_fixed]
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
        nslots = [max(1, math.ceil(jobs[int(job[c])].duration / snap.slot - 1e-9)) for c in zcols]
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
    lp.integrality_ = [highspy.HighsVarType.kInteger] * nx + [
        highspy.HighsVarType.kContinuous] * ng
    highs.passModel(lp)
    if start:
        x0 = _start_vector(cols, jobs, start, q, green, nx)
        if x0 is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(x0)
            sol.value_valid = True
            highs.setSolution(sol)
    highs.run()
    info = highs.getInfo()
    x = np.asarray(highs.getSolution().col_value)
    if info.primal_solution_status != 2 or x.size != nvar:
        status = highs.modelStatusToString(highs.getModelStatus())
        raise PlanningError(f"oracle: no schedule found ({status})")
    fixed_g = float((fixed_load * carbon * h).sum())
    fun = float(info.objective_function_value)
    bound = float(info.mip_dual_bound)
    picked = np.flatnonzero((x[:nx] > 0.5) & (kind != 1))
    schedule: dict[str, tuple[int, list[int]]] = {}
    for c in picked:
        key = jobs[int(job[c])].key
        entry = schedule.setdefault(key, (int(site[c]), []))
        entry[1].extend(int(t) for t in cols.slots[c])
    return OracleResult(
        schedule={k: (s, tuple(sorted(v))) for k, (s, v) in schedule.items()},
        emissions_g=fun + fixed_g,
        bound_g=(bound if np.isfinite(bound) else fun) + fixed_g,
        optimal=highs.getModelStatus() == highspy.HighsModelStatus.kOptimal,
        seconds=time.perf_counter() - t0,
        variables=nvar,
    )


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

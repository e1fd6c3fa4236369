"""The oracle's data in slot units, and its MILP over a subset of jobs and slots.

:class:`Instance` is the snapshot turned into arrays once (supply, intensity, limits,
every job's choices); :class:`BlockModel` is the MILP of :mod:`suandian.planner.oracle`
for some of its jobs over the slots they can touch, with the load and resources of
jobs placed elsewhere (running jobs, earlier blocks of a decomposition) as background.
A block over every job is the monolithic model. Everything here is deterministic
arithmetic: no solver, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import highspy
import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from suandian.errors import PlanningError
from suandian.planner.model import FloatArray, Snapshot
from suandian.planner.terms import first_slot, mean_kw, slots_for

__all__ = ["BlockModel", "Instance", "OracleJob", "Schedule"]

IntArray = NDArray[np.int64]
Schedule = dict[str, tuple[int, tuple[int, ...]]]
"""``key -> (site index, slot indices)``: where and when each job runs."""

WINDOW, SPLIT = 0, 1  # a job's mode: one contiguous run, or any n slots of its window
START, CHOICE, SLOT = 0, 1, 2  # column kinds: x (a start), z (a site), y (a slot)


@dataclass(frozen=True)
class OracleJob:
    """One job to place: ``n`` slots within ``[first, end)`` on one of ``sites``.

    ``q[s]`` is its facility power at site ``s`` (kW, PUE included), ``req`` its request
    per resource. ``last`` is its latest start (``first`` for jobs that may not move);
    a ``SPLIT`` job runs any ``n`` slots of the window.
    """

    key: str
    n: int
    first: int
    last: int
    end: int
    mode: int
    sites: tuple[int, ...]
    q: FloatArray
    req: FloatArray


@dataclass(frozen=True, eq=False)
class Instance:
    """The snapshot in slot units: arrays ``(sites, slots)`` and the jobs to place.

    ``fixed_load`` is the load of running jobs, which the oracle does not move (their
    resources are already out of ``capacity``, the snapshot's free capacity).
    """

    green: FloatArray
    cost: FloatArray  # grams per kWh of grid power: carbon, plus a tariff's weighted price
    imports: FloatArray
    capacity: FloatArray  # (sites, resources, slots); inf where unlimited
    h: float
    jobs: tuple[OracleJob, ...]
    fixed_load: FloatArray

    @classmethod
    def from_snapshot(cls, snap: Snapshot) -> Instance:
        """Raises :class:`PlanningError` when a job cannot fit its window."""
        n_sites, n_slots = len(snap.sites), snap.slots
        slot_s = snap.slot.total_seconds()
        pue = np.array([s.pue for s in snap.sites])
        jobs: list[OracleJob] = []
        fixed = np.zeros((n_sites, n_slots))
        for job in snap.jobs:
            n = slots_for(job.duration, snap.slot)
            if job.running_site is not None:
                fixed[job.running_site, : min(n, n_slots)] += (
                    job.power_w / 1000.0 * pue[job.running_site])
                continue
            q_it = mean_kw(job.power_w, job.duration, n, snap.slot)
            first = first_slot(job.earliest_start, snap.now, slot_s)
            end = min(n_slots, math.floor((job.deadline - snap.now).total_seconds() / slot_s
                                          + 1e-9))
            if end - first < n:
                raise PlanningError(f"oracle: job {job.key} does not fit between its "
                                    "earliest start and deadline within the horizon")
            optimize = job.policy == "Optimize"
            sites = job.allowed_sites if job.allowed_sites is not None else tuple(
                range(n_sites))
            jobs.append(OracleJob(
                key=job.key, n=n, first=first, last=end - n if optimize else first, end=end,
                mode=SPLIT if job.interruptible and optimize else WINDOW,
                sites=tuple(sites), q=q_it * pue, req=np.asarray(job.resources, dtype=float)))
        return cls(
            green=np.maximum(snap.stacked("green_p50_kw"), 0.0),
            cost=_grid_cost(snap), imports=snap.stacked("import_limit_kw"),
            capacity=np.stack([np.asarray(s.capacity, dtype=float) for s in snap.sites]),
            h=snap.slot_hours, jobs=tuple(jobs), fixed_load=fixed)

    def columns(self, j: int) -> int:
        """How many MILP columns job ``j`` brings (its size in the model)."""
        job = self.jobs[j]
        per_site = job.end - job.first + 1 if job.mode == SPLIT else job.last - job.first + 1
        return per_site * len(job.sites)

    def emissions(self, load: FloatArray) -> float:
        """Grams emitted by a facility load ``(sites, slots)``: green first, then grid."""
        grid = np.maximum(load - self.green, 0.0)
        return float((grid * self.cost).sum() * self.h)

    def load_of(self, schedule: Schedule, jobs: range | list[int] | None = None) -> FloatArray:
        """The load of ``schedule``'s jobs (``jobs``: indices; all by default), kW."""
        load = np.zeros_like(self.green)
        for j in range(len(self.jobs)) if jobs is None else jobs:
            job = self.jobs[j]
            if job.key in schedule:
                site, slots = schedule[job.key]
                load[site, list(slots)] += job.q[site]
        return load

    def use_of(self, schedule: Schedule, jobs: list[int]) -> FloatArray:
        """Resources ``(sites, resources, slots)`` that ``jobs`` of ``schedule`` hold."""
        use = np.zeros_like(self.capacity)
        for j in jobs:
            job = self.jobs[j]
            site, slots = schedule[job.key]
            use[site][:, list(slots)] += job.req[:, None]
        return use

    def feasible(self, schedule: Schedule) -> bool:
        """Whether ``schedule`` places every job within its window, sites, capacity and
        import limits (with the solver's tolerances): a schedule the oracle may return."""
        for job in self.jobs:
            if job.key not in schedule:
                return False
            site, slots = schedule[job.key]
            if site not in job.sites or len(slots) != job.n or len(set(slots)) != job.n:
                return False
            if min(slots) < job.first or max(slots) >= job.end:
                return False
            if job.mode == WINDOW and (slots[0] > job.last or list(slots) != list(
                    range(slots[0], slots[0] + job.n))):
                return False
        load = self.fixed_load + self.load_of(schedule)
        grid = np.maximum(load - self.green, 0.0)
        if np.any(grid > self.imports + 1e-6 * np.maximum(1.0, self.imports)):
            return False
        use = self.use_of(schedule, list(range(len(self.jobs))))
        return not np.any(use > self.capacity + 1e-6 * np.maximum(1.0, self.capacity))


def _grid_cost(snap: Snapshot) -> FloatArray:
    """Grams per kWh of grid power per site and slot: the carbon intensity, plus the
    weighted price of a tariff where a site has one (``SiteSupply.tariff_g_per_kwh``, as
    the planner's ledger counts it). Without a tariff the oracle minimises emissions."""
    cost = snap.stacked("carbon_g_per_kwh")
    for s, site in enumerate(snap.sites):
        if site.tariff_g_per_kwh is not None:
            cost[s] += np.asarray(site.tariff_g_per_kwh, dtype=float)[:snap.slots]
    return cost


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class BlockModel:
    """The MILP for ``jobs`` (indices into ``inst.jobs``) over slots ``[t0, t1)``.

    ``background_load`` (kW) and ``background_use`` (resources) are held by jobs outside
    the block over the same slots: they take green first (the tightened green row's
    right-hand side), count against import limits and capacity, and their emissions are
    in the objective, so the objective is the emissions of the whole window. The columns
    follow the module docstring of :mod:`suandian.planner.oracle`; the green ``g[s,t]``
    are the last ``sites × (t1 - t0)`` columns.
    """

    def __init__(self, inst: Instance, jobs: list[int], t0: int, t1: int,
                 background_load: FloatArray, background_use: FloatArray | None = None,
                 *, tighten: bool = True, max_variables: int = 400_000) -> None:
        self.inst, self.jobs, self.t0, self.t1 = inst, jobs, t0, t1
        width = t1 - t0
        n_sites = inst.green.shape[0]
        self.width, self.n_sites = width, n_sites
        total = sum(inst.columns(j) for j in jobs)
        if total + n_sites * width > max_variables:
            raise PlanningError(f"oracle: instance too large (over {max_variables} variables)")
        self._columns()
        self.nx = int(self.col_job.size)
        self.ng = n_sites * width
        self.green = inst.green[:, t0:t1]
        self.cost_h = inst.cost[:, t0:t1] * inst.h
        self.background = background_load
        self.lp = self._lp(background_use, tighten)

    # --- columns ---------------------------------------------------------------------

    def _columns(self) -> None:
        """Every job's choices as columns: a run of slots at a site (``first``, ``length``;
        length 0 for a site choice ``z``), its cost and its kind."""
        inst = self.inst
        prefix = np.concatenate([np.zeros((inst.cost.shape[0], 1)),
                                 np.cumsum(inst.cost * inst.h, axis=1)], axis=1)
        job, site, kind, first, length, cost = [], [], [], [], [], []
        for local, j in enumerate(self.jobs):
            jb = self.inst.jobs[j]
            for s in jb.sites:
                if jb.mode == SPLIT:
                    ts = np.arange(jb.first, jb.end)
                    parts = [(np.array([-1]), CHOICE, 0, np.zeros(1)),
                             (ts, SLOT, 1, inst.cost[s, ts] * inst.h * jb.q[s])]
                else:
                    ks = np.arange(jb.first, jb.last + 1)
                    parts = [(ks, START, jb.n, (prefix[s, ks + jb.n] - prefix[s, ks]) * jb.q[s])]
                for starts, k, n, c in parts:
                    m = starts.size
                    job.append(np.full(m, local))
                    site.append(np.full(m, s))
                    kind.append(np.full(m, k))
                    first.append(starts)
                    length.append(np.full(m, n))
                    cost.append(c)
        self.col_job: IntArray = _cat(job).astype(np.int64)
        self.col_site: IntArray = _cat(site).astype(np.int64)
        self.col_kind: IntArray = _cat(kind).astype(np.int64)
        self.col_first: IntArray = _cat(first).astype(np.int64)
        self.col_len: IntArray = _cat(length).astype(np.int64)
        self.col_cost: FloatArray = _cat(cost).astype(float)
        # the cells (site, local slot) each column loads, flattened, and whose they are
        lens = self.col_len
        self.cell_col: IntArray = np.repeat(np.arange(lens.size), lens)
        offset = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        self.cells: IntArray = (self.col_site[self.cell_col] * (self.t1 - self.t0)
                                + self.col_first[self.cell_col] - self.t0 + offset)
        q = np.array([inst.jobs[self.jobs[jl]].q[s] for jl, s in
                      zip(self.col_job, self.col_site, strict=True)]) if lens.size else (
            np.zeros(0))
        self.col_q: FloatArray = q

    # --- the LP ------------------------------------------------------------------------

    def _lp(self, background_use: FloatArray | None, tighten: bool) -> highspy.HighsLp:
        inst, nx, ng = self.inst, self.nx, self.ng
        t0, t1 = self.t0, self.t1
        flat_green = self.green.ravel()
        flat_bg = self.background.ravel()
        qc = self.col_q[self.cell_col]
        data: list[FloatArray] = []
        rows: list[IntArray] = []
        cols: list[IntArray] = []
        lo: list[FloatArray] = []
        hi: list[FloatArray] = []
        gcols = nx + np.arange(ng)
        # green: g − Σ min(q, G)·running ≤ min(background, G)     (tightened (*))
        data += [-(np.minimum(qc, flat_green[self.cells]) if tighten else qc), np.ones(ng)]
        rows += [self.cells, np.arange(ng)]
        cols += [self.cell_col, gcols]
        lo.append(np.full(ng, -np.inf))
        hi.append(np.minimum(flat_bg, flat_green) if tighten else flat_bg)
        # import: Σ q·running − g ≤ limit − background
        data += [qc, -np.ones(ng)]
        rows += [ng + self.cells, ng + np.arange(ng)]
        cols += [self.cell_col, gcols]
        lo.append(np.full(ng, -np.inf))
        hi.append(inst.imports[:, t0:t1].ravel() - flat_bg)
        base = 2 * ng
        req = np.array([inst.jobs[self.jobs[jl]].req for jl in self.col_job]).reshape(
            nx, -1) if nx else np.zeros((0, inst.capacity.shape[1]))
        for r in range(inst.capacity.shape[1]):
            cap = inst.capacity[:, r, t0:t1]
            if background_use is not None:
                cap = cap - background_use[:, r]
            if not np.any(np.isfinite(cap)) or not np.any(req[:, r] > 0):
                continue  # never binding
            data.append(req[self.cell_col, r])
            rows.append(base + self.cells)
            cols.append(self.cell_col)
            lo.append(np.full(ng, -np.inf))
            hi.append(np.where(np.isfinite(cap), cap, 1e30).ravel())
            base += ng
        # one choice per job: Σ x (or Σ z) = 1
        choice = np.flatnonzero(self.col_kind != SLOT)
        nj = len(self.jobs)
        data.append(np.ones(choice.size))
        rows.append(base + self.col_job[choice])
        cols.append(choice)
        lo.append(np.ones(nj))
        hi.append(np.ones(nj))
        base += nj
        # split jobs: Σ_t y[j,s,t] − n·z[j,s] = 0
        zcols = np.flatnonzero(self.col_kind == CHOICE)
        if zcols.size:
            link = np.full(nx, -1)
            link[zcols] = np.arange(zcols.size)
            key = self.col_job * self.n_sites + self.col_site
            zrow = dict(zip(key[zcols].tolist(), range(zcols.size), strict=True))
            ycols = np.flatnonzero(self.col_kind == SLOT)
            data += [np.ones(ycols.size),
                     -np.array([inst.jobs[self.jobs[self.col_job[c]]].n for c in zcols],
                               dtype=float)]
            rows += [base + np.array([zrow[k] for k in key[ycols].tolist()], dtype=np.int64),
                     base + np.arange(zcols.size)]
            cols += [ycols, zcols]
            lo.append(np.zeros(zcols.size))
            hi.append(np.zeros(zcols.size))
            base += zcols.size
        matrix = sparse.csc_array(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
            shape=(base, nx + ng))
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = nx + ng, base
        lp.col_cost_ = np.concatenate([self.col_cost, -self.cost_h.ravel()])
        lp.col_lower_ = np.zeros(nx + ng)
        lp.col_upper_ = np.concatenate([np.ones(nx), flat_green])
        lp.row_lower_ = np.concatenate(lo)
        lp.row_upper_ = np.concatenate(hi)
        lp.offset_ = float((flat_bg * self.cost_h.ravel()).sum())
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr
        lp.a_matrix_.index_ = matrix.indices
        lp.a_matrix_.value_ = matrix.data
        return lp

    # --- schedules and vectors -----------------------------------------------------------

    def vector(self, schedule: Schedule) -> FloatArray | None:
        """The MILP point of ``schedule`` for this block's jobs (green ``g`` at its most),
        or None when it takes a choice the model lacks (then it cannot be a start)."""
        index: dict[tuple[int, int, int, int], int] = {
            k: c for c, k in enumerate(zip(self.col_job.tolist(), self.col_site.tolist(),
                                           self.col_kind.tolist(), self.col_first.tolist(),
                                           strict=True))}
        x = np.zeros(self.nx + self.ng)
        for local, j in enumerate(self.jobs):
            key = self.inst.jobs[j].key
            if key not in schedule or not schedule[key][1]:
                return None
            site, slots = schedule[key]
            if (local, site, CHOICE, -1) in index:
                wanted = [(local, site, CHOICE, -1), *((local, site, SLOT, t) for t in slots)]
            else:
                wanted = [(local, site, START, slots[0])]
            for k in wanted:
                if k not in index:
                    return None
                x[index[k]] = 1.0
        x[self.nx:] = np.minimum(self.load(x).ravel(), self.green.ravel())
        return x

    def load(self, x: FloatArray) -> FloatArray:
        """Total load ``(sites, width)`` of the point ``x`` (binaries rounded), background
        included."""
        on = np.round(x[: self.nx])
        flat = self.background.ravel().copy()
        np.add.at(flat, self.cells, (self.col_q * on)[self.cell_col])
        return flat.reshape(self.n_sites, self.width)

    def emissions(self, x: FloatArray) -> float:
        """Exact grams of the window for ``x``: green first at each cell (not the solver's
        objective, which carries its tolerances)."""
        grid = np.maximum(self.load(x) - self.green, 0.0)
        return float((grid * self.cost_h).sum())

    def schedule(self, x: FloatArray) -> Schedule:
        """The block's jobs' placements in ``x``."""
        picked = np.flatnonzero((x[: self.nx] > 0.5) & (self.col_kind != CHOICE))
        out: dict[str, tuple[int, list[int]]] = {}
        for c in picked.tolist():
            key = self.inst.jobs[self.jobs[int(self.col_job[c])]].key
            entry = out.setdefault(key, (int(self.col_site[c]), []))
            first = int(self.col_first[c])
            entry[1].extend(range(first, first + int(self.col_len[c])))
        return {k: (s, tuple(sorted(v))) for k, (s, v) in out.items()}

    def span(self, x: FloatArray) -> tuple[IntArray, IntArray]:
        """Per job of the block, the first and last slot it runs in ``x``."""
        on = (x[: self.nx] > 0.5) & (self.col_kind != CHOICE)
        lo = np.full(len(self.jobs), self.t1, dtype=np.int64)
        hi = np.full(len(self.jobs), -1, dtype=np.int64)
        np.minimum.at(lo, self.col_job[on], self.col_first[on])
        np.maximum.at(hi, self.col_job[on], self.col_first[on] + np.maximum(
            self.col_len[on], 1) - 1)
        return lo, hi

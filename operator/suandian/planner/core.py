"""``plan(snapshot, params) -> Plan``: place and time every job under shared limits.

Greedy in urgency order over shared, shrinking supply:

1. Running jobs take their green supply first (they draw power whatever we decide).
2. Jobs that must start now (``RunNow``, or latest start reached: the deadline
   guarantee) go next, then the rest by priority (high first) and slack (least first).
3. Each job scores every allowed site × feasible start (or, if interruptible, every
   site's cheapest set of slots) against the supply *left* by the jobs before it, takes
   the cheapest, and its decision consumes that green supply, grid import and capacity:
   the next job sees what is left, so jobs do not herd into the same sunny hour.

Durations are planned in whole slots: a job of ``d`` on slots of length ``Δ`` holds
``n = ceil(d/Δ)`` slots at mean power ``P·d/(n·Δ)``, so its energy stays ``P·d``.
Beyond the forecast horizon nothing is known: slots there count as no green at the
site's mean grid intensity (pessimistic), so plans never lean on the unknown.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from suandian.planner import scoring
from suandian.planner.ledger import Ledger as _Ledger
from suandian.planner.model import (
    FloatArray,
    JobDecision,
    JobDemand,
    Plan,
    PlanParams,
    Snapshot,
)
from suandian.planner.placement import rank_nodes
from suandian.planner.reasons import explain
from suandian.planner.terms import Terms as _Job
from suandian.planner.terms import job_terms as _job_terms

__all__ = ["plan"]

_INF = math.inf


def plan(snapshot: Snapshot, params: PlanParams | None = None) -> Plan:
    """Plan every job of the snapshot. Pure and deterministic: same snapshot, same plan."""
    params = params or PlanParams()
    snap = snapshot
    terms = [_job_terms(snap, params, i, j) for i, j in enumerate(snap.jobs)]
    pad = max([t.n for t in terms] + [1])
    ledger = _Ledger.from_snapshot(snap, pad)
    horizon = snap.slots
    all_sites = np.arange(len(snap.sites))

    for t in terms:
        job = t.demand
        if job.running_site is not None:
            slots = np.arange(0, min(t.n, horizon + pad))
            ledger.commit(job.running_site, slots, t.power_kw * ledger.pue[job.running_site],
                          np.zeros(len(snap.resources)))

    pending = [t for t in terms if t.demand.running_site is None]
    pending.sort(key=lambda t: (not t.forced, -t.demand.priority, t.latest - t.earliest,
                                t.demand.key))
    chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]] = {}
    figures: dict[int, tuple[float, float, float, float, float, int]] = {}
    for t in pending:
        _decide(ledger, params, t, all_sites, horizon, chosen, figures)
    if params.improvement_passes and len(pending) <= params.improvement_max_jobs:
        # coordinate descent: take each flexible job out and re-place it with every other
        # job in place; its marginal emissions are then exact, so the total never rises
        flexible = [t for t in pending if t.demand.policy == "Optimize" and not t.forced
                    and chosen[t.index][0] is not None]
        for _ in range(params.improvement_passes):
            for t in flexible:
                site, slots, _forced, _over = chosen[t.index]
                assert site is not None
                ledger.release(site, slots, figures[t.index][4],
                               np.asarray(t.demand.resources, dtype=float))
                _decide(ledger, params, t, all_sites, horizon, chosen, figures)

    prefs = _node_preferences(snap, params, terms, chosen)
    decisions = []
    for t in terms:
        if t.index not in chosen:
            continue
        site, slots, forced, over = chosen[t.index]
        if site is None:
            decisions.append(_undecided(snap, t))
        else:
            decisions.append(_decided(snap, t, site, slots, forced, over, figures[t.index],
                                      prefs.get(t.index, ())))
    ordered = tuple(decisions)
    return Plan(
        now=snap.now, slot=snap.slot, site_names=snap.site_names, decisions=ordered,
        load_kw=ledger.load[:, :horizon].copy(), green_used_kw=ledger.used[:, :horizon].copy(),
    )


def _decide(
    ledger: _Ledger, params: PlanParams, t: _Job, all_sites: np.ndarray, horizon: int,
    chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]],
    figures: dict[int, tuple[float, float, float, float, float, int]],
) -> None:
    """Choose for one job against what is left, record its figures, commit it."""
    sites = _sites_of(t, all_sites)
    rows: slice | np.ndarray = slice(None) if t.demand.allowed_sites is None else sites
    if t.earliest >= horizon or sites.size == 0:
        choice: tuple[int | None, np.ndarray, bool, bool] = (
            None, np.zeros(0, dtype=int), False, False)
    elif t.demand.interruptible and t.demand.policy == "Optimize" and not t.forced:
        choice = _choose_slots(ledger, params, t, sites, rows)
    else:
        choice = _choose_window(ledger, params, t, sites, rows, horizon)
    _record(ledger, t, sites, choice, chosen, figures)


def _sites_of(t: _Job, all_sites: np.ndarray) -> np.ndarray:
    allowed = t.demand.allowed_sites
    return all_sites if allowed is None else np.asarray(allowed, dtype=int)


def _record(
    ledger: _Ledger, t: _Job, sites: np.ndarray,
    choice: tuple[int | None, np.ndarray, bool, bool],
    chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]],
    figures: dict[int, tuple[float, float, float, float, float, int]],
) -> None:
    """Keep a choice, work out its figures against what is left, and commit it."""
    chosen[t.index] = choice
    site, slots, _forced, _over = choice
    if site is None:
        return
    q = t.power_kw * ledger.pue[site]
    home = int(sites[0])  # where it would run without Suandian: its first allowed site
    exp_g, exp_gf = ledger.emissions(site, slots, q)
    if home == site and int(slots[0]) == t.earliest and len(slots) == slots[-1] - slots[0] + 1:
        now_g, now_gf = exp_g, exp_gf
    else:
        now_g, now_gf = ledger.emissions(home, np.arange(t.earliest, t.earliest + t.n),
                                         t.power_kw * ledger.pue[home])
    ledger.commit(site, slots, q, np.asarray(t.demand.resources, dtype=float))
    figures[t.index] = (exp_g, exp_gf, now_g, now_gf, q, home)


def _choose_window(
    ledger: _Ledger, params: PlanParams, t: _Job, sites: np.ndarray,
    rows: slice | np.ndarray, horizon: int,
) -> tuple[int | None, np.ndarray, bool, bool]:
    """Best contiguous window: (site, slots, forced, oversubscribed)."""
    job = t.demand
    forced = t.forced
    first = t.earliest
    fixed = forced or job.policy != "Optimize"
    last = first if fixed else max(first, min(t.latest, horizon - 1))
    starts = last - first + 1
    a, b = first, last + t.n
    q = (t.power_kw * ledger.pue[rows])[:, None]
    request = np.asarray(job.resources, dtype=float)
    u50 = scoring.green_used(q, ledger.green50[rows, a:b])
    n_bad: FloatArray | None = None  # infeasible slots per window; None: room everywhere
    if not ledger.room_everywhere(rows, request, q[:, 0]):
        bad = scoring.infeasible_slots(q - u50, ledger.imports[rows, a:b],
                                       ledger.capacity[rows, :, a:b], request)
        n_bad = scoring.window_sums(bad, t.n, starts)
    if job.policy == "RunNow":
        if n_bad is None:
            return int(sites[0]), np.arange(a, a + t.n), True, False
        ok = np.flatnonzero(n_bad[:, 0] == 0)
        pick = int(ok[0]) if ok.size else int(np.argmin(n_bad[:, 0]))
        return int(sites[pick]), np.arange(a, a + t.n), True, not ok.size
    u10 = scoring.green_used(q, ledger.green10[rows, a:b]) if params.risk_aversion else u50
    cost = scoring.window_sums(
        scoring.slot_cost(q, u50, u10, ledger.carbon_h[rows, a:b], params.risk_aversion),
        t.n, starts)
    if params.delay_penalty_g_per_kwh_h > 0:
        cost += (params.delay_penalty_g_per_kwh_h * t.n * ledger.h) * q * ledger.delay_h[
            first:last + 1]
    total = cost if n_bad is None else np.where(n_bad == 0, cost, _INF)
    if total.size == 0:
        return None, np.zeros(0, dtype=int), False, False
    if job.min_green_fraction > 0 and not forced:
        gf = scoring.window_sums(u50, t.n, starts) / (q * t.n)
        meets = np.where(gf >= job.min_green_fraction - 1e-9, total, _INF)
        if np.isfinite(meets).any():
            total = meets
        else:  # wait to the latest start (re-planned each round until then)
            total = np.where(np.arange(first, last + 1)[None, :] == last, total, _INF)
    best = int(total.argmin())
    if total.flat[best] < _INF:
        s, k = divmod(best, total.shape[1])
        return int(sites[s]), np.arange(first + k, first + k + t.n), forced, False
    if forced and n_bad is not None:  # deadline guarantee: start where fewest slots are over
        s = int(np.argmin(n_bad[:, 0]))
        return int(sites[s]), np.arange(first, first + t.n), True, True
    return None, np.zeros(0, dtype=int), False, False


def _choose_slots(
    ledger: _Ledger, params: PlanParams, t: _Job, sites: np.ndarray, rows: slice | np.ndarray,
) -> tuple[int | None, np.ndarray, bool, bool]:
    """Interruptible job: the site whose ``n`` cheapest feasible slots cost least."""
    a, b = t.earliest, min(t.end, ledger.green50.shape[1])
    if b - a <= t.n:  # no slack left: run every remaining slot, now
        return _choose_window(ledger, params, _forced(t), sites, rows, ledger.width)
    q = (t.power_kw * ledger.pue[sites])[:, None]
    u50 = scoring.green_used(q, ledger.green50[rows, a:b])
    u10 = scoring.green_used(q, ledger.green10[rows, a:b])
    request = np.asarray(t.demand.resources, dtype=float)
    cost = scoring.slot_cost(q, u50, u10, ledger.carbon_h[rows, a:b], params.risk_aversion)
    if not ledger.room_everywhere(rows, request, q[:, 0]):
        bad = scoring.infeasible_slots(q - u50, ledger.imports[rows, a:b],
                                       ledger.capacity[rows, :, a:b], request)
        cost = np.where(bad > 0, _INF, cost)
    cost = cost + params.delay_penalty_g_per_kwh_h * q * ledger.h * ledger.delay_h[a:b]
    sums, idx = scoring.cheapest_slots(cost, t.n)
    if t.demand.min_green_fraction > 0:
        green = np.take_along_axis(u50, idx, axis=1).sum(axis=1) / (q[:, 0] * t.n)
        sums = np.where(green >= t.demand.min_green_fraction - 1e-9, sums, _INF)
    if not np.isfinite(sums).any():
        # nothing meets the limits or the green floor: hold the latest possible slots
        return _choose_window(ledger, params, _at_latest(t, b), sites, rows, ledger.width)
    s = int(np.argmin(sums))
    return int(sites[s]), np.sort(idx[s] + a), False, False


def _forced(t: _Job) -> _Job:
    return _Job(t.index, t.demand, t.n, t.power_kw, t.earliest, t.earliest, t.end,
                t.latest_start, True)


def _at_latest(t: _Job, end: int) -> _Job:
    latest = max(t.earliest, end - t.n)
    return _Job(t.index, t.demand, t.n, t.power_kw, latest, latest, t.end, t.latest_start,
                latest == t.earliest)


def _undecided(snap: Snapshot, t: _Job) -> JobDecision:
    if t.demand.allowed_sites == ():
        why = "no site matches its sites and siteSelector"
    elif t.earliest >= snap.slots:
        why = "its earliest start is beyond the forecast horizon"
    else:
        why = "no allowed site has room or grid import for it"

    return JobDecision(
        key=t.demand.key, site=None, site_index=None, start_slot=None, planned_start=None,
        latest_start=t.latest_start, slots=(), windows=(), start_now=False,
        node_preferences=(), expected_emissions_g=0.0, run_now_emissions_g=0.0,
        expected_green_fraction=0.0, energy_kwh=t.demand.power_w / 1000.0
        * t.demand.duration.total_seconds() / 3600.0,
        reason=f"not placed yet: {why}; re-planned each round, starts by "
               f"{t.latest_start:%Y-%m-%d %H:%M} UTC",
    )


def _decided(
    snap: Snapshot, t: _Job, site: int, slots: np.ndarray, forced: bool, over: bool,
    figures: tuple[float, float, float, float, float, int],
    prefs: tuple[tuple[str, int], ...],
) -> JobDecision:
    exp_g, exp_gf, now_g, now_gf, q, home = figures
    start = int(slots[0])
    windows = _windows(snap, slots)
    reason = explain(snap, t.demand, site, slots, start - t.earliest, forced, over,
                     exp_gf, now_gf, now_g - exp_g, t.latest_start, home)
    return JobDecision(
        key=t.demand.key, site=snap.sites[site].name, site_index=site, start_slot=start,
        planned_start=snap.time_of(start), latest_start=t.latest_start,
        slots=tuple(slots.tolist()), windows=windows, start_now=start == 0,
        node_preferences=prefs, expected_emissions_g=exp_g, run_now_emissions_g=now_g,
        expected_green_fraction=exp_gf, energy_kwh=q * len(slots) * snap.slot_hours,
        reason=reason, forced=forced, oversubscribed=over,
    )


def _windows(snap: Snapshot, slots: np.ndarray) -> tuple[tuple[datetime, datetime], ...]:
    """Contiguous runs of slots as (start, end) times."""
    if slots.size == 0:
        return ()
    if int(slots[-1]) - int(slots[0]) == slots.size - 1:
        return ((snap.time_of(int(slots[0])), snap.time_of(int(slots[-1]) + 1)),)
    breaks = np.flatnonzero(np.diff(slots) > 1)
    firsts = np.concatenate([[slots[0]], slots[breaks + 1]])
    lasts = np.concatenate([slots[breaks], [slots[-1]]])
    return tuple((snap.time_of(int(f)), snap.time_of(int(e) + 1))
                 for f, e in zip(firsts, lasts, strict=True))


def _node_preferences(
    snap: Snapshot, params: PlanParams, terms: list[_Job],
    chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]],
) -> dict[int, tuple[tuple[str, int], ...]]:
    """Rank each site's nodes for the jobs placed there, one vectorised call per site."""
    if not snap.nodes or params.node_preferences <= 0:
        return {}
    by_site: dict[int, list[int]] = {}
    for index, (site, _slots, _f, _o) in chosen.items():
        if site is not None:
            by_site.setdefault(site, []).append(index)
    nodes_of: dict[int, list[int]] = {}
    for m, node in enumerate(snap.nodes):
        nodes_of.setdefault(node.site, []).append(m)
    out: dict[int, tuple[tuple[str, int], ...]] = {}
    gpu_col = [r for r, name in enumerate(snap.resources) if name.endswith("/gpu")]
    for site, jobs in by_site.items():
        limit = params.node_preference_site_limit
        members = [snap.nodes[m] for m in nodes_of.get(site, [])][:limit]
        reqs = np.stack([_pod_request(terms[j].demand) for j in jobs])
        shapes, which = np.unique(reqs, axis=0, return_inverse=True)  # rank each shape once
        wants_gpu = shapes[:, gpu_col].sum(axis=1) > 0 if gpu_col else np.zeros(len(shapes),
                                                                                 bool)
        ranked = rank_nodes(members, shapes, wants_gpu, params.node_preferences)
        for j, w in zip(jobs, which.ravel(), strict=True):
            out[j] = ranked[int(w)]
    return out


def _pod_request(job: JobDemand) -> FloatArray:
    pod = job.pod_resources if job.pod_resources is not None else job.resources
    return np.asarray(pod, dtype=float)

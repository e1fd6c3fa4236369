"""One job's choice against what the jobs before it left, and its commitment.

:func:`decide` scores every allowed site × start of a job (:func:`choose_window`: one
contiguous run) or, for an interruptible job, each site's cheapest feasible slots
(:func:`choose_slots`), against the supply, import and capacity left in the
:class:`~suandian.planner.ledger.Ledger`; :func:`record` commits the choice there and
works out the figures its decision reports. The order of jobs and the passes over them
are :mod:`suandian.planner.core`'s.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from suandian.planner import scoring
from suandian.planner.incumbents import favour_held_window, keep_held_slots
from suandian.planner.ledger import Ledger
from suandian.planner.model import FloatArray, PlanParams
from suandian.planner.terms import Terms, before_data, moved_g, sites_of, transfer_g

__all__ = ["Choice", "Figures", "choose_slots", "choose_window", "decide", "delaying",
           "record"]

Choice = tuple[int | None, np.ndarray, bool, bool]
"""A job's choice: its site (None: placed nowhere), its slots, whether it was forced to
start now, whether it is oversubscribed (forced where there is no room)."""
Figures = tuple[float, float, float, float, float, int]
"""What a recorded choice reports: expected grams and green share, the same had it run
at once at its home, the facility kW it committed, its home site."""

_INF = math.inf
_LAZY_TRIES = 4  # cheapest windows checked one by one before masking them all


def decide(
    ledger: Ledger, params: PlanParams, t: Terms, all_sites: np.ndarray, horizon: int,
    chosen: dict[int, Choice],
    figures: dict[int, Figures],
) -> None:
    """Choose for one job against what is left, record its figures, commit it."""
    sites = sites_of(t, all_sites)
    rows: slice | np.ndarray = slice(None) if t.demand.allowed_sites is None else sites
    if t.earliest >= horizon or sites.size == 0:
        choice: Choice = (
            None, np.zeros(0, dtype=int), False, False)
    elif t.demand.interruptible and t.demand.policy == "Optimize" and not t.forced:
        choice = choose_slots(ledger, params, t, sites, rows)
    else:
        choice = choose_window(ledger, params, t, sites, rows, horizon)
    record(ledger, t, sites, choice, chosen, figures)


def record(
    ledger: Ledger, t: Terms, sites: np.ndarray,
    choice: Choice,
    chosen: dict[int, Choice],
    figures: dict[int, Figures],
) -> None:
    """Keep a choice, work out its figures against what is left, and commit it."""
    if t.expected and choice[3]:  # no room: expected work never oversubscribes a site
        choice = (None, np.zeros(0, dtype=int), False, False)
    chosen[t.index] = choice
    site, slots, _forced, _over = choice
    if site is None:
        return
    if t.expected:  # room held for work to come, none of the green supply
        ledger.reserve(t.index, site, slots, t.power_kw * ledger.pue[site],
                       t.request if t.takes_capacity else None)
        figures[t.index] = (0.0, 0.0, 0.0, 0.0, 0.0, int(sites[0]))
        return
    q = t.power_kw * ledger.pue[site]
    home = int(sites[0])  # where it would run without Suandian: its first allowed site
    at_once = home == site and int(slots[0]) == t.earliest and (
        len(slots) == int(slots[-1]) - int(slots[0]) + 1)
    if not at_once:
        now_g, now_gf = ledger.emissions(home, slice(t.earliest, t.earliest + t.n),
                                         t.power_kw * ledger.pue[home])
    exp_g, exp_gf = ledger.commit(site, slots, q, t.request if t.takes_capacity else None)
    if t.data is not None:  # the transfer's grams: at the chosen start, and at once at home
        exp_g += moved_g(t, ledger.carbon, site, int(slots[0]))
        if not at_once:
            now_g += moved_g(t, ledger.carbon, home, t.earliest)
    if at_once:
        now_g, now_gf = exp_g, exp_gf
    figures[t.index] = (exp_g, exp_gf, now_g, now_gf, q, home)


def choose_window(
    ledger: Ledger, params: PlanParams, t: Terms, sites: np.ndarray,
    rows: slice | np.ndarray, horizon: int,
) -> Choice:
    """Best contiguous window: (site, slots, forced, oversubscribed).

    Feasibility (capacity and grid import in every slot) is checked lazily: the cheapest
    window is found first and only that one is checked. If it fits, it is also the
    cheapest feasible window (the first minimum of the masked costs is the first minimum
    of all costs when that one is unmasked); if not, it is ruled out and the next
    cheapest is checked, a few times, before the per-slot mask over every site and slot
    is computed. On the benchmark's 10,000 jobs the first feasible window is at most the
    third cheapest, so the full mask is almost never needed.
    """
    job = t.demand
    forced = t.forced
    first = t.earliest
    fixed = forced or job.policy != "Optimize"
    last = first if fixed else max(first, min(t.latest, horizon - 1))
    starts = last - first + 1
    a, b = first, last + t.n
    q = t.power_kw * ledger.pue_column[rows]
    if job.policy == "RunNow":
        home = int(sites[0])
        if ledger.fits(home, a, t.n, t.power_kw * ledger.pue[home], t.request_floor):
            return home, np.arange(a, a + t.n), True, False
        n_bad = _bad_windows(ledger, t, rows, q, a, b, starts)
        ok = np.flatnonzero(n_bad[:, 0] == 0)
        pick = int(ok[0]) if ok.size else int(np.argmin(n_bad[:, 0]))
        return int(sites[pick]), np.arange(a, a + t.n), True, not ok.size
    u50 = scoring.green_used(q, ledger.green50[rows, a:b])
    u10 = scoring.green_used(q, ledger.green10[rows, a:b]) if params.risk_aversion else u50
    cost = scoring.window_sums(
        scoring.slot_cost(q, u50, u10, ledger.carbon_h[rows, a:b], params.risk_aversion),
        t.n, starts)
    if delaying(params):
        cost += (ledger.delay_rate_column[rows] * (t.n * ledger.h)) * q * ledger.delay_h[
            first:last + 1]
    if t.data is not None:  # the transfer's grams; no start before the data is there
        cost += transfer_g(t, ledger.carbon, sites, np.arange(first, last + 1))
        cost[before_data(t, sites, first, last + 1)] = _INF
    if t.held is not None:
        favour_held_window(cost, params, t, sites, first, last)
    if cost.size == 0:
        return None, np.zeros(0, dtype=int), False, False
    floor = job.min_green_fraction > 0 and not forced
    green_ok = (scoring.window_sums(u50, t.n, starts) / (q * t.n)
                >= job.min_green_fraction - 1e-9) if floor else None
    for _ in range(_LAZY_TRIES):
        picked = _pick(cost, green_ok, last - first)
        best = int(picked.argmin())
        if not picked.flat[best] < _INF:
            break
        s, k = divmod(best, starts)
        if ledger.fits(int(sites[s]), first + k, t.n, float(q[s, 0]), t.request_floor):
            return int(sites[s]), np.arange(first + k, first + k + t.n), forced, False
        cost[s, k] = _INF  # it does not fit: the next cheapest is the next candidate
    # the cheapest window does not fit: mask every infeasible window and choose again
    n_bad = _bad_windows(ledger, t, rows, q, a, b, starts, u50)
    total = _pick(np.where(n_bad == 0, cost, _INF), green_ok, last - first)
    best = int(total.argmin())
    if total.flat[best] < _INF:
        s, k = divmod(best, starts)
        return int(sites[s]), np.arange(first + k, first + k + t.n), forced, False
    if forced:  # deadline guarantee: start where fewest slots are over
        s = int(np.argmin(n_bad[:, 0]))
        return int(sites[s]), np.arange(first, first + t.n), True, True
    return None, np.zeros(0, dtype=int), False, False


def _pick(total: FloatArray, green_ok: np.ndarray | None, last_k: int) -> FloatArray:
    """``minGreenFraction``: only windows reaching it; if none does (among those still
    possible), only the latest start (the job waits, re-planned each round until then)."""
    if green_ok is None:
        return total
    meets = np.where(green_ok, total, _INF)
    if np.isfinite(meets).any():
        return meets
    held = np.full_like(total, _INF)
    held[:, last_k] = total[:, last_k]
    return held


def _bad_windows(
    ledger: Ledger, t: Terms, rows: slice | np.ndarray, q: FloatArray, a: int, b: int,
    starts: int, u50: FloatArray | None = None,
) -> FloatArray:
    """Infeasible slots in each window of ``t.n`` slots (0: it fits), sites × starts."""
    if u50 is None:
        u50 = scoring.green_used(q, ledger.green50[rows, a:b])
    bad = scoring.infeasible_slots(q - u50, ledger.imports[rows, a:b],
                                   ledger.capacity[rows, :, a:b], t.request)
    return scoring.window_sums(bad, t.n, starts)


def choose_slots(
    ledger: Ledger, params: PlanParams, t: Terms, sites: np.ndarray, rows: slice | np.ndarray,
) -> Choice:
    """Interruptible job: its cheapest slots, or the ones it holds when moving saves too
    little (:func:`~suandian.planner.incumbents.keep_held_slots`)."""
    choice = _cheapest_slots(ledger, params, t, sites, rows)
    if t.held is None:
        return choice
    return keep_held_slots(ledger, params, t, sites, choice)


def _cheapest_slots(
    ledger: Ledger, params: PlanParams, t: Terms, sites: np.ndarray, rows: slice | np.ndarray,
) -> Choice:
    """Interruptible job: the site whose ``n`` cheapest feasible slots cost least.

    As for windows, feasibility is checked lazily when there is no green floor: if the
    cheapest site has room in every slot of the job's range, masking changes nothing for
    it and can only raise the other sites' sums, so the per-slot mask over every site is
    skipped. Otherwise every infeasible slot is masked first.
    """
    a, b = t.earliest, min(t.end, ledger.green50.shape[1])
    if b - a <= t.n:  # no slack left: run every remaining slot, now
        return choose_window(ledger, params, _forced(t), sites, rows, ledger.width)
    q = (t.power_kw * ledger.pue[sites])[:, None]
    u50 = scoring.green_used(q, ledger.green50[rows, a:b])
    u10 = scoring.green_used(q, ledger.green10[rows, a:b])
    cost = scoring.slot_cost(q, u50, u10, ledger.carbon_h[rows, a:b], params.risk_aversion)
    if delaying(params):
        cost = cost + ledger.delay_rate_column[sites] * q * ledger.h * ledger.delay_h[a:b]
    if t.data is not None:  # the transfer's grams spread over the n slots it pays for
        ready = np.clip(t.data.first[sites], a, b - 1)
        cost = np.where(before_data(t, sites, a, b), _INF, cost + np.diagonal(
            transfer_g(t, ledger.carbon, sites, ready))[:, None] / t.n)
    if t.demand.min_green_fraction <= 0:
        s = int(np.argmin(scoring.cheapest_sums(cost, t.n)))
        if ledger.fits(int(sites[s]), a, b - a, float(q[s, 0]), t.request_floor):
            return int(sites[s]), np.sort(scoring.cheapest_of_row(cost[s], t.n) + a), False, False
    bad = scoring.infeasible_slots(q - u50, ledger.imports[rows, a:b],
                                   ledger.capacity[rows, :, a:b], t.request)
    cost = np.where(bad > 0, _INF, cost)
    sums, idx = scoring.cheapest_slots(cost, t.n)
    if t.demand.min_green_fraction > 0:
        green = np.take_along_axis(u50, idx, axis=1).sum(axis=1) / (q[:, 0] * t.n)
        sums = np.where(green >= t.demand.min_green_fraction - 1e-9, sums, _INF)
    if not np.isfinite(sums).any():
        # nothing meets the limits or the green floor: hold the latest possible slots
        return choose_window(ledger, params, _at_latest(t, b), sites, rows, ledger.width)
    s = int(np.argmin(sums))
    return int(sites[s]), np.sort(idx[s] + a), False, False


def delaying(params: PlanParams) -> bool:
    """True when the delay cost is not zero everywhere."""
    return params.delay_penalty_share_h > 0 or params.delay_penalty_g_per_kwh_h > 0


def _forced(t: Terms) -> Terms:
    return replace(t, latest=t.earliest, forced=True)


def _at_latest(t: Terms, end: int) -> Terms:
    latest = max(t.earliest, end - t.n)
    return replace(t, earliest=latest, latest=latest, forced=latest == t.earliest)

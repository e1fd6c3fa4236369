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

BOUNDED = True
"""Find choices by the bounded search where it applies (:func:`_window_bounded`,
:func:`_slots_bounded`); False scores every site and start, as the reference the tests
compare the bounded search with (the plans must be the same)."""

_INF = math.inf
_any_row = np.logical_or.reduce
_least = np.minimum.reduce  # over a 2-D array: one reduction (argmin would copy it first)
_most = np.maximum.reduce
# the least of a small array as ``x[x.argmin()]``: argmin is a method that costs a sixth
# of a ufunc reduction (``np.minimum.reduce``), and finds the same value (NaN included)
_LAZY_TRIES = 4  # cheapest windows checked one by one before masking them all
_NEAR_STARTS = 8  # starts scored first by the bounded search (:func:`_window_bounded`),
_NEAR = 1.25  # at the sites whose bound is within this factor of the least
_WIDER = 4.0  # the next limit when nothing fits within one


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
    pue = ledger.pue_of
    if t.expected:  # room held for work to come, none of the green supply
        ledger.reserve(t.index, site, slots, t.power_kw * pue[site],
                       t.request if t.takes_capacity else None)
        figures[t.index] = (0.0, 0.0, 0.0, 0.0, 0.0, int(sites[0]))
        return
    q = t.power_kw * pue[site]
    home = int(sites[0])  # where it would run without Suandian: its first allowed site
    at_once = home == site and int(slots[0]) == t.earliest and (
        len(slots) == int(slots[-1]) - int(slots[0]) + 1)
    if not at_once:
        now_g, now_gf = ledger.emissions(home, slice(t.earliest, t.earliest + t.n),
                                         t.power_kw * pue[home])
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
        if ledger.fits(home, a, t.n, t.power_kw * ledger.pue_of[home], t.request_floor):
            return home, np.arange(a, a + t.n), True, False
        n_bad = _bad_windows(ledger, t, rows, q, a, b, starts)
        ok = np.flatnonzero(n_bad[:, 0] == 0)
        pick = int(ok[0]) if ok.size else int(np.argmin(n_bad[:, 0]))
        return int(sites[pick]), np.arange(a, a + t.n), True, not ok.size
    if (BOUNDED and t.held is None and t.data is None
            and (forced or job.min_green_fraction <= 0) and delaying(params)
            and ledger.bounds_hold()):
        quick = _window_bounded(ledger, params, t, sites, q, first, starts,
                                isinstance(rows, slice))
        if quick is not None:
            return quick
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


def _window_bounded(
    ledger: Ledger, params: PlanParams, t: Terms, sites: np.ndarray, q: FloatArray,
    first: int, starts: int, rows_all: bool,
) -> Choice | None:
    """:func:`choose_window`'s choice found on the few windows that can be cheapest, or
    None when that cannot be shown (the caller then scores every window).

    Every window's cost is its green shortfall's grams ``W ≥ 0`` plus its delay cost
    ``D_s(k) = r_s·n·h·q_s·d_k``, which grows with the start ``k``: so ``D_s(k)`` bounds
    the cost of every window of site ``s`` from ``k`` on. A guess of the optimum (the
    cheapest-looking site's first window) picks the sites and starts whose bound is
    within it; only those are scored, with the same arithmetic as the full pass, and
    their cheapest feasible window is found as there (lazily, then masked). It is the
    choice of the full pass when every window left out is bounded strictly above its
    cost (the first minimum of all costs is then among the scored ones, in the same
    order): that is checked, not assumed. In the common case (green enough for the job
    at the cheapest-bound site from its earliest start, and room there) it is one
    window, found in a dozen small calls instead of scoring sites × starts.
    """
    n, h = t.n, ledger.h
    factor = ledger.delay_factor(n)  # as scored: (r_s · n·h) · q_s · d_k
    rq = (factor if rows_all else factor[sites]) * q
    bound = rq[:, 0] * ledger.delay_h[first]  # D_s(first): no window of s costs less
    s0 = int(bound.argmin())
    site0, q0 = int(sites[s0]), float(q[s0, 0])
    w = slice(first, first + n)
    green = ledger.green10 if params.risk_aversion else ledger.green50
    # green enough in every slot of its first window (P10 is never above P50): each slot
    # costs exactly 0 and the window exactly its bound, the least of all; with room, it is
    # the choice
    row = green[site0, w]
    if row[row.argmin()] >= q0 and ledger.fits_green(site0, w, _room_floor(t)):
        return site0, np.arange(first, first + n), t.forced, False
    # first the sites and starts whose bound is near the least (where the cheapest window
    # almost always is), then, if what that finds does not bound all the rest, those
    # whose bound is within its cost (a feasible window's: the optimum is among them)
    limit = _NEAR * float(bound[s0])
    k_end = min(starts, _NEAR_STARTS)
    for _ in range(3):
        rows = (bound <= limit).nonzero()[0]  # never empty: bound[s0] <= limit
        column = rq[rows]
        found = _scored(ledger, params, t, sites[rows], q[rows], column, first, k_end)
        slowest = float(column[column.argmin(), 0])  # the least delay rate of those scored
        if found is not None:
            r, k, c = found
            # every site left out bounded above c (those bounded within the limit are
            # in), and every start left out at the sites scored
            if (c <= limit or not np.count_nonzero(bound <= c) > rows.size) and not (
                    k_end < starts
                    and slowest * ledger.delay_h[first + k_end] <= c):
                return int(sites[rows[r]]), np.arange(first + k, first + k + n), t.forced, False
            limit = c  # a feasible window's cost: the optimum is within it
        elif limit > 0 and (k_end < starts or rows.size < bound.size):
            limit *= _WIDER  # nothing fits near the least bound: look wider
        else:
            return None
        # the starts whose bound is within the limit where it grows slowest (a guess:
        # what it leaves out is checked above)
        slowest *= h
        k_end = starts if slowest <= 0 else max(
            k_end, min(starts, int(limit / slowest) - first + 2))
    return None


def _scored(
    ledger: Ledger, params: PlanParams, t: Terms, at: np.ndarray, q: FloatArray,
    rq: FloatArray, first: int, starts: int,
) -> tuple[int, int, float] | None:
    """The first cheapest feasible window among ``starts`` starts from ``first`` at the
    sites ``at`` (``q``, ``rq``: their rows of the job's power and delay factor), scored
    as :func:`choose_window` scores them: ``(row, start offset, cost)``, None if none.

    The first minimum of the costs with every window that does not fit masked, as
    :func:`choose_window` chooses. Capacity is checked first, and nothing is scored when
    no window has room (a quarter of the searches at 100,000 jobs); the grid import only
    where it could bind (``q`` above the import left somewhere)."""
    n = t.n
    b = first + starts + n - 1
    room = ledger.room[at, :, first:b]  # the import left, then the free capacity
    short = scoring.window_sums(_any_row(room[:, 1:] < t.request_floor, axis=1), n, starts)
    if np.count_nonzero(short) == short.size:
        return None
    # both green rows of every site scored in one fancy index and one minimum
    used = np.minimum(q[:, :, None], ledger.green[at, :, first:b])
    u50 = used[:, 0]
    u10 = used[:, 1] if params.risk_aversion else u50
    cost = scoring.window_sums(
        scoring.slot_cost(q, u50, u10, ledger.carbon_h[at, first:b], params.risk_aversion),
        n, starts)
    cost += rq * ledger.delay_h[first:first + starts]
    imports = room[:, 0]
    if float(_least(imports, axis=None)) < float(_most(q, axis=None)):
        # the grid share q - u could exceed it: those windows do not fit either
        grid_short: FloatArray = (q - u50) > imports + 1e-9  # type: ignore[assignment]
        short = np.logical_or(short, scoring.window_sums(grid_short, n, starts))
    total = np.where(short, _INF, cost)
    best = int(total.argmin())
    c = float(total.flat[best])
    if not c < _INF:
        return None
    r, k = divmod(best, starts)
    return r, k, c


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
    if (BOUNDED and t.data is None and t.demand.min_green_fraction <= 0 and delaying(params)
            and (a > 0 or t.n > 1) and ledger.bounds_hold()):
        quick = _slots_bounded(ledger, params, t, sites, q, a, b)
        if quick is not None:
            return quick
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


def _slots_bounded(
    ledger: Ledger, params: PlanParams, t: Terms, sites: np.ndarray, q: FloatArray, a: int,
    b: int,
) -> Choice | None:
    """:func:`_cheapest_slots`'s choice when it can be shown without scoring every site
    and slot, else None. A slot's cost is its shortfall's grams (never negative) plus
    its delay cost ``c_s·d_t`` (``c_s = r_s·q_s·h``), growing with ``t``: where the site
    of least ``c_s`` has green enough for the job in its first ``n`` slots, those cost
    exactly their delay cost and are its cheapest ``n`` (the next slot's delay cost is
    above theirs), and every other site's ``n`` cheapest cost at least ``c_s/c_0`` times
    as much (more than 1 + 1e-9: no rounding of the sums can reverse that). It is then
    the choice, once the job fits there over its whole range, as the full pass asks."""
    n = t.n
    c = (ledger.delay_rate_column[sites] * q) * ledger.h  # as scored, before d_t
    s0 = int(c.argmin())
    c0 = float(c[s0, 0])
    if c0 <= 0 or np.count_nonzero(c <= c0 * (1 + 1e-9)) != 1:
        return None
    site0, q0 = int(sites[s0]), float(q[s0, 0])
    green = ledger.green10 if params.risk_aversion else ledger.green50
    dh = ledger.delay_h
    row = green[site0, a:a + n]
    if row[row.argmin()] < q0 or not c0 * dh[a + n] > c0 * dh[a + n - 1]:
        return None
    if not ledger.fits(site0, a, b - a, q0, t.request_floor):
        return None
    return site0, np.arange(a, a + n), False, False


def _room_floor(t: Terms) -> FloatArray:
    """The job's bar for :meth:`~suandian.planner.ledger.Ledger.fits_green` (set by
    :func:`~suandian.planner.terms.all_terms`; made here for terms made one by one)."""
    if t.room_floor is None:
        t.room_floor = np.concatenate([np.full((1, 1), -1e-9), t.request_floor])
    return t.room_floor


def delaying(params: PlanParams) -> bool:
    """True when the delay cost is not zero everywhere."""
    return params.delay_penalty_share_h > 0 or params.delay_penalty_g_per_kwh_h > 0


def _forced(t: Terms) -> Terms:
    return replace(t, latest=t.earliest, forced=True)


def _at_latest(t: Terms, end: int) -> Terms:
    latest = max(t.earliest, end - t.n)
    return replace(t, earliest=latest, latest=latest, forced=latest == t.earliest)

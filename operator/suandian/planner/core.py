"""``plan(snapshot, params) -> Plan``: place and time every job under shared limits.

Greedy in urgency order over shared, shrinking supply:

1. Running jobs take their green supply first (they draw power whatever we decide).
2. Jobs that must start now (``RunNow``, or latest start reached: the deadline
   guarantee) go next, then the rest by priority (high first) and power (largest
   first: the green supply of each slot is packed as bins are, first-fit decreasing;
   on a grid alone the cleanest hours are worth most to the largest jobs).
3. Each job scores every allowed site × feasible start (or, if interruptible, every
   site's cheapest set of slots) against the supply *left* by the jobs before it, takes
   the cheapest, and its decision consumes that green supply, grid import and capacity:
   the next job sees what is left, so jobs do not herd into the same sunny hour.
4. Jobs left without room are repaired (:mod:`.repair`), then each flexible job is
   placed again with all the others in place, until nothing moves.

The work expected to arrive (:attr:`Snapshot.expected`, :mod:`.arrivals`) is planned
among the jobs as jobs are, holding capacity and grid import but no green supply; it
gives way to any real job without room, gets a repair of its own that may move real jobs
within their windows, and leaves no decision and no load in the plan. When a real job is
left without room all the same, the round is planned again without it.

Durations are planned in whole slots: a job of ``d`` on slots of length ``Δ`` holds
``n = ceil(d/Δ)`` slots at mean power ``P·d/(n·Δ)``, so its energy stays ``P·d``.
Beyond the forecast horizon nothing is known: slots there count as no green at the
site's mean grid intensity (pessimistic), so plans never lean on the unknown.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

import numpy as np

from suandian.planner import repair, scoring
from suandian.planner.incumbents import favour_held_window, hold, keep_held_slots
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
from suandian.planner.reasons import SourceMeans, explain
from suandian.planner.terms import Terms as _Job
from suandian.planner.terms import all_terms as _all_terms
from suandian.planner.terms import sites_of

__all__ = ["plan"]

_INF = math.inf
_LAZY_TRIES = 4  # cheapest windows checked one by one before masking them all


def plan(snapshot: Snapshot, params: PlanParams | None = None) -> Plan:
    """Plan every job of the snapshot. Pure and deterministic: same snapshot, same plan."""
    params = params or PlanParams()
    snap = snapshot
    expected = snap.expected if params.expected_arrivals else ()
    real = len(snap.jobs)  # terms from ``real`` on are expected arrivals, not jobs
    terms = _all_terms(snap, params, snap.jobs + expected if expected else None)
    if expected:
        terms[real:] = [_expected(t) for t in terms[real:]]
    pad = max([t.n for t in terms] + [1])
    ledger = _Ledger.from_snapshot(snap, pad)
    horizon = snap.slots
    all_sites = np.arange(len(snap.sites))
    if _delaying(params):
        ledger.delay_rate = _delay_rate(snap, params, terms, ledger, horizon)
        ledger.delay_rate_column = ledger.delay_rate[:, None]

    for t in terms:
        job = t.demand
        if job.running_site is not None:
            slots = np.arange(0, min(t.n, horizon + pad))
            ledger.commit(job.running_site, slots, t.power_kw * ledger.pue[job.running_site],
                          None)

    pending = [t for t in terms if t.demand.running_site is None]
    # largest power first, with green supply or without: each slot's green supply is
    # packed as a bin is (first-fit decreasing: least slack first left the big jobs the
    # crumbs the small ones left), and on a grid alone a job's cost is its power times
    # its slots' intensity, so the cleanest slots are worth most to the largest jobs
    # (least slack first gave 67% of the optimum's saving on a contended grid-only
    # site, largest first 98%). The repair below keeps the deadlines either way.
    pending.sort(key=lambda t: (not t.forced, -t.demand.priority, -t.power_kw,
                                t.latest - t.earliest, t.demand.key))
    chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]] = {}
    figures: dict[int, tuple[float, float, float, float, float, int]] = {}
    for t in (t for t in pending if t.forced):  # the deadline guarantee comes first
        if not _keep_held_start(ledger, t, all_sites, chosen, figures):
            _decide(ledger, params, t, all_sites, horizon, chosen, figures)
    held = hold(ledger, [t for t in pending if not t.forced], all_sites)
    for t in pending:
        if not t.forced and t.index not in held:
            _decide(ledger, params, t, all_sites, horizon, chosen, figures)
    for t in pending:  # each held decision, with every other job in place
        if t.index in held:
            assert t.held is not None
            where, kw = held[t.index]
            _redecide(ledger, params, t, (where, t.held, False, False), kw, all_sites,
                      horizon, chosen, figures)
    _repair(ledger, params, pending, all_sites, horizon, chosen, figures, real)
    if params.improvement_passes and len(pending) <= params.improvement_max_jobs:
        _improve(ledger, params, pending, all_sites, horizon, chosen, figures)
    if expected:  # forecasts, not jobs: out of the plan, its load and its decisions
        if any(t.index < real and _stranded(t, chosen[t.index], horizon, all_sites)
               for t in pending):  # a job without room: plan the round as if blind
            return plan(snapshot, replace(params, expected_arrivals=False))
        _forget(ledger, [t for t in pending if t.index >= real], chosen, figures)

    prefs = _node_preferences(snap, params, terms, chosen)
    times = [snap.now + snap.slot * k for k in range(ledger.width + 1)]
    sources = SourceMeans(snap)
    decisions = []
    for t in terms:
        if t.index not in chosen:
            continue
        site, slots, forced, over = chosen[t.index]
        if site is None:
            decisions.append(_undecided(snap, t))
        else:
            decisions.append(_decided(snap, t, site, slots, forced, over, figures[t.index],
                                      prefs.get(t.index, ()), times, sources))
    ordered = tuple(decisions)
    return Plan(
        now=snap.now, slot=snap.slot, site_names=snap.site_names, decisions=ordered,
        load_kw=ledger.load[:, :horizon].copy(), green_used_kw=ledger.used[:, :horizon].copy(),
    )


def _keep_held_start(
    ledger: _Ledger, t: _Job, all_sites: np.ndarray,
    chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]],
    figures: dict[int, tuple[float, float, float, float, float, int]],
) -> bool:
    """A job that must start now and holds a decision to start now keeps it if it still
    fits: that place was found together with every other held decision, so keeping it
    leaves theirs free (another site, cheaper now, could be one another job holds).
    True if kept."""
    held, site = t.held, t.held_site
    if held is None or held.size != t.n or int(held[0]) != t.earliest or (
            int(held[-1]) - int(held[0]) + 1 != t.n):
        return False
    sites = sites_of(t, all_sites)
    if site not in sites:
        return False
    if not ledger.fits(site, t.earliest, t.n, t.power_kw * float(ledger.pue[site]),
                       t.request_floor):
        return False
    _record(ledger, t, sites, (site, held, True, False), chosen, figures)
    return True


def _repair(
    ledger: _Ledger, params: PlanParams, pending: list[_Job], all_sites: np.ndarray,
    horizon: int, chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]],
    figures: dict[int, tuple[float, float, float, float, float, int]], real: int,
) -> None:
    """Room for the jobs left without any (placed nowhere, or forced to start where
    there is none), by moving jobs that have not started (:mod:`~suandian.planner.repair`),
    then room for the expected arrivals (terms from ``real`` on) that found none.

    Expected arrivals give way first: when a job is stranded they leave the plan while
    it is repaired and come back only where room is left, since a forecast of work never
    costs a real job its deadline. Then those still without room get a search of their
    own, which may move the real jobs within their windows (to earlier, dearer hours):
    the room tomorrow's work needs is kept while the jobs of today can still give it."""
    if params.repair_work <= 0:
        return
    stranded = [t for t in pending if t.index < real
                and _stranded(t, chosen[t.index], horizon, all_sites)]
    if stranded:
        forecast = [t for t in pending if t.index >= real]
        if forecast:  # out of the way; with the room they held, the greedy choice again
            _forget(ledger, forecast, chosen, figures)
            for t in stranded:
                if chosen[t.index][0] is None:
                    _decide(ledger, params, t, all_sites, horizon, chosen, figures)
            stranded = [t for t in stranded if _stranded(t, chosen[t.index], horizon,
                                                         all_sites)]
        _make_room(ledger, params, pending, stranded, real, all_sites, horizon, chosen,
                   figures)
        for t in forecast:  # then the expected arrivals, where room is left
            _decide(ledger, params, t, all_sites, horizon, chosen, figures)
    waiting = [t for t in pending if t.index >= real and _stranded(
        t, chosen.get(t.index, (None, np.zeros(0, dtype=int), False, False)), horizon,
        all_sites)]
    if waiting:  # jobs waiting for their green floor stay where they wait
        _make_room(ledger, params, pending, waiting, real, all_sites, horizon, chosen,
                   figures, floors=False)


def _make_room(
    ledger: _Ledger, params: PlanParams, pending: list[_Job], stranded: list[_Job],
    real: int, all_sites: np.ndarray, horizon: int,
    chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]],
    figures: dict[int, tuple[float, float, float, float, float, int]], *,
    floors: bool = True,
) -> None:
    """One repair search for ``stranded``, moving placed real jobs (expected arrivals
    stay where they are; ``floors``: jobs with a ``minGreenFraction`` too). Each job
    the search moves is committed again at its new place, the others where they were;
    a stranded job it cannot place stays as it was."""
    for t in stranded:  # oversubscribed: out of the ledger while the search runs
        site, slots, _forced, over = chosen.get(t.index, (None, None, False, False))
        if over and site is not None and slots is not None:
            _unplace(ledger, t, site, slots, figures[t.index][4])
    if not stranded:
        return
    ids = {t.index for t in stranded}
    placed = [(t, (site, slots), figures[t.index][4]) for t in pending
              if t.index < real and t.index not in ids and t.index in chosen
              and (floors or t.demand.min_green_fraction <= 0)
              and (site := chosen[t.index][0]) is not None
              for slots in (chosen[t.index][1],)]
    places, released = repair.repair(ledger, params, stranded, placed, all_sites, horizon)
    for t, _old, _kw in released:
        site, slots = places[t.index]
        _record(ledger, t, sites_of(t, all_sites), (site, slots, chosen[t.index][2], False),
                chosen, figures)
    for t in stranded:
        if t.index in places:
            site, slots = places[t.index]
            _record(ledger, t, sites_of(t, all_sites), (site, slots, t.forced, False),
                    chosen, figures)
        elif t.index in chosen and chosen[t.index][3]:  # still nowhere with room
            _record(ledger, t, sites_of(t, all_sites), chosen[t.index], chosen, figures)


def _forget(
    ledger: _Ledger, terms: list[_Job],
    chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]],
    figures: dict[int, tuple[float, float, float, float, float, int]],
) -> None:
    """Take ``terms`` out of the plan: their supply, import and capacity back to the
    ledger, no decision."""
    for t in terms:
        site, slots, _forced, _over = chosen.pop(t.index, (None, None, False, False))
        if site is not None and slots is not None:
            figures.pop(t.index)
            _unplace(ledger, t, site, slots, 0.0)


def _unplace(ledger: _Ledger, t: _Job, site: int, slots: np.ndarray, kw: float) -> None:
    """Undo :func:`_record` of ``t`` (committed at ``kw``, or reserved if expected)."""
    request = t.request if t.takes_capacity else None
    if t.expected:
        ledger.unreserve(t.index, site, slots, request)
    else:
        ledger.release(site, slots, kw, request)


def _stranded(t: _Job, choice: tuple[int | None, np.ndarray, bool, bool], horizon: int,
              all_sites: np.ndarray) -> bool:
    """Placed nowhere although it could be (an allowed site, a start within the
    horizon), or forced to start where there is no room."""
    if choice[3]:
        return True
    return choice[0] is None and t.earliest < horizon and sites_of(t, all_sites).size > 0


def _redecide(
    ledger: _Ledger, params: PlanParams, t: _Job,
    place: tuple[int | None, np.ndarray, bool, bool], kw: float, all_sites: np.ndarray,
    horizon: int, chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]],
    figures: dict[int, tuple[float, float, float, float, float, int]],
) -> bool:
    """Take a job out of ``place`` (committed at ``kw``) and decide it again with every
    other job in place, ``place`` as its incumbent: it moves only when that saves more
    than the move threshold, or ``place`` no longer fits. True if it moved."""
    site, slots = place[0], place[1]
    assert site is not None
    _unplace(ledger, t, site, slots, kw)
    _decide(ledger, params, replace(t, held_site=site, held=slots), all_sites, horizon,
            chosen, figures)
    after = chosen[t.index]
    if after[0] is None:
        # it fitted where it was: never unplace it, unless its place no longer reaches
        # its minGreenFraction (it then waits, re-planned each round, as any job whose
        # floor no window meets; the deadline guarantee starts it by its latest start)
        floor = t.demand.min_green_fraction
        if floor <= 0 or t.forced or ledger.emissions(site, slots, kw)[1] >= floor - 1e-9:
            _record(ledger, t, sites_of(t, all_sites), place, chosen, figures)
            return False
        return True
    return after[0] != site or not np.array_equal(after[1], slots)


def _improve(
    ledger: _Ledger, params: PlanParams, pending: list[_Job], all_sites: np.ndarray,
    horizon: int, chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]],
    figures: dict[int, tuple[float, float, float, float, float, int]],
) -> None:
    """Coordinate descent: each flexible job re-placed with every other job in place (its
    marginal emissions are then exact, so the total never rises), its place so far as
    its incumbent; until a pass moves nobody, at most ``improvement_passes``. The plan is
    then one that the next round, same inputs and these decisions held, leaves as is."""
    # PlaceOnly jobs too (their site, at their fixed start): a held one is redecided
    # so in the next round, and the plan must be what that round leaves as it is
    flexible = [t for t in pending if t.demand.policy != "RunNow" and not t.forced
                and t.index in chosen and chosen[t.index][0] is not None]
    for _ in range(params.improvement_passes):
        moved = False
        for t in flexible:
            if chosen[t.index][0] is None:  # left below its green floor by a pass: waits
                continue
            moved |= _redecide(ledger, params, t, chosen[t.index], figures[t.index][4],
                               all_sites, horizon, chosen, figures)
        if not moved:
            return


def _decide(
    ledger: _Ledger, params: PlanParams, t: _Job, all_sites: np.ndarray, horizon: int,
    chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]],
    figures: dict[int, tuple[float, float, float, float, float, int]],
) -> None:
    """Choose for one job against what is left, record its figures, commit it."""
    sites = sites_of(t, all_sites)
    rows: slice | np.ndarray = slice(None) if t.demand.allowed_sites is None else sites
    if t.earliest >= horizon or sites.size == 0:
        choice: tuple[int | None, np.ndarray, bool, bool] = (
            None, np.zeros(0, dtype=int), False, False)
    elif t.demand.interruptible and t.demand.policy == "Optimize" and not t.forced:
        choice = _choose_slots(ledger, params, t, sites, rows)
    else:
        choice = _choose_window(ledger, params, t, sites, rows, horizon)
    _record(ledger, t, sites, choice, chosen, figures)


def _record(
    ledger: _Ledger, t: _Job, sites: np.ndarray,
    choice: tuple[int | None, np.ndarray, bool, bool],
    chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]],
    figures: dict[int, tuple[float, float, float, float, float, int]],
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
    if at_once:
        now_g, now_gf = exp_g, exp_gf
    figures[t.index] = (exp_g, exp_gf, now_g, now_gf, q, home)


def _choose_window(
    ledger: _Ledger, params: PlanParams, t: _Job, sites: np.ndarray,
    rows: slice | np.ndarray, horizon: int,
) -> tuple[int | None, np.ndarray, bool, bool]:
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
    if _delaying(params):
        cost += (ledger.delay_rate_column[rows] * (t.n * ledger.h)) * q * ledger.delay_h[
            first:last + 1]
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
    ledger: _Ledger, t: _Job, rows: slice | np.ndarray, q: FloatArray, a: int, b: int,
    starts: int, u50: FloatArray | None = None,
) -> FloatArray:
    """Infeasible slots in each window of ``t.n`` slots (0: it fits), sites × starts."""
    if u50 is None:
        u50 = scoring.green_used(q, ledger.green50[rows, a:b])
    bad = scoring.infeasible_slots(q - u50, ledger.imports[rows, a:b],
                                   ledger.capacity[rows, :, a:b], t.request)
    return scoring.window_sums(bad, t.n, starts)


def _choose_slots(
    ledger: _Ledger, params: PlanParams, t: _Job, sites: np.ndarray, rows: slice | np.ndarray,
) -> tuple[int | None, np.ndarray, bool, bool]:
    """Interruptible job: its cheapest slots, or the ones it holds when moving saves too
    little (:func:`~suandian.planner.incumbents.keep_held_slots`)."""
    choice = _cheapest_slots(ledger, params, t, sites, rows)
    if t.held is None:
        return choice
    return keep_held_slots(ledger, params, t, sites, choice)


def _cheapest_slots(
    ledger: _Ledger, params: PlanParams, t: _Job, sites: np.ndarray, rows: slice | np.ndarray,
) -> tuple[int | None, np.ndarray, bool, bool]:
    """Interruptible job: the site whose ``n`` cheapest feasible slots cost least.

    As for windows, feasibility is checked lazily when there is no green floor: if the
    cheapest site has room in every slot of the job's range, masking changes nothing for
    it and can only raise the other sites' sums, so the per-slot mask over every site is
    skipped. Otherwise every infeasible slot is masked first.
    """
    a, b = t.earliest, min(t.end, ledger.green50.shape[1])
    if b - a <= t.n:  # no slack left: run every remaining slot, now
        return _choose_window(ledger, params, _forced(t), sites, rows, ledger.width)
    q = (t.power_kw * ledger.pue[sites])[:, None]
    u50 = scoring.green_used(q, ledger.green50[rows, a:b])
    u10 = scoring.green_used(q, ledger.green10[rows, a:b])
    cost = scoring.slot_cost(q, u50, u10, ledger.carbon_h[rows, a:b], params.risk_aversion)
    if _delaying(params):
        cost = cost + ledger.delay_rate_column[sites] * q * ledger.h * ledger.delay_h[a:b]
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
        return _choose_window(ledger, params, _at_latest(t, b), sites, rows, ledger.width)
    s = int(np.argmin(sums))
    return int(sites[s]), np.sort(idx[s] + a), False, False


def _delay_rate(snap: Snapshot, params: PlanParams, terms: list[_Job], ledger: _Ledger,
                horizon: int) -> FloatArray:
    """Each site's delay cost (:func:`~suandian.planner.scoring.delay_rate`), with the
    pressure of the waiting jobs on its capacity over the horizon."""
    n_sites = len(snap.sites)
    demand = np.zeros((n_sites, len(snap.resources)))
    if (ledger.green50[:, :horizon] > 0).any(axis=1).all():  # no weight needs the pressure
        return scoring.delay_rate(ledger.carbon[:, :horizon], ledger.green50[:, :horizon],
                                  np.zeros(n_sites), params.delay_penalty_share_h,
                                  params.delay_penalty_g_per_kwh_h)
    rows: list[int] = []
    asks: list[FloatArray] = []
    for t in terms:
        if t.demand.running_site is not None or not t.takes_capacity:
            continue
        allowed = t.demand.allowed_sites
        if allowed is None:
            demand += t.request * (t.n / n_sites)  # shared evenly by every site
        elif allowed:
            ask = t.request * (t.n / len(allowed))
            rows.extend(allowed)
            asks.extend([ask] * len(allowed))
    if rows:
        np.add.at(demand, np.asarray(rows), np.asarray(asks))
    pressure = scoring.capacity_pressure(demand, ledger.capacity[:, :, :horizon])
    return scoring.delay_rate(ledger.carbon[:, :horizon], ledger.green50[:, :horizon],
                              pressure, params.delay_penalty_share_h,
                              params.delay_penalty_g_per_kwh_h)


def _delaying(params: PlanParams) -> bool:
    """True when the delay cost is not zero everywhere."""
    return params.delay_penalty_share_h > 0 or params.delay_penalty_g_per_kwh_h > 0


def _expected(t: _Job) -> _Job:
    """An expected arrival as the plan holds it: never forced (nothing is due for work
    that has not arrived). It chooses its slots as a job of its power would, and holds
    their capacity and grid import but none of their green supply (:func:`_record`):
    the room it keeps is for deadlines; the green supply goes to the jobs that exist."""
    return replace(t, forced=False, expected=True)


def _forced(t: _Job) -> _Job:
    return replace(t, latest=t.earliest, forced=True)


def _at_latest(t: _Job, end: int) -> _Job:
    latest = max(t.earliest, end - t.n)
    return replace(t, earliest=latest, latest=latest, forced=latest == t.earliest)


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
    prefs: tuple[tuple[str, int], ...], times: list[datetime], sources: SourceMeans,
) -> JobDecision:
    exp_g, exp_gf, now_g, now_gf, q, home = figures
    listed = slots.tolist()
    start = listed[0]
    windows = _windows(listed, times)
    reason = explain(snap, t.demand, site, slots, start - t.earliest, forced, over,
                     exp_gf, now_gf, now_g - exp_g, t.latest_start, home, sources=sources,
                     listed=listed)
    return JobDecision(
        key=t.demand.key, site=snap.site_names[site], site_index=site, start_slot=start,
        planned_start=times[start], latest_start=t.latest_start,
        slots=tuple(listed), windows=windows, start_now=start == 0,
        node_preferences=prefs, expected_emissions_g=exp_g, run_now_emissions_g=now_g,
        expected_green_fraction=exp_gf, energy_kwh=q * len(slots) * snap.slot_hours,
        reason=reason, forced=forced, oversubscribed=over,
    )


def _windows(slots: list[int], times: list[datetime]
             ) -> tuple[tuple[datetime, datetime], ...]:
    """Contiguous runs of slots as (start, end) times (``times[k]``: start of slot k)."""
    if not slots:
        return ()
    if slots[-1] - slots[0] == len(slots) - 1:
        return ((times[slots[0]], times[slots[-1] + 1]),)
    out = []
    first = prev = slots[0]
    for k in slots[1:]:
        if k != prev + 1:
            out.append((times[first], times[prev + 1]))
            first = k
        prev = k
    out.append((times[first], times[prev + 1]))
    return tuple(out)


def _node_preferences(
    snap: Snapshot, params: PlanParams, terms: list[_Job],
    chosen: dict[int, tuple[int | None, np.ndarray, bool, bool]],
) -> dict[int, tuple[tuple[str, int], ...]]:
    """Rank each site's nodes for the jobs placed there, one vectorised call per site."""
    if not snap.nodes or not terms or params.node_preferences <= 0:
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
    # rank each distinct pod shape once per site: shapes are found once for all jobs
    pods = np.stack([_pod_request(t.demand) for t in terms])
    shapes, shape_of = np.unique(pods, axis=0, return_inverse=True)
    shape_of = shape_of.ravel()
    wants_gpu = shapes[:, gpu_col].sum(axis=1) > 0 if gpu_col else np.zeros(len(shapes), bool)
    for site, jobs in by_site.items():
        limit = params.node_preference_site_limit
        members = [snap.nodes[m] for m in nodes_of.get(site, [])][:limit]
        present, which = np.unique(shape_of[jobs], return_inverse=True)
        ranked = rank_nodes(members, shapes[present], wants_gpu[present],
                            params.node_preferences)
        for j, w in zip(jobs, which.ravel().tolist(), strict=True):
            out[j] = ranked[w]
    return out


def _pod_request(job: JobDemand) -> FloatArray:
    pod = job.pod_resources if job.pod_resources is not None else job.resources
    return np.asarray(pod, dtype=float)

"""Exchange: a job into a cheaper place that is full, the jobs in its way elsewhere.

The greedy pass and the improvement passes (each job re-placed with all others where
they are) stop at a plan in which no single job can move to a cheaper place *with
room*. Under contention the cheaper places are full, and the optimum often gives the
clean hours to other jobs than the greedy order did: a long job the whole clean valley,
the short jobs that held part of it an hour earlier. No one-job move sees that trade.
So, for each flexible job, largest first, :func:`exchange` tries its cheapest places
that lack room (an ejection move):

1. the job is taken out and the fewest jobs in the way of a candidate place are taken
   out too (the one covering most of the slots still without room first, the smaller
   of two alike: it loses least by moving), until the job fits there;
2. it is committed there, and each job taken out is placed again, largest first, where
   it is cheapest now (:func:`~suandian.planner.choose.decide`), its old place's slots
   included;
3. the result is kept when the plan's cost (risk-weighted emissions of every site and
   slot, and the delay cost of the jobs moved) falls by more than the move thresholds
   of the jobs that leave a decision they held from the last round
   (:func:`~suandian.planner.scoring.move_threshold`); otherwise all is undone.

A job taken out that finds no room again undoes the move, so no exchange loses a job
or raises the total: the deadline guarantee and the improvement passes' promise hold.
Only ``Optimize`` jobs that are not forced, not oversubscribed, not expected
arrivals, without a green floor and without data to move take part (the others keep
their places). Work is counted, not timed: ``PlanParams.exchange_work`` per round,
each place tried charged ``1 + jobs/100`` (it scans the jobs in the way), at most
``PlanParams.exchange_ejections`` jobs taken out for one, so plans stay deterministic
and a round's latency bounded.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import numpy as np

from suandian.planner import scoring
from suandian.planner.choose import Choice, Figures, decide, record
from suandian.planner.incumbents import runs
from suandian.planner.ledger import Ledger
from suandian.planner.model import FloatArray, PlanParams
from suandian.planner.terms import Terms, sites_of, slotted

__all__ = ["delay_of", "exchange", "fits", "plan_cost", "unplace"]

_CANDIDATES = 3  # cheapest places without room tried per job and pass
_NOWHERE: Choice = (None, np.zeros(0, dtype=int), False, False)
_REL = 1e-9  # a saving smaller than this share of the plan's cost is rounding noise


def exchange(
    ledger: Ledger, params: PlanParams, pending: list[Terms], all_sites: np.ndarray,
    horizon: int, chosen: dict[int, Choice], figures: dict[int, Figures],
    budget: list[int],
) -> bool:
    """Ejection moves until a pass over the jobs makes none or ``budget[0]`` (places
    tried, decremented) is used up. True if anything moved (the caller then runs the
    improvement passes again, and this again, until neither moves a job)."""
    movable = [t for t in pending if _movable(t, chosen)]
    if len(movable) < 2 or budget[0] <= 0:
        return False
    movable.sort(key=lambda t: (-t.power_kw, t.index))
    cost = 1 + len(movable) // 100  # a try scans the jobs in the way: charged by their number
    moved = False
    while budget[0] > 0:
        passed = False
        for t in movable:
            if not _movable(t, chosen):
                continue
            for place in _candidates(ledger, params, t, all_sites, horizon, chosen, figures):
                if budget[0] <= 0:
                    return moved
                done = False
                for small in (False, True):
                    budget[0] -= cost
                    if _try(ledger, params, t, place, movable, all_sites, horizon, chosen,
                            figures, small):
                        done = passed = moved = True
                        break
                if done:
                    break
        if not passed:
            break
    return moved


def _movable(t: Terms, chosen: dict[int, Choice]) -> bool:
    choice = chosen.get(t.index)
    return (choice is not None and choice[0] is not None and not choice[3]
            and t.demand.policy == "Optimize" and not t.forced and not t.expected
            and t.demand.running_site is None and t.demand.min_green_fraction <= 0
            and t.data is None)


def _candidates(
    ledger: Ledger, params: PlanParams, t: Terms, all_sites: np.ndarray, horizon: int,
    chosen: dict[int, Choice], figures: dict[int, Figures],
) -> list[tuple[int, np.ndarray]]:
    """The job's cheapest places that have no room for it now and would cost it less
    than where it is by more than ``move_threshold_g`` (a trade for fewer grams is not
    worth the work), at most :data:`_CANDIDATES`, cheapest first. Scored with the job
    out of the ledger (its own green supply is its to take again), as :func:`decide`
    scores them."""
    site0, slots0 = chosen[t.index][0], chosen[t.index][1]
    assert site0 is not None
    kw = figures[t.index][4]
    unplace(ledger, t, site0, slots0, kw)
    sites = sites_of(t, all_sites)
    q = (t.power_kw * ledger.pue[sites])[:, None]
    first = t.earliest
    is_slotted = slotted(t, ledger.width)
    b = min(t.end, ledger.width) if is_slotted else max(first, min(t.latest, horizon - 1)) + t.n
    u50 = scoring.green_used(q, ledger.green50[sites, first:b])
    u10 = scoring.green_used(q, ledger.green10[sites, first:b])
    per = scoring.slot_cost(q, u50, u10, ledger.carbon_h[sites, first:b],
                            params.risk_aversion)
    per = per + ledger.delay_rate[sites][:, None] * q * ledger.h * ledger.delay_h[first:b]
    rows0 = np.flatnonzero(sites == site0)
    if not rows0.size or int(slots0[0]) < first or int(slots0[-1]) >= b:
        record(ledger, t, sites, chosen[t.index], chosen, figures)
        return []  # a place the job could not choose now: its own rules keep or move it
    now = float(per[int(rows0[0]), slots0 - first].sum())
    places: list[tuple[float, int, np.ndarray]] = []
    if is_slotted:
        sums, idx = scoring.cheapest_slots(per, t.n)
        for r in np.argsort(sums, kind="stable")[:_CANDIDATES]:
            places.append((float(sums[r]), int(sites[r]), np.sort(idx[r]) + first))
    else:
        starts = b - t.n - first + 1
        cost = scoring.window_sums(per, t.n, starts).ravel()
        for flat in np.argsort(cost, kind="stable")[:4 * _CANDIDATES]:
            r, k = divmod(int(flat), starts)
            places.append((float(cost[flat]), int(sites[r]),
                           np.arange(first + k, first + k + t.n)))
    bar = now - max(params.move_threshold_g, 1e-9 * abs(now), 1e-9)
    out = [(site, slots) for c, site, slots in places
           if c < bar and not fits(ledger, t, site, slots)]
    record(ledger, t, sites, chosen[t.index], chosen, figures)
    return out[:_CANDIDATES]


def fits(ledger: Ledger, t: Terms, site: int, slots: np.ndarray) -> bool:
    q = t.power_kw * float(ledger.pue[site])
    return all(ledger.fits(site, a, b - a, q, t.request_floor) for a, b in runs(slots))


def _try(
    ledger: Ledger, params: PlanParams, t: Terms, place: tuple[int, np.ndarray],
    movable: list[Terms], all_sites: np.ndarray, horizon: int,
    chosen: dict[int, Choice], figures: dict[int, Figures], small: bool = False,
) -> bool:
    """One ejection move of ``t`` to ``place``; kept (True) if it saves enough, else
    undone (False) with the ledger, choices and figures as they were."""
    before = plan_cost(ledger, params.risk_aversion)
    saved: dict[int, tuple[Terms, Choice, Figures]] = {}

    def take_out(j: Terms) -> None:
        choice = chosen[j.index]
        saved[j.index] = (j, choice, figures.pop(j.index))
        assert choice[0] is not None
        unplace(ledger, j, choice[0], choice[1], saved[j.index][2][4])
        chosen[j.index] = _NOWHERE

    take_out(t)
    site, slots = place
    evicted: list[Terms] = []
    while not fits(ledger, t, site, slots):
        e = None if len(evicted) >= params.exchange_ejections else _in_the_way(
            ledger, t, site, slots, movable, chosen, saved, small)
        if e is None:
            _undo(ledger, saved, all_sites, chosen, figures)
            return False
        take_out(e)
        evicted.append(e)
    record(ledger, t, sites_of(t, all_sites), (site, slots, False, False), chosen, figures)
    for e in sorted(evicted, key=lambda j: (-j.power_kw, j.index)):
        decide(ledger, params, e, all_sites, horizon, chosen, figures)
        if chosen[e.index][0] is None or chosen[e.index][3]:
            _undo(ledger, saved, all_sites, chosen, figures)
            return False
    delta = plan_cost(ledger, params.risk_aversion) - before + sum(
        delay_of(ledger, j, chosen[j.index]) - delay_of(ledger, j, old)
        for j, old, _ in saved.values())
    bar = sum(scoring.move_threshold(fig[0], params.move_threshold_g,
                                     params.move_threshold_share)
              for j, old, fig in saved.values() if _leaves_held(j, old, chosen[j.index]))
    if delta < -bar - _REL * abs(before):
        return True
    _undo(ledger, saved, all_sites, chosen, figures)
    return False


def _in_the_way(
    ledger: Ledger, t: Terms, site: int, slots: np.ndarray, movable: list[Terms],
    chosen: dict[int, Choice], out: dict[int, tuple[Terms, Choice, Figures]],
    small: bool = False,
) -> Terms | None:
    """The placed job whose removal most helps ``t`` fit at ``place``: the one covering
    most of its slots without room (grid import or a resource short), the smaller power
    of two alike, then the lower index; None if no movable job is there."""
    q = t.power_kw * float(ledger.pue[site])
    grid = q - np.minimum(q, ledger.green50[site, slots])
    short = (grid > ledger.imports[site, slots] + 1e-9) | np.any(
        ledger.capacity[site][:, slots] < t.request_floor, axis=0)
    blocked = slots[short].tolist()
    lo, hi = blocked[0], blocked[-1]
    best: tuple[int, float, int] | None = None
    pick = None
    for j in movable:
        choice = chosen[j.index]
        if choice[0] != site or j.index in out:
            continue
        taken = choice[1]
        a, b = int(taken[0]), int(taken[-1])
        if a > hi or b < lo:
            continue
        if b - a + 1 == taken.size:  # a window: the blocked slots within [a, b]
            covered = bisect_right(blocked, b) - bisect_left(blocked, a)
        else:
            covered = len(set(blocked).intersection(taken.tolist()))
        key = (0 if small else -covered, j.power_kw, j.index)
        if covered and (best is None or key < best):
            best, pick = key, j
    return pick


def _undo(
    ledger: Ledger, saved: dict[int, tuple[Terms, Choice, Figures]],
    all_sites: np.ndarray, chosen: dict[int, Choice], figures: dict[int, Figures],
) -> None:
    """Every job of the move back where it was, its figures as they were."""
    for index, (j, _old, _fig) in saved.items():
        site, slots = chosen[index][0], chosen[index][1]
        if site is not None:
            unplace(ledger, j, site, slots, figures[index][4])
    for index, (j, old, fig) in saved.items():
        record(ledger, j, sites_of(j, all_sites), old, chosen, figures)
        figures[index] = fig


def _leaves_held(j: Terms, old: Choice, new: Choice) -> bool:
    """The job leaves the decision it held from the last round (it was still there)."""
    held = j.held
    return (held is not None and old[0] == j.held_site and np.array_equal(old[1], held)
            and (new[0] != old[0] or not np.array_equal(new[1], old[1])))


def delay_of(ledger: Ledger, j: Terms, choice: Choice) -> float:
    """The delay cost of a job's place, grams: ``r_s · q · h · Σ_slots hours from now``
    (for a window, the choice's ``r_s·q·n·h·hours to its start`` plus a constant)."""
    site, slots = choice[0], choice[1]
    if site is None or not slots.size:
        return 0.0
    q = j.power_kw * float(ledger.pue[site])
    return float(ledger.delay_rate[site]) * q * ledger.h * float(ledger.delay_h[slots].sum())


def plan_cost(ledger: Ledger, risk_aversion: float, held: FloatArray | None = None
              ) -> float:
    """The risk-weighted emissions of everything committed, grams:
    ``Σ_{s,t} c·h · ((1−ρ)·(L − S50)⁺ + ρ·(L − S10)⁺)``, green first at every site and
    slot, as the jobs' costs add up when they are committed one after another. ``held``:
    load (kW per site and slot) to count as well, as the expected arrivals would draw
    where they hold room."""
    load = ledger.load if held is None else ledger.load + held
    over: FloatArray = np.maximum(load - ledger.supply50, 0.0)
    if risk_aversion:
        over10 = np.maximum(load - ledger.supply10, 0.0)
        over = over + risk_aversion * (over10 - over)
    return float(np.vdot(over, ledger.carbon_h))


def unplace(ledger: Ledger, t: Terms, site: int, slots: np.ndarray, kw: float) -> None:
    """Undo :func:`~suandian.planner.choose.record` of ``t`` (committed at ``kw``, or
    reserved if expected)."""
    request = t.request if t.takes_capacity else None
    if t.expected:
        ledger.unreserve(t.index, site, slots, request)
    else:
        ledger.release(site, slots, kw, request)


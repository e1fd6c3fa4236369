"""Repair: room for the jobs a greedy pass left without any, by moving jobs that have not
started to other feasible places within their windows (the deadline guarantee).

The greedy pass places jobs one at a time, each where it is cheapest against what the
jobs before it left. Under contention that can break the free capacity into gaps no
later job fits, although a schedule fitting every job exists: a greedy (or an arrival
order) is not a search. So when jobs are left without room (or forced to start where
there is none), :func:`repair` searches, before the improvement passes, for places of
those jobs and of the placed jobs that compete with them (same site, overlapping time)
at which all of them fit:

- a depth-first search with forward checking: after each placement the feasible places
  of every job still to place are recomputed where they may have changed; a job with
  none left ends the branch at once;
- the job with the fewest feasible places goes next (ties: the nearest latest start, so
  the jobs closest to their latest start are protected first); interruptible jobs,
  which can use any free slots, after every job that needs a contiguous window;
- each job tries its current place first, then the others cheapest first: the first
  solution found keeps every job that can stay where it is, and the improvement passes
  that follow re-optimise the rest without ever unplacing one.

For jobs that run in one contiguous window the search is complete: it tries every
(site, start) pair, so when it ends without a solution within its work budget none
exists with the other jobs where they are. Interruptible jobs are offered a few sets of
slots per site (their current ones, the earliest, the cheapest and the latest feasible
ones), not every subset. The work is bounded by ``PlanParams.repair_work`` (how many
times a job's feasible places are computed), so a round's latency stays bounded when no
solution exists (building a search's items and finding the jobs in the way are charged
to it too, and at most ``PlanParams.repair_jobs`` jobs are moved in all); counted, not
timed, so plans stay deterministic.

Stranded jobs are taken one at a time, the one nearest its latest start first: each
search places it together with those already repaired, so if not all can be placed the
most urgent are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from suandian.planner import scoring
from suandian.planner.ledger import Ledger
from suandian.planner.model import FloatArray, PlanParams
from suandian.planner.terms import Terms, before_data, sites_of, slotted, transfer_g

__all__ = ["Place", "repair"]

Place = tuple[int, np.ndarray]
"""A job's site and its sorted slot indices."""

_FEW = 4  # slot sets offered per site to an interruptible job


class _OutOfWork(Exception):
    """The search used its budget: give up, keep the plan as it was."""


@dataclass(slots=True, eq=False)
class _Item:
    """One job of a search: where it may go, and where it is now."""

    t: Terms
    sites: np.ndarray  # allowed site indices
    q: FloatArray  # facility kW at each allowed site, (sites, 1)
    first: int  # earliest start
    last: int  # latest start (window jobs)
    stop: int  # exclusive end of the slots any of its places may use
    slotted: bool  # interruptible: any ``n`` slots in ``[first, stop)``
    cost: FloatArray  # per start (window) or per slot (slotted), (sites, ·), at the root
    current: Place | None
    order: np.ndarray | None = None  # window places, flat (site row, start), best first
    domain: list[Place] | np.ndarray | None = None  # feasible places now (None: stale)
    place: Place | None = None  # where the search put it
    kw: float = 0.0  # what it committed there


def repair(
    ledger: Ledger, params: PlanParams, stranded: Sequence[Terms],
    placed: Sequence[tuple[Terms, Place, float]], all_sites: np.ndarray, horizon: int,
) -> tuple[dict[int, Place], list[tuple[Terms, Place, float]]]:
    """Find places for ``stranded`` jobs (placed nowhere, or nowhere with room) by moving
    ``placed`` ones (committed in ``ledger`` at ``(site, slots)`` with ``kW``).

    Returns ``(places, released)``: ``places`` the place of every stranded job it
    placed and of every placed job it took out of the ledger, by job index; ``released``
    those taken out (with where they were). The ledger is left without them: the caller
    commits each again, at ``places[index]``. A released job the search did not move has
    its old place there; one stranded job it could not place is absent.
    """
    budget = [max(0, params.repair_work)]
    places: dict[int, Place] = {}  # a solution for every job taken out and placed so far
    released: dict[int, tuple[Terms, Place, float]] = {}
    done: list[Terms] = []
    for target in sorted(stranded, key=lambda t: (t.latest, -t.demand.priority, t.index)):
        group = [target, *done]
        for wide in (False, True):  # the jobs in its way first, then all (up to a limit)
            if budget[0] <= 0:
                break
            pool = [entry for entry in placed if entry[0].index not in released]
            room = max(0, params.repair_jobs - len(released))  # jobs moved, in all
            budget[0] -= 1 + len(pool) // 64  # finding them is work too
            for t, place, kw in _competitors(group, pool, all_sites, room, wide):
                released[t.index] = (t, place, kw)  # taken out once: the searches move it
                places[t.index] = place
                ledger.release(place[0], place[1], kw,
                               t.request if t.takes_capacity else None)
            jobs = [*group, *(t for t, _, _ in released.values())]
            budget[0] -= len(jobs)  # each item's costs: about one feasibility computation
            if budget[0] <= 0:
                break
            items = [_item(ledger, params, t, all_sites, horizon, places.get(t.index))
                     for t in jobs]
            found = _search(ledger, items, budget)
            if found is not None:
                places = found
                done.append(target)
                break
    return places, list(released.values())


def _competitors(
    group: Sequence[Terms], placed: Sequence[tuple[Terms, Place, float]],
    all_sites: np.ndarray, limit: int, wide: bool,
) -> list[tuple[Terms, Place, float]]:
    """The placed jobs a search may move for ``group``: those whose place shares a site
    the group may use and overlaps the group's time range (``wide``: every one), the
    largest overlap first, at most ``limit``."""
    sites = set().union(*(set(sites_of(t, all_sites).tolist()) for t in group))
    lo = min(t.earliest for t in group)
    hi = max(t.end for t in group)
    scored = []
    for entry in placed:
        site, slots = entry[1]
        overlap = int(np.count_nonzero((slots >= lo) & (slots < hi))) if site in sites else 0
        if overlap or wide:
            scored.append((-overlap, entry[0].latest, entry[0].index, entry))
    scored.sort(key=lambda s: s[:3])
    return [s[3] for s in scored[:limit]]


def _item(ledger: Ledger, params: PlanParams, t: Terms, all_sites: np.ndarray,
          horizon: int, current: Place | None) -> _Item:
    """A job's search item: its candidate places and their costs against the ledger as
    it is when the search starts (the preference order only; feasibility is rechecked)."""
    sites = sites_of(t, all_sites)
    q = (t.power_kw * ledger.pue[sites])[:, None]
    job = t.demand
    first = t.earliest
    stop = min(t.end, ledger.width)
    is_slotted = slotted(t, ledger.width)
    fixed = t.forced or job.policy != "Optimize"
    last = first if fixed else max(first, min(t.latest, horizon - 1))
    if is_slotted:
        a, b = first, stop
    else:
        a, b = first, last + t.n
    u50 = scoring.green_used(q, ledger.green50[sites, a:b])
    u10 = scoring.green_used(q, ledger.green10[sites, a:b])
    per_slot = scoring.slot_cost(q, u50, u10, ledger.carbon_h[sites, a:b], params.risk_aversion)
    rate = ledger.delay_rate[sites][:, None] * q * ledger.h
    if is_slotted:
        per_slot = per_slot + rate * ledger.delay_h[a:b]
    item = _Item(t, sites, q, first, last, b, is_slotted, per_slot, current)
    if not is_slotted:
        cost = scoring.window_sums(per_slot, t.n, last - first + 1) + (
            rate * t.n * ledger.delay_h[first:last + 1])
        if t.data is not None:
            cost = cost + transfer_g(t, ledger.carbon, sites, np.arange(first, last + 1))
        flat = cost.ravel()
        starts = np.tile(np.arange(last - first + 1), len(sites))
        order = np.lexsort((flat, starts))  # earliest first: what leaves most room later
        if current is not None and current[1].size == t.n:
            rows = np.flatnonzero(sites == current[0])
            k = int(current[1][0]) - first
            if rows.size and 0 <= k <= last - first:
                at = int(rows[0]) * (last - first + 1) + k
                order = np.concatenate([[at], order[order != at]])
        item.order = order
        item.cost = cost
    return item


def _search(ledger: Ledger, items: list[_Item], budget: list[int]) -> dict[int, Place] | None:
    """Places for every item at which all fit (the ledger then without them), or None
    (the ledger as it was). First the depth-first search, with a third of what is left
    of the budget; if it finds nothing, earliest deadline first list scheduling: each
    item in order of its latest start, where it is if that still fits, else at its
    earliest feasible place; then the same with every item at its earliest (what running
    everything as soon as it can would do, which meets every deadline whenever the
    jobs' windows nest; the improvement passes then move them to cheaper places)."""
    share = [budget[0] // 3]
    try:
        ok = _solve(ledger, items, share)
    except _OutOfWork:
        ok = False
    budget[0] -= budget[0] // 3 - share[0]
    for keep in (True, False):
        if ok:
            break
        _clear(ledger, items)
        ok = _list_schedule(ledger, items, budget, keep)
    found = {it.t.index: it.place for it in items if it.place is not None}
    _clear(ledger, items)
    if not ok:
        return None
    return {i: p for i, p in found.items() if p is not None}


def _clear(ledger: Ledger, items: list[_Item]) -> None:
    for it in items:
        if it.place is not None:
            _unassign(ledger, items, it)


def _list_schedule(ledger: Ledger, items: list[_Item], budget: list[int], keep: bool
                   ) -> bool:
    """Earliest deadline first: each item, by latest start (interruptible ones by their
    deadline), at the first of its feasible places that starts earliest (``keep``: at its
    current place if that still fits)."""
    for it in sorted(items, key=lambda i: (i.stop - i.t.n if i.slotted else i.last,
                                           i.t.index)):
        if budget[0] <= 0:
            return False
        budget[0] -= 1
        domain = _domain(ledger, it, earliest=True)
        if len(domain) == 0:
            return False
        if keep and it.current is not None and _fits(ledger, it, it.current):
            _assign(ledger, items, it, it.current)
            continue
        _assign(ledger, items, it, _places(it, domain[:1])[0])
    return True


def _solve(ledger: Ledger, items: list[_Item], budget: list[int]) -> bool:
    """Depth first: the item with the fewest feasible places next, each tried in turn."""
    best: _Item | None = None
    best_key: tuple[bool, int, int, int] | None = None
    for it in items:
        if it.place is not None:
            continue
        if it.domain is None:
            if budget[0] <= 0:
                raise _OutOfWork
            budget[0] -= 1
            it.domain = _domain(ledger, it)
        if len(it.domain) == 0:
            return False
        # interruptible jobs last, earliest deadline first (as EDF would run them)
        key = (True, it.stop, len(it.domain), it.t.index) if it.slotted else (
            False, len(it.domain), it.t.latest, it.t.index)
        if best_key is None or key < best_key:
            best, best_key = it, key
    if best is None:
        return True
    assert best.domain is not None
    for place in _places(best, best.domain):
        _assign(ledger, items, best, place)
        if _solve(ledger, items, budget):
            return True
        _unassign(ledger, items, best)
    return False


def _places(it: _Item, domain: list[Place] | np.ndarray) -> list[Place]:
    if isinstance(domain, list):
        return list(domain)
    starts = it.last - it.first + 1
    out = []
    for flat in domain.tolist():
        row, k = divmod(int(flat), starts)
        out.append((int(it.sites[row]), np.arange(it.first + k, it.first + k + it.t.n)))
    return out


def _fits(ledger: Ledger, it: _Item, place: Place) -> bool:
    """True when the item fits at ``place`` now (a site it may use, room in every slot)."""
    site, slots = place
    rows = np.flatnonzero(it.sites == site)
    if not rows.size or slots.size != it.t.n:
        return False
    q = float(it.q[int(rows[0]), 0])
    return all(ledger.fits(site, int(r[0]), int(r[-1]) - int(r[0]) + 1, q, it.t.request_floor)
               for r in np.split(slots, np.flatnonzero(np.diff(slots) != 1) + 1))


def _assign(ledger: Ledger, items: list[_Item], it: _Item, place: Place) -> None:
    site, slots = place
    row = int(np.flatnonzero(it.sites == site)[0])
    it.kw = float(it.q[row, 0])
    ledger.commit(site, slots, it.kw, it.t.request if it.t.takes_capacity else None)
    it.place = place
    _touch(items, site, slots)


def _unassign(ledger: Ledger, items: list[_Item], it: _Item) -> None:
    assert it.place is not None
    site, slots = it.place
    ledger.release(site, slots, it.kw, it.t.request if it.t.takes_capacity else None)
    it.place = None
    _touch(items, site, slots)


def _touch(items: list[_Item], site: int, slots: np.ndarray) -> None:
    """Mark stale the feasible places of the items a change at ``site`` over ``slots``
    may affect (same site, overlapping slots); the others' stay as computed."""
    lo, hi = int(slots[0]), int(slots[-1]) + 1
    for other in items:
        if other.place is None and other.domain is not None and other.first < hi and (
                other.stop > lo) and site in other.sites:
            other.domain = None


def _domain(ledger: Ledger, it: _Item, earliest: bool = False) -> list[Place] | np.ndarray:
    """The item's feasible places now: grid share within the import left and every
    resource within the free capacity in each slot (as ``Ledger.fits``), in preference
    order (its current place first, then earliest first; ``earliest``: the earliest
    first, current or not)."""
    t = it.t
    a, b = it.first, it.stop
    green = ledger.green50[it.sites, a:b]
    bad = scoring.infeasible_slots(it.q - np.minimum(it.q, green), ledger.imports[it.sites, a:b],
                                   ledger.capacity[it.sites, :, a:b], t.request)
    if t.data is not None:  # no start before the job's data is there
        bad = bad + before_data(t, it.sites, a, b)
    if not it.slotted:
        assert it.order is not None
        ok = (scoring.window_sums(bad, t.n, it.last - it.first + 1) == 0).ravel()
        if earliest:
            starts = it.last - it.first + 1
            first = np.flatnonzero(ok.reshape(-1, starts).T.ravel())  # by start, then site
            if not first.size:
                return first
            k, row = divmod(int(first[0]), len(it.sites))
            return np.array([row * starts + k])
        domain: np.ndarray = it.order[ok[it.order]]
        return domain
    sets = _slot_sets(it, bad == 0)
    if earliest and sets:
        return [min(sets, key=lambda p: (int(p[1][-1]), int(p[1][0])))]
    return sets


def _slot_sets(it: _Item, ok: np.ndarray) -> list[Place]:
    """An interruptible job's candidate slot sets per site: its current set when it
    still fits, then each site's earliest ``n`` feasible slots (as earliest deadline
    first would: the slots it leaves are the later ones, which jobs due later can still
    use), then the cheapest and the latest ``n``."""
    n = it.t.n
    out: list[Place] = []
    seen: set[tuple[int, tuple[int, ...]]] = set()

    def offer(site: int, slots: np.ndarray) -> None:
        key = (site, tuple(slots.tolist()))
        if key not in seen and len(out) < _FEW * len(it.sites):
            seen.add(key)
            out.append((site, slots))

    cur = it.current
    if cur is not None and cur[1].size == n:
        at = np.flatnonzero(it.sites == cur[0])
        rel = cur[1] - it.first
        if at.size and rel.min() >= 0 and rel.max() < ok.shape[1] and ok[at[0], rel].all():
            offer(cur[0], cur[1])
    fits = [np.flatnonzero(ok[r]) for r in range(len(it.sites))]
    rows = [r for r in range(len(it.sites)) if fits[r].size >= n]
    for r in rows:
        offer(int(it.sites[r]), fits[r][:n] + it.first)
    cheapest = []
    for r in rows:
        f = fits[r]
        pick = np.sort(f[np.argsort(it.cost[r, f], kind="stable")[:n]])
        cheapest.append((float(it.cost[r, pick].sum()), r, pick))
    for _, r, pick in sorted(cheapest, key=lambda c: (c[0], c[1])):
        offer(int(it.sites[r]), pick + it.first)
    for r in rows:
        offer(int(it.sites[r]), fits[r][-n:] + it.first)
    return out

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

from dataclasses import replace

import numpy as np

from suandian.planner import exchange, prices, repair, scoring
from suandian.planner.choose import Choice, Figures, decide, delaying, record
from suandian.planner.decisions import decided, node_preferences, undecided
from suandian.planner.incumbents import hold
from suandian.planner.ledger import Ledger as _Ledger
from suandian.planner.model import (
    FloatArray,
    Plan,
    PlanParams,
    Snapshot,
)
from suandian.planner.reasons import SourceMeans
from suandian.planner.terms import Terms as _Job
from suandian.planner.terms import all_terms as _all_terms
from suandian.planner.terms import sites_of

__all__ = ["plan"]

def plan(snapshot: Snapshot, params: PlanParams | None = None) -> Plan:
    """Plan every job of the snapshot. Pure and deterministic: same snapshot, same plan."""
    params = params or PlanParams()
    snap = snapshot
    end = snap.now + snap.slot * snap.slots  # expected beyond the horizon: nothing to hold
    expected = tuple(e for e in snap.expected if e.earliest_start < end) if (
        params.expected_arrivals) else ()
    real = len(snap.jobs)  # terms from ``real`` on are expected arrivals, not jobs
    terms = _all_terms(snap, params, snap.jobs + expected if expected else None)
    if expected and _room_to_spare(snap, terms):  # they could not change a thing
        expected, terms = (), terms[:real]
    if expected:
        terms[real:] = [_expected(t) for t in terms[real:]]
    pad = max([t.n for t in terms] + [1])
    horizon = snap.slots
    all_sites = np.arange(len(snap.sites))
    pending = [t for t in terms if t.demand.running_site is None]
    # largest power first, with green supply or without: each slot's green supply is
    # packed as a bin is (first-fit decreasing: least slack first left the big jobs the
    # crumbs the small ones left), and on a grid alone a job's cost is its power times
    # its slots' intensity, so the cleanest slots are worth most to the largest jobs
    # (least slack first gave 67% of the optimum's saving on a contended grid-only
    # site, largest first 98%). The repair below keeps the deadlines either way.
    # with expected arrivals, real jobs with a green floor before them (and the rest): a
    # forecast must not take the one window that meets a real job's floor
    pending.sort(key=lambda t: (not t.forced, -t.demand.priority,
                                bool(expected) and (t.expected
                                                    or t.demand.min_green_fraction <= 0),
                                -t.power_kw, t.expected, t.latest - t.earliest,
                                t.demand.key))
    searching = bool(params.improvement_passes) and len(pending) - len(expected) <= (
        params.improvement_max_jobs)
    binding = searching and not _room_to_spare(snap, terms)  # a limit binds: trades pay
    built = _construct(snap, params, terms, pending, real, pad, all_sites, searching,
                       binding, None)
    if binding and params.price_iterations > 0 and snap.arrivals_complete:
        built = _cheaper_from_prices(snap, params, terms, pending, real, pad, all_sites,
                                     searching, built)
    ledger, chosen, figures, unplaceable = built
    if expected:  # forecasts, not jobs: out of the plan, its load and its decisions
        blind = _blind_if_better(snapshot, params, pending, real, unplaceable, horizon,
                                 all_sites, chosen)
        if blind is not None:
            return blind
        _forget(ledger, [t for t in pending if t.index >= real], chosen, figures)

    prefs = node_preferences(snap, params, terms, chosen)
    times = [snap.now + snap.slot * k for k in range(ledger.width + 1)]
    sources = SourceMeans(snap)
    decisions = []
    for t in terms:
        if t.index not in chosen:
            continue
        site, slots, forced, over = chosen[t.index]
        if site is None:
            decisions.append(undecided(snap, t))
        else:
            decisions.append(decided(snap, t, site, slots, forced, over, figures[t.index],
                                      prefs.get(t.index, ()), times, sources))
    ordered = tuple(decisions)
    return Plan(
        now=snap.now, slot=snap.slot, site_names=snap.site_names, decisions=ordered,
        load_kw=ledger.load[:, :horizon].copy(), green_used_kw=ledger.used[:, :horizon].copy(),
    )


Built = tuple[_Ledger, dict[int, Choice], dict[int, Figures], set[int]]
"""A plan under construction: its ledger, choices, figures and the real jobs the
repair could not place."""


def _construct(
    snap: Snapshot, params: PlanParams, terms: list[_Job], pending: list[_Job], real: int,
    pad: int, all_sites: np.ndarray, searching: bool, binding: bool,
    priced_target: float | None,
) -> Built:
    """One plan of ``pending``: running jobs first, then the jobs that must start now,
    the held decisions that still fit, then the rest (greedily; or, given
    ``priced_target``, where the round's prices put them, :mod:`~suandian.planner.prices`:
    a held decision is never moved by prices, as a plan from other prices each round
    would move held jobs with nothing changed), the repair, and the local searches."""
    ledger = _Ledger.from_snapshot(snap, pad)
    horizon = snap.slots
    if delaying(params):
        ledger.delay_rate = _delay_rate(snap, params, terms, ledger, horizon)
        ledger.delay_rate_column = ledger.delay_rate[:, None]
    for t in terms:
        job = t.demand
        if job.running_site is not None:
            slots = np.arange(0, min(t.n, horizon + pad))
            ledger.commit(job.running_site, slots, t.power_kw * ledger.pue[job.running_site],
                          None)
    chosen: dict[int, Choice] = {}
    figures: dict[int, Figures] = {}
    for t in (t for t in pending if t.forced):  # the deadline guarantee comes first
        if not _keep_held_start(ledger, t, all_sites, chosen, figures):
            decide(ledger, params, t, all_sites, horizon, chosen, figures)
    rest = [t for t in pending if not t.forced]
    held = hold(ledger, rest, all_sites)
    free = [t for t in rest if t.index not in held]
    if priced_target is not None:  # held decisions stay held: the prices place the rest
        for t in free:  # the greedy pass's own rules: green floors, data, fixed starts
            if not prices.eligible(t, ledger.width):
                decide(ledger, params, t, all_sites, horizon, chosen, figures)
        for t, site, slots in prices.priced_start(
                ledger, params, [t for t in free if t.index not in chosen], all_sites,
                priced_target):
            if exchange.fits(ledger, t, site, slots):
                record(ledger, t, sites_of(t, all_sites), (site, slots, False, False),
                       chosen, figures)
    for t in free:
        if t.index not in chosen:
            decide(ledger, params, t, all_sites, horizon, chosen, figures)
    for t in rest:  # each held decision, with every other job in place
        if t.index in held:
            assert t.held is not None
            where, kw = held[t.index]
            _redecide(ledger, params, t, (where, t.held, False, False), kw, all_sites,
                      horizon, chosen, figures)
    unplaceable = _repair(ledger, params, pending, all_sites, horizon, chosen, figures, real)
    for t in pending:  # a green-floor job the repair leaves alone had no room when it was
        # decided; the moves since may have made some at the place it holds by rule
        if t.index < real and t.demand.min_green_fraction > 0 and not t.forced and (
                chosen.get(t.index, (None,))[0] is None):
            decide(ledger, params, t, all_sites, horizon, chosen, figures)
    if searching:
        _improve(ledger, params, pending, all_sites, horizon, chosen, figures)
        if binding:
            work = [params.exchange_work]  # shared by every exchange of the round
            while exchange.exchange(ledger, params, pending, all_sites, horizon, chosen,
                                    figures, work):
                _improve(ledger, params, pending, all_sites, horizon, chosen, figures)
    return ledger, chosen, figures, unplaceable


def _cheaper_from_prices(
    snap: Snapshot, params: PlanParams, terms: list[_Job], pending: list[_Job], real: int,
    pad: int, all_sites: np.ndarray, searching: bool, built: Built,
) -> Built:
    """The plan from the round's prices (:mod:`~suandian.planner.prices`) when it is
    cheaper than ``built`` and leaves the room :func:`_later` asks for; else ``built``.
    Tried only when ``built`` gives every real job room (else the repair's moves would
    make it the next round's plan as well)."""
    horizon = snap.slots
    first = _score(built, params, pending, real, horizon, all_sites)
    target = sum(built[2][t.index][0] for t in pending
                 if t.index in built[2] and prices.eligible(t, built[0].width))
    if first[0] or target <= 0:
        return built
    priced = _construct(snap, params, terms, pending, real, pad, all_sites, searching,
                        True, target)
    if _score(priced, params, pending, real, horizon, all_sites) < first and not _later(
            priced[0], built[0], _Ledger.from_snapshot(snap, pad).capacity,
            params.price_reserve_share):
        return priced
    return built


def _score(built: Built, params: PlanParams, pending: list[_Job], real: int, horizon: int,
           all_sites: np.ndarray) -> tuple[int, float]:
    """What a plan under construction is worth, lower is better: the real jobs it leaves
    without room, then its cost in grams — risk-weighted emissions
    (:func:`~suandian.planner.exchange.plan_cost`) and delay cost, less the move
    threshold of every job that keeps the decision it held (the same rule as a single
    move: leaving a held decision must pay its threshold).

    The expected arrivals count as the jobs they forecast, at the hours where they hold
    room: a plan that gives today's jobs the clean hours and leaves tomorrow's the
    dirty ones is not cheaper than one that does the reverse for larger jobs. Counted
    without them, the priced plan (which places both together) lost to the greedy one
    whenever it served the arrivals: with the true arrivals as the forecast, 93.6% of
    the proven optimum's saving on the contended grid-only week, 96.0% counted."""
    ledger, chosen, figures, _ = built
    stranded = sum(1 for t in pending if t.index < real
                   and _stranded(t, chosen[t.index], horizon, all_sites))
    held = np.zeros_like(ledger.load)  # what the expected arrivals would draw
    for t in pending:
        choice = chosen.get(t.index)
        if t.index >= real and choice is not None and choice[0] is not None:
            held[choice[0], choice[1]] += t.power_kw * ledger.pue[choice[0]]
    cost = exchange.plan_cost(ledger, params.risk_aversion, held)
    for t in pending:
        choice = chosen.get(t.index)
        if choice is None or choice[0] is None:
            continue
        cost += exchange.delay_of(ledger, t, choice)
        if t.held is not None and choice[0] == t.held_site and np.array_equal(
                choice[1], t.held):
            cost -= scoring.move_threshold(figures[t.index][0], params.move_threshold_g,
                                           params.move_threshold_share)
    return stranded, cost



def _later(ledger: _Ledger, than: _Ledger, capacity: FloatArray, keep: float) -> bool:
    """Whether ``ledger`` leaves less room than ``than`` in some tail of the horizon
    (the slots from some slot on, at some site, in some resource) where it keeps less
    than ``keep`` of that tail's ``capacity`` free. A plan that defers more work towards
    the deadlines than the greedy one leaves less room for work that arrives later
    than forecast: on a contended grid-only site the cheaper plan the prices found
    missed 4 deadlines a week that way, the greedy one none."""
    def tails(arr: FloatArray) -> FloatArray:
        return np.cumsum(np.nan_to_num(arr, posinf=0.0)[:, :, ::-1], axis=2)
    free, free_than = tails(ledger.capacity), tails(than.capacity)
    return bool(((free < free_than - 1e-6) & (free < keep * tails(capacity))).any())


def _keep_held_start(
    ledger: _Ledger, t: _Job, all_sites: np.ndarray,
    chosen: dict[int, Choice],
    figures: dict[int, Figures],
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
    if site not in sites or (t.data is not None and t.earliest < int(t.data.first[site])):
        return False
    if not ledger.fits(site, t.earliest, t.n, t.power_kw * float(ledger.pue[site]),
                       t.request_floor):
        return False
    record(ledger, t, sites, (site, held, True, False), chosen, figures)
    return True


def _repair(
    ledger: _Ledger, params: PlanParams, pending: list[_Job], all_sites: np.ndarray,
    horizon: int, chosen: dict[int, Choice],
    figures: dict[int, Figures], real: int,
) -> set[int]:
    """Room for the jobs left without any (placed nowhere, or forced to start where
    there is none), by moving jobs that have not started (:mod:`~suandian.planner.repair`),
    then room for the expected arrivals (terms from ``real`` on) that found none.

    Expected arrivals give way first: when a job is stranded they leave the plan while
    it is repaired and come back only where room is left, since a forecast of work never
    costs a real job its deadline. Then those still without room get a search of their
    own, which may move the real jobs within their windows (to earlier, dearer hours):
    the room tomorrow's work needs is kept while the jobs of today can still give it.
    Returns the real jobs still without room once the forecast was out of their way (a
    plan without it could not place them either)."""
    if params.repair_work <= 0:
        return set()
    # a job whose green floor no window meets waits, by rule (the deadline guarantee
    # starts it by its latest start): the repair, which places jobs wherever there is
    # room, would give it a place its floor refuses, and the next round would take it
    # back (the unchanged-inputs property found two such jobs trading places each round)
    stranded = [t for t in pending if t.index < real
                and _stranded(t, chosen[t.index], horizon, all_sites)
                and not (t.demand.min_green_fraction > 0 and not t.forced
                         and chosen[t.index][0] is None)]
    unplaceable: set[int] = set()
    if stranded:
        forecast = [t for t in pending if t.index >= real]
        if forecast:  # out of the way; with the room they held, the greedy choice again
            _forget(ledger, forecast, chosen, figures)
            for t in stranded:
                if chosen[t.index][0] is None:
                    decide(ledger, params, t, all_sites, horizon, chosen, figures)
            stranded = [t for t in stranded if _stranded(t, chosen[t.index], horizon,
                                                         all_sites)]
        _make_room(ledger, params, pending, stranded, real, all_sites, horizon, chosen,
                   figures)
        for t in forecast:  # then the expected arrivals, where room is left
            decide(ledger, params, t, all_sites, horizon, chosen, figures)
    unplaceable = {t.index for t in stranded
                   if _stranded(t, chosen[t.index], horizon, all_sites)}
    waiting = [t for t in pending if t.index >= real and _stranded(
        t, chosen.get(t.index, (None, np.zeros(0, dtype=int), False, False)), horizon,
        all_sites)]
    if waiting:  # only flexible jobs make room for a forecast (not RunNow, PlaceOnly,
        # forced, oversubscribed or green-floor ones: they stay where they are)
        _make_room(ledger, params, pending, waiting, real, all_sites, horizon, chosen,
                   figures, flexible_only=True)
    return unplaceable


def _make_room(
    ledger: _Ledger, params: PlanParams, pending: list[_Job], stranded: list[_Job],
    real: int, all_sites: np.ndarray, horizon: int,
    chosen: dict[int, Choice],
    figures: dict[int, Figures], *,
    flexible_only: bool = False,
) -> None:
    """One repair search for ``stranded``, moving placed real jobs (expected arrivals
    stay where they are; ``flexible_only``: only ``Optimize`` jobs not forced, not
    oversubscribed and without a ``minGreenFraction``). Each job
    the search moves is committed again at its new place, the others where they were;
    a stranded job it cannot place stays as it was."""
    for t in stranded:  # oversubscribed: out of the ledger while the search runs
        site, slots, _forced, over = chosen.get(t.index, (None, None, False, False))
        if over and site is not None and slots is not None:
            exchange.unplace(ledger, t, site, slots, figures[t.index][4])
    if not stranded:
        return
    ids = {t.index for t in stranded}
    placed = [(t, (site, slots), figures[t.index][4]) for t in pending
              if t.index < real and t.index not in ids and t.index in chosen
              and (not flexible_only or (
                  t.demand.policy == "Optimize" and not t.forced
                  and not chosen[t.index][3] and t.demand.min_green_fraction <= 0))
              and (site := chosen[t.index][0]) is not None
              for slots in (chosen[t.index][1],)]
    places, released = repair.repair(ledger, params, stranded, placed, all_sites, horizon)
    for t, _old, _kw in released:
        site, slots = places[t.index]
        record(ledger, t, sites_of(t, all_sites), (site, slots, chosen[t.index][2], False),
                chosen, figures)
    for t in stranded:
        if t.index in places:
            site, slots = places[t.index]
            record(ledger, t, sites_of(t, all_sites), (site, slots, t.forced, False),
                    chosen, figures)
        elif t.index in chosen and chosen[t.index][3]:  # still nowhere with room
            record(ledger, t, sites_of(t, all_sites), chosen[t.index], chosen, figures)


def _blind_if_better(
    snapshot: Snapshot, params: PlanParams, pending: list[_Job], real: int,
    unplaceable: set[int], horizon: int, all_sites: np.ndarray,
    chosen: dict[int, Choice],
) -> Plan | None:
    """The plan without expected arrivals, when the one with them left a real job
    without room that it did not have to: a job the repair placed once the forecast was
    out of its way and lost again, or one the plan without the forecast places (the
    forecast changed which jobs the greedy pass served first, so a job still without
    room may be one that another took the place of). None: keep the plan."""
    stranded = [t for t in pending if t.index < real
                and _stranded(t, chosen[t.index], horizon, all_sites)]
    if not stranded:
        return None
    blind = plan(snapshot, replace(params, expected_arrivals=False))
    if any(t.index not in unplaceable for t in stranded):
        return blind
    placed = {d.key for d in blind.decisions if d.site_index is not None}
    lost = any(chosen[t.index][0] is None and t.demand.key in placed
               for t in pending if t.index < real)
    return blind if lost else None


def _forget(
    ledger: _Ledger, terms: list[_Job],
    chosen: dict[int, Choice],
    figures: dict[int, Figures],
) -> None:
    """Take ``terms`` out of the plan: their supply, import and capacity back to the
    ledger, no decision."""
    for t in terms:
        site, slots, _forced, _over = chosen.pop(t.index, (None, None, False, False))
        if site is not None and slots is not None:
            figures.pop(t.index)
            exchange.unplace(ledger, t, site, slots, 0.0)


def _stranded(t: _Job, choice: Choice, horizon: int,
              all_sites: np.ndarray) -> bool:
    """Placed nowhere although it could be (an allowed site, a start within the
    horizon), or forced to start where there is no room."""
    if choice[3]:
        return True
    return choice[0] is None and t.earliest < horizon and sites_of(t, all_sites).size > 0


def _room_to_spare(snap: Snapshot, terms: list[_Job]) -> bool:
    """Whether no capacity or grid import limit could bind, whatever the plan: every
    waiting job (and expected arrival) running in every slot of its window at once, at
    each site it may use, would still fit the free capacity and the import left after
    the running jobs (their power all from the grid). Expected arrivals hold only
    capacity and import, so then they cannot change a decision, and planning them would
    only double the round's work (a cluster with room to spare, the common case)."""
    n_sites, horizon = len(snap.sites), snap.slots
    waiting = [t for t in terms if t.demand.running_site is None]
    width = max([horizon, *(t.end for t in waiting)])
    capacity = np.stack([np.asarray(s.capacity, dtype=float) for s in snap.sites])
    imports = snap.stacked("import_limit_kw")
    pue = np.array([s.pue for s in snap.sites])
    for t in terms:  # running jobs draw what they draw from the grid
        if t.demand.running_site is not None:
            imports[t.demand.running_site, :t.n] -= t.power_kw * pue[t.demand.running_site]
    tail = width - horizon  # past the horizon: the last slot's limits, as the ledger pads
    capacity = np.concatenate([capacity, np.repeat(capacity[:, :, -1:], tail, axis=2)], 2)
    imports = np.concatenate([imports, np.repeat(imports[:, -1:], tail, axis=1)], axis=1)
    asks = np.zeros((n_sites, len(snap.resources) + 1, width + 1))  # resources, then kW
    for t in waiting:
        sites = sites_of(t, np.arange(n_sites))
        row = np.append(t.request, t.power_kw)
        asks[sites, :, t.earliest] += row
        asks[sites, :, min(t.end, width)] -= row
    peak = np.cumsum(asks, axis=2)[:, :, :width]
    if (peak[:, -1, :] * pue[:, None] > imports + 1e-9).any():
        return False
    return not (peak[:, :-1, :] > capacity + 1e-9).any()


def _redecide(
    ledger: _Ledger, params: PlanParams, t: _Job,
    place: Choice, kw: float, all_sites: np.ndarray,
    horizon: int, chosen: dict[int, Choice],
    figures: dict[int, Figures],
) -> bool:
    """Take a job out of ``place`` (committed at ``kw``) and decide it again with every
    other job in place, ``place`` as its incumbent: it moves only when that saves more
    than the move threshold, or ``place`` no longer fits. True if it moved."""
    site, slots = place[0], place[1]
    assert site is not None
    exchange.unplace(ledger, t, site, slots, kw)
    decide(ledger, params, replace(t, held_site=site, held=slots), all_sites, horizon,
            chosen, figures)
    after = chosen[t.index]
    if after[0] is None:
        # it fitted where it was: never unplace it, unless its place no longer reaches
        # its minGreenFraction (it then waits, re-planned each round, as any job whose
        # floor no window meets; the deadline guarantee starts it by its latest start)
        floor = t.demand.min_green_fraction
        if floor <= 0 or t.forced or ledger.emissions(site, slots, kw)[1] >= floor - 1e-9:
            record(ledger, t, sites_of(t, all_sites), place, chosen, figures)
            return False
        return True
    return after[0] != site or not np.array_equal(after[1], slots)


def _improve(
    ledger: _Ledger, params: PlanParams, pending: list[_Job], all_sites: np.ndarray,
    horizon: int, chosen: dict[int, Choice],
    figures: dict[int, Figures],
) -> None:
    """Coordinate descent: each flexible job re-placed with every other job in place (its
    marginal emissions are then exact, so the total never rises), its place so far as
    its incumbent; then each job a pass left waiting (below its green floor) decided
    afresh, as the next round would once the moves gave it room; until a pass moves
    nobody, at most ``improvement_passes``. The plan is then one that the next round,
    same inputs and these decisions held, leaves as is."""
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
        for t in flexible:  # a job a pass left waiting: the moves since may give it room,
            if chosen[t.index][0] is None:  # as a fresh round would (its latest start)
                decide(ledger, params, t, all_sites, horizon, chosen, figures)
                moved |= chosen[t.index][0] is not None
        if not moved:
            return


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


def _expected(t: _Job) -> _Job:
    """An expected arrival as the plan holds it: never forced (nothing is due for work
    that has not arrived). It chooses its slots as a job of its power would, and holds
    their capacity and grid import but none of their green supply (:func:`record`):
    the room it keeps is for deadlines; the green supply goes to the jobs that exist."""
    return replace(t, forced=False, expected=True)



"""The grid's requests in the plan: a shed is a ceiling on grid import, a surplus is green
supply, and deadlines still win.

Each request (:class:`GridAsk`, one per site of a GridEvent) shapes the snapshot over
the slots its window touches, and the planner plans the shaped snapshot as it plans any
other (:func:`answer`):

    ceiling    (Shed, C kW):   limit'[k] = min(limit[k], C)
    reduction  (Shed, R kW):   limit'[k] = min(limit[k], B[k] − min(R, B[k]))
    share      (Shed, s):      limit'[k] = min(limit[k], B[k] − s · B[k])
                               B: the import of the plan without any request (or the
                               baseline the caller froze when it first accepted it)
    surplus    (Absorb, P kW): green'[k] = green[k] + P   (P50 and P10: it is there)
    tariff     (Price, p/kWh): cost'[k] = carbon[k] + w · p[k]   per kWh of grid power
                               w: PlanParams.tariff_weight_g_per_unit (grams per unit of
                               currency); the emissions reported stay carbon's alone

Grid import is the plan's facility load minus the green it uses. The import limit is a
hard limit for the planner except for a job at its latest start, which starts whatever
the ceiling (the deadline guarantee). So a plan may still import over a ceiling:
deferred and interruptible work moves out of the window first, and what remains over
the ceiling is the **shortfall**, reported with the jobs that cause it (running and
forced at that site then). A voluntary shed that the plan cannot meet whole is
**declined** and the plan is made again without it: a voluntary request is refused
rather than broken. A mandatory one is kept, short. A surplus is never declined:
absorbing less than offered breaks nothing.

Per slot, against the plan without requests (``baseline``):

    shed:    asked     = B − C (ceiling; at least 0), min(R, B) (reduction: no site
             can import less than nothing) or s · B (share)
             committed = B − I   (I: the answered plan's import)
    absorb:  asked     = P
             committed = min(P, max(0, G_used − G_own))   (green used beyond the site's own)
    shortfall = max over the window's slots of (asked − committed), at least 0
    moved_g   = per job moved at the site: expected grams answered − unanswered
    (and moved_cost, in money: both shared among the requests that moved the job,
    :mod:`~suandian.planner.grid_effects`)

Pure: no clock, no I/O; the caller puts the requests on the snapshot's grid by time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from suandian.errors import PlanningError
from suandian.planner.core import plan
from suandian.planner.grid_effects import attribute, tariffs_per_kwh
from suandian.planner.model import (
    FloatArray,
    JobDecision,
    JobDemand,
    Plan,
    PlanParams,
    Snapshot,
)
from suandian.planner.terms import first_slot

__all__ = [
    "TOLERANCE_KW",
    "AskAnswer",
    "GridAnswer",
    "GridAsk",
    "annotate",
    "answer",
    "freeze",
    "import_ceiling_kw",
    "import_kw",
    "met_reason",
    "open_asks",
    "shape",
]

TOLERANCE_KW = 1e-6
"""A shortfall under this is none (floating-point crumbs of the ledger)."""


@dataclass(frozen=True, slots=True)
class GridAsk:
    """One request at one site: exactly one of ``ceiling_kw``, ``reduction_kw`` or
    ``reduction_share`` (shed), ``absorb_kw`` (surplus) or ``tariff``, over ``[start,
    end)``. ``baseline_kw``: for a shed, the import it is measured against (a
    reduction's ceiling is ``baseline − reduced(baseline)``), per slot of the window as
    :func:`answer` first reported it (None: this plan's baseline)."""

    key: str
    site: int
    start: datetime
    end: datetime
    ceiling_kw: float | None = None
    reduction_kw: float | None = None
    absorb_kw: float | None = None
    reduction_share: float | None = None
    """A reduction as a share of the baseline, ``0 < s ≤ 1`` (``reductionPercent``)."""
    mandatory: bool = False
    priority: int = 0
    baseline_kw: tuple[float, ...] | None = None
    tariff: tuple[tuple[datetime, datetime, float], ...] | None = None
    """A price schedule: ``(start, end, price per kWh)`` periods (Price events)."""
    currency: str | None = None
    """The tariff's currency (ISO 4217): the cost figures' unit."""

    def __post_init__(self) -> None:
        given = [v for v in (self.ceiling_kw, self.reduction_kw, self.absorb_kw)
                 if v is not None]
        share = self.reduction_share
        if len(given) + (share is not None) + (self.tariff is not None) != 1:
            raise PlanningError(f"grid ask {self.key}: give exactly one of ceiling_kw, "
                                "reduction_kw, reduction_share, absorb_kw or tariff")
        if given and (given[0] < 0 or not math.isfinite(given[0])):
            raise PlanningError(f"grid ask {self.key}: {given[0]} kW is not a power")
        if share is not None and not 0 < share <= 1:
            raise PlanningError(f"grid ask {self.key}: a reduction share is within (0, 1], "
                                f"not {share}")
        if self.tariff is not None and not all(math.isfinite(p) for _, _, p in self.tariff):
            raise PlanningError(f"grid ask {self.key}: a tariff's prices must be finite")
        if self.end <= self.start:
            raise PlanningError(f"grid ask {self.key}: its end is not after its start")

    @property
    def shed(self) -> bool:
        return self.ceiling_kw is not None or self.reduces

    @property
    def reduces(self) -> bool:
        """A shed measured against a baseline: a reduction in kW or as a share."""
        return self.reduction_kw is not None or self.reduction_share is not None

    def reduced(self, before: FloatArray) -> FloatArray:
        """What a reduction asks under the import ``before``, kW: ``min(R, B)`` or
        ``s · B`` (zeros for any other request)."""
        before = np.asarray(before, dtype=float)
        if self.reduction_share is not None:
            return self.reduction_share * before
        return np.minimum(float(self.reduction_kw or 0.0), before)

    def window(self, snap: Snapshot) -> slice:
        """The snapshot's slots the window touches (empty: outside the horizon). A slot
        the window only partly covers counts whole: a ceiling holds over all of it."""
        return self.slots(snap.now, snap.slot, snap.slots)

    def slots(self, now: datetime, slot: timedelta, slots: int) -> slice:
        """The window on the grid of ``slots`` slots from ``now`` (:meth:`window`)."""
        step = slot.total_seconds()
        first = math.floor((self.start - now).total_seconds() / step)
        last = math.ceil((self.end - now).total_seconds() / step)
        first, last = max(first, 0), min(last, slots)
        return slice(first, max(first, last))


@dataclass(frozen=True, slots=True)
class AskAnswer:
    """What the plan does about one request. Arrays are per slot of ``window``."""

    ask: GridAsk
    window: slice
    accepted: bool
    asked_kw: FloatArray
    committed_kw: FloatArray
    baseline_kw: FloatArray
    shortfall_kw: float
    jobs: tuple[str, ...]
    """With a shortfall, the jobs that cause it (running or forced at the site in its worst
    slot); else the jobs the request moved (their site or start changed)."""
    reason: str
    moved_g: Mapping[str, float] = field(default_factory=dict)
    """Each job the requests moved at the site: its expected emissions in the answered
    plan less in the plan without requests, grams (above 0: answering costs carbon),
    shared among the requests that moved it (:mod:`~suandian.planner.grid_effects`)."""
    moved_cost: Mapping[str, float] = field(default_factory=dict)
    """The same jobs' grid power at the tariffs, answered less unanswered, in
    ``currency`` (empty without a tariff)."""
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class GridAnswer:
    """The plan to carry out, the plan without requests, and one answer per request."""

    plan: Plan
    baseline: Plan
    answers: tuple[AskAnswer, ...]


def import_kw(result: Plan) -> FloatArray:
    """Grid import of a plan per site and slot, kW: facility load less green used."""
    return np.maximum(result.load_kw - result.green_used_kw, 0.0)


def shape(snap: Snapshot, asks: Sequence[GridAsk], baseline: Plan | None,
          tariff_weight: float = PlanParams.tariff_weight_g_per_unit) -> Snapshot:
    """``snap`` with each request's ceiling, surplus or tariff applied (the module doc);
    ``baseline`` may be None when no reduction is among ``asks``."""
    limits = {s: np.array(site.import_limit_kw, dtype=float) for s, site in
              enumerate(snap.sites)}
    extra = {s: np.zeros(snap.slots) for s in range(len(snap.sites))}
    tariffs = {s: p * tariff_weight for s, p in tariffs_per_kwh(snap, asks).items()}
    base = import_kw(baseline) if baseline is not None else None
    for ask in asks:
        at = ask.window(snap)
        if at.start >= at.stop or ask.tariff is not None:
            continue
        if ask.absorb_kw is not None:
            extra[ask.site][at] += ask.absorb_kw
            continue
        if ask.reduces and base is None and ask.baseline_kw is None:
            raise PlanningError(f"grid ask {ask.key}: a reduction needs a baseline plan")
        ceiling = _ceiling(ask, at, base)
        if ceiling is not None:
            limits[ask.site][at] = np.minimum(limits[ask.site][at], ceiling)
    sites = tuple(
        replace(site, import_limit_kw=limits[s],
                green_p50_kw=np.asarray(site.green_p50_kw, dtype=float) + extra[s],
                green_p10_kw=np.asarray(site.green_p10_kw, dtype=float) + extra[s],
                tariff_g_per_kwh=_added(site.tariff_g_per_kwh, tariffs.get(s)))
        if extra[s].any() or s in tariffs or not np.array_equal(limits[s],
                                                                 site.import_limit_kw)
        else site
        for s, site in enumerate(snap.sites))
    return replace(snap, sites=sites)


def _added(a: FloatArray | None, b: FloatArray | None) -> FloatArray | None:
    if a is None or b is None:
        return b if a is None else a
    return np.asarray(a, dtype=float) + b


def answer(snap: Snapshot, asks: Sequence[GridAsk], params: PlanParams | None = None
           ) -> GridAnswer:
    """Plan ``snap`` answering ``asks``; voluntary sheds the plan cannot meet whole are
    declined (the lowest priority first, one at a time) and planned without."""
    params = params or PlanParams()
    baseline = plan(snap, params)
    for ask in asks:
        if not 0 <= ask.site < len(snap.sites):
            raise PlanningError(f"grid ask {ask.key}: site index {ask.site} is not in the "
                                "snapshot")
    active = [a for a in asks if _in_horizon(a, snap)]
    declined: list[AskAnswer] = []
    while True:
        result = plan(shape(snap, active, baseline, params.tariff_weight_g_per_unit),
                      params) if active else baseline
        answers = [_measure(a, snap, baseline, result) for a in active]
        short = [x for x in answers if x.ask.shed and not x.ask.mandatory
                 and x.shortfall_kw > TOLERANCE_KW]
        if not short:
            break
        worst = min(short, key=lambda x: (x.ask.priority, -x.shortfall_kw, x.ask.key))
        declined.append(replace(worst, accepted=False, moved_g={}, reason=(
            f"declined: the plan can shed only {_kw(worst.asked_kw.max() - worst.shortfall_kw)}"
            f" of {_kw(worst.asked_kw.max())} without missing a deadline "
            f"({_kw(worst.shortfall_kw)} short)")))
        active.remove(worst.ask)
    currencies = {a.currency for a in active if a.tariff is not None}
    by_key = {id(x.ask): x for x in attribute(
        answers + declined, baseline, result, tariffs_per_kwh(snap, active),
        currencies.pop() if len(currencies) == 1 else None)}
    result = annotate(snap, result, [x.ask for x in answers if x.accepted])
    return GridAnswer(plan=result, baseline=baseline, answers=tuple(
        by_key[id(a)] if id(a) in by_key else _beyond(a, snap) for a in asks))


def annotate(snap: Snapshot, result: Plan, asks: Sequence[GridAsk]) -> Plan:
    """``result`` with each decision the grid's requests shape saying so at the end of
    its reason: at a shed's site, a job that waits past the window it could have started
    in (``waits past grid shed …``) or is paused over it (``paused for …``); at a
    surplus's site, a job that runs in its window (``runs in grid surplus …``); at a
    tariff's site, a job that runs at a lower mean price than from its earliest start
    (``runs at 0.30 CNY/kWh under grid tariff tou, 1.20 from its earliest start``).
    Decided by the plan alone (not by what moved against a baseline), so a later round
    says the same."""
    notes: dict[str, list[str]] = {}
    jobs = {j.key: j for j in snap.jobs}
    at_site: dict[int, list[JobDecision]] = {}  # the decisions each ask looks at
    for d in result.decisions:
        if d.site_index is not None and d.slots and not d.forced:
            at_site.setdefault(d.site_index, []).append(d)
    for ask in asks:
        at = ask.window(snap)
        if at.start >= at.stop or ask.site not in at_site:
            continue
        if ask.tariff is not None:
            _note_tariff(snap, at_site[ask.site], ask, jobs, notes)
            continue
        words = f"{_event_of(ask)} ({_span(ask.start, ask.end)})"
        for d in at_site[ask.site]:
            first, last = d.slots[0], d.slots[-1]
            inside = any(at.start <= k < at.stop for k in d.slots)
            if ask.absorb_kw is not None:
                if inside:
                    notes.setdefault(d.key, []).append(f"runs in grid surplus {words}")
                continue
            job = jobs.get(d.key)
            if inside or job is None:
                continue
            earliest = first_slot(job.earliest_start, snap.now, snap.slot.total_seconds())
            if first >= at.stop and earliest < at.stop:
                notes.setdefault(d.key, []).append(f"waits past grid shed {words}")
            elif first < at.start and last >= at.stop:
                notes.setdefault(d.key, []).append(f"paused for grid shed {words}")
    if not notes:
        return result
    return replace(result, decisions=tuple(
        replace(d, reason=f"{d.reason}; {'; '.join(notes[d.key])}") if d.key in notes else d
        for d in result.decisions))


def _note_tariff(snap: Snapshot, decisions: Sequence[JobDecision], ask: GridAsk,
                 jobs: dict[str, JobDemand], notes: dict[str, list[str]]) -> None:
    """:func:`annotate`'s words for a tariff, on the unforced ``decisions`` at its site:
    the mean price over a job's slots, where it is below the mean over as many slots
    from its earliest start."""
    prices = tariffs_per_kwh(snap, [ask]).get(ask.site)
    if prices is None:
        return
    name, unit = _event_of(ask), f"{ask.currency or ''}/kWh".lstrip("/")
    cum = np.concatenate([[0.0], np.cumsum(prices)])  # a run's sum in two reads
    size, step = prices.size, snap.slot.total_seconds()
    for d in decisions:
        job = jobs.get(d.key)
        first, n = d.slots[0], len(d.slots)
        if job is None or d.slots[-1] >= size:
            continue
        earliest = first_slot(job.earliest_start, snap.now, step)
        if earliest + n > size:
            continue
        paid = ((cum[first + n] - cum[first]) if d.slots[-1] - first == n - 1
                else float(prices[list(d.slots)].sum())) / n
        then = (cum[earliest + n] - cum[earliest]) / n
        if paid < then - 1e-9:
            notes.setdefault(d.key, []).append(
                f"runs at {paid:.2f} {unit} under grid tariff {name}, {then:.2f} from its "
                "earliest start")


def _event_of(ask: GridAsk) -> str:
    """The event's name: keys are ``<event>@<site>`` (``suandian.gridasks.ask_key``; the
    planner may not import it)."""
    return ask.key.rsplit("@", 1)[0]


def _span(start: datetime, end: datetime) -> str:
    """``06-01 18:00–21:00 UTC``, or with the end's date when it is another day."""
    tail = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%m-%d %H:%M}"
    return f"{start:%m-%d %H:%M}–{tail} UTC"


def import_ceiling_kw(asks: Sequence[GridAsk], site: int, now: datetime, slot: timedelta,
                      slots: int, limit_kw: float) -> tuple[FloatArray, FloatArray]:
    """The import limit and the surplus at ``site`` under accepted requests, per slot from
    ``now``, as a round that plans a few arrivals beside the decisions already made
    applies them (a full round answers them instead: :func:`answer`). A reduction counts
    only with its frozen baseline (``baseline_kw``): its ceiling is ``B − reduced(B)``."""
    limit, surplus = np.full(slots, float(limit_kw)), np.zeros(slots)
    for ask in asks:
        at = ask.slots(now, slot, slots)
        if ask.site != site or at.start >= at.stop:
            continue
        if ask.absorb_kw is not None:
            surplus[at] += ask.absorb_kw
        elif (ceiling := _ceiling(ask, at, None)) is not None:
            limit[at] = np.minimum(limit[at], ceiling)
    return limit, surplus


def _ceiling(ask: GridAsk, at: slice, base: FloatArray | None) -> FloatArray | None:
    """A shed's import ceiling over ``at``: ``C``, or ``B − reduced(B)`` (at least 0)
    against the frozen baseline, else the plan's ``base``; None for a surplus or a
    tariff, and for a reduction with neither baseline."""
    if ask.ceiling_kw is not None:
        return np.full(at.stop - at.start, ask.ceiling_kw)
    if not ask.reduces:
        return None
    before = _baseline(ask, at, base)
    return None if before is None else np.maximum(before - ask.reduced(before), 0.0)


def open_asks(asks: Sequence[GridAsk], now: datetime, horizon_end: datetime,
              baselines: Mapping[str, tuple[float, ...]]) -> list[GridAsk]:
    """The requests a plan made at ``now`` answers: those not yet over that begin before
    ``horizon_end``, from ``now`` on; a shed with the baseline first reported for it
    (``baselines``, by key: :func:`freeze`)."""
    return [replace(a, start=max(a.start, now), baseline_kw=baselines.get(a.key))
            for a in asks if a.end > now and a.start < horizon_end]


def freeze(answers: Sequence[AskAnswer], horizon_end: datetime,
           baselines: Mapping[str, tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
    """``baselines`` with the baseline of each shed first answered with its whole window
    in sight (it ends by ``horizon_end``). A reduction is a promise against the load
    declared when it was accepted, as a site commits to a demand-response baseline:
    planned again later, the plan without the request would already be shaped by it (the
    jobs it moved hold their new places), and the reduction would shrink round after
    round. A ceiling's limit needs no baseline, but what it asks (and so what was
    delivered) is measured against one too."""
    out = dict(baselines)
    for a in answers:
        if a.ask.shed and a.ask.end <= horizon_end and a.window.stop > a.window.start:
            out.setdefault(a.ask.key, tuple(a.baseline_kw.tolist()))
    return out


def _in_horizon(ask: GridAsk, snap: Snapshot) -> bool:
    at = ask.window(snap)
    return bool(at.start < at.stop)


def _baseline(ask: GridAsk, at: slice, base: FloatArray | None) -> FloatArray | None:
    """The import a shed is measured against over ``at``: the frozen one where the caller
    gave it (its tail, as the window's first slots pass) and it covers ``at``, else the
    plan's ``base`` (None without one)."""
    own = None if base is None else base[ask.site, at]
    if ask.baseline_kw is not None and len(ask.baseline_kw) >= at.stop - at.start:
        return np.asarray(ask.baseline_kw[len(ask.baseline_kw) - (at.stop - at.start):],
                          dtype=float)
    return own


def _measure(ask: GridAsk, snap: Snapshot, baseline: Plan, result: Plan) -> AskAnswer:
    at = ask.window(snap)
    base_import = import_kw(baseline)
    before = _baseline(ask, at, base_import)
    assert before is not None  # (given the plan's import, there is always one)
    now = import_kw(result)[ask.site, at]
    moved = _moved(baseline, result, ask.site)
    moved_g = {k: result.by_key[k].expected_emissions_g
               - baseline.by_key[k].expected_emissions_g for k in moved}
    if ask.tariff is not None:  # a cost, not a power: nothing asked in kW
        nothing = np.zeros(now.shape)
        return AskAnswer(ask=ask, window=at, accepted=True, asked_kw=nothing,
                         committed_kw=nothing, baseline_kw=before, shortfall_kw=0.0,
                         jobs=moved, reason=f"priced in: {len(moved)} job(s) moved to "
                                            "cheaper hours", moved_g=moved_g)
    if ask.absorb_kw is not None:
        own = np.asarray(snap.sites[ask.site].green_p50_kw, dtype=float)[at]
        used = result.green_used_kw[ask.site, at]
        asked = np.full(now.shape, ask.absorb_kw)
        committed = np.clip(used - own, 0.0, ask.absorb_kw)
    else:
        asked = (np.maximum(before - ask.ceiling_kw, 0.0) if ask.ceiling_kw is not None
                 else ask.reduced(before))
        committed = before - now
    gap = asked - committed
    shortfall = float(max(gap.max(initial=0.0), 0.0)) if ask.shed else 0.0
    if shortfall > TOLERANCE_KW:
        worst = at.start + int(gap.argmax())
        jobs = _causing(snap, result, ask.site, worst)
        reason = (f"short by {_kw(shortfall)} at {snap.time_of(worst):%Y-%m-%d %H:%M}: "
                  f"{len(jobs)} job(s) must run then to meet their deadlines")
    else:
        jobs = moved
        reason = (f"absorbs up to {_kw(float(committed.max(initial=0.0)))}" if not ask.shed
                  else met_reason(len(jobs)))
    return AskAnswer(ask=ask, window=at, accepted=True, asked_kw=asked,
                     committed_kw=committed, baseline_kw=before, shortfall_kw=shortfall,
                     jobs=jobs, reason=reason, moved_g=moved_g)


def met_reason(moved: int) -> str:
    """Why a shed is met: the jobs it moved, or none (the plan stays under it as is)."""
    if not moved:
        return "met: the plan stays under it, no job moved"
    return f"met: {moved} job(s) moved out of the window"


def _beyond(ask: GridAsk, snap: Snapshot) -> AskAnswer:
    """A request outside this plan's horizon: nothing to commit yet."""
    empty = np.zeros(0)
    return AskAnswer(ask=ask, window=slice(0, 0), accepted=True, asked_kw=empty,
                     committed_kw=empty, baseline_kw=empty, shortfall_kw=0.0, jobs=(),
                     reason="outside the plan's horizon: not planned against yet")


def _causing(snap: Snapshot, result: Plan, site: int, slot: int) -> tuple[str, ...]:
    """Jobs at ``site`` in ``slot`` that could not move: running (not interruptible: a
    running job that is stays in the snapshot's ``running_site``) or started at their
    latest start (forced, or over a limit). The rest would have moved first."""
    running = {j.key for j in snap.jobs if j.running_site == site
               and slot < math.ceil(j.duration / snap.slot)}
    placed = {d.key for d in result.decisions if d.site_index == site and slot in d.slots
              and (d.forced or d.oversubscribed)}
    return tuple(sorted(running | placed))


def _moved(baseline: Plan, result: Plan, site: int) -> tuple[str, ...]:
    """Jobs whose site or slots the requests changed, that were or are at ``site``."""
    before = baseline.by_key
    return tuple(sorted(
        d.key for d in result.decisions
        if (b := before.get(d.key)) is not None and site in (b.site_index, d.site_index)
        and (b.site_index, b.slots) != (d.site_index, d.slots)))


def _kw(value: float) -> str:
    return f"{value:,.0f} kW"

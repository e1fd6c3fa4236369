"""One planning round's work as data in, data out: copied on the event loop, computed in
a worker thread.

A full round of ten thousand jobs builds a snapshot (a ``JobDemand`` per job), plans it
and works out what every decision takes: about a second of CPU. Done on the event loop
it held every arrival, watch event and probe for that long. So the loop only copies what
the round reads (:func:`collect`: dictionaries and tuples of immutable objects, the
sites' nodes from the view's label index; milliseconds) into a frozen
:class:`RoundInputs`; :func:`compute` does the rest where it may take its time (it reads
nothing else, mutates nothing shared, and is safe in a thread); the service applies the
:class:`RoundResult` back on the loop, a slice at a time.

Nothing here does I/O: the functions are plain, and tested as such.
"""

from __future__ import annotations

import time
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from suandian.errors import PlanningError
from suandian.planner import (
    DEFAULT_RESOURCES,
    JobDecision,
    JobDemand,
    JobInput,
    JobTerms,
    NodeInfo,
    Plan,
    PlanParams,
    SiteSignals,
    SiteTerms,
    Snapshot,
    plan,
    snapshot_from,
)
from suandian.planner.arrivals import Arrival, expected_arrivals
from suandian.planner.grid import (
    AskAnswer,
    GridAsk,
    annotate,
    answer,
    import_ceiling_kw,
    shape,
)
from suandian.planner.model import FloatArray
from suandian.planner.terms import mean_kw, slots_for
from suandian.planning.commitments import Commitment, Commitments, absolute_slot

if TYPE_CHECKING:  # for type hints only: the planner process needs no client (a
    # protocol here), nor the forecast layer (its providers, asyncio and yaml: 5 MB; it is
    # sent PlainForecasts), nor pydantic and the API models (16 MB; it is sent PlainSites)
    from suandian.api.powersite import PowerSite
    from suandian.backends import CapacityView
    from suandian.forecast import SiteForecast

__all__ = [
    "SAME_TIME",
    "SHARED",
    "ClusterInputs",
    "Demand",
    "Held",
    "PlainForecast",
    "PlainGrid",
    "PlainSite",
    "RoundInputs",
    "RoundResult",
    "Shared",
    "SiteEntry",
    "cluster_inputs",
    "commitments_of",
    "compute",
    "floor_slot",
    "moved",
    "node_infos",
    "nodes_for",
    "snapshot_of",
]


@dataclass(frozen=True, slots=True)
class Demand:
    """One thing to plan: a ComputeJob (or a gated Pod seen as a one-pod job), by its
    terms. ``running_site``/``remaining``: it runs now and only takes supply (it is not
    re-planned)."""

    key: str
    terms: JobTerms
    created: datetime
    running_site: str | None = None
    remaining: timedelta | None = None
    until: datetime | None = None  # a running job's end of window: remaining counts to it
    runs_at: str | None = None  # planned afresh, yet running there now (what sites draw)

    def remaining_at(self, start: datetime) -> timedelta | None:
        """What is left of a running job for a round whose slot 0 begins at ``start``:
        to the end of its window (the same every round, however late the round), else
        ``remaining``."""
        if self.until is None:
            return self.remaining
        return max(self.until - start, timedelta(0))

    @property
    def power_w(self) -> float:
        return self.terms.power_w


class PlainGrid(NamedTuple):
    """A forecast's time grid as a round reads it (``TimeGrid``'s start, slot and
    length, and its :meth:`index_of`)."""

    start: datetime
    slot: timedelta
    slots: int

    def index_of(self, t: datetime) -> int:
        """Index of the slot holding ``t`` (as ``TimeGrid.index_of``)."""
        if t.tzinfo is None:
            raise ValueError(f"time {t.isoformat()} has no time zone; use an aware datetime")
        return int((t - self.start).total_seconds() // int(self.slot.total_seconds()))


@dataclass(frozen=True, slots=True)
class PlainForecast:
    """What a round reads of a site's forecast (``SiteForecast``), nothing of the
    forecast layer: the planner process is sent these, and so never loads it."""

    grid: PlainGrid
    green_kw: Mapping[str, np.ndarray]
    green_total_kw: np.ndarray
    green_p10_kw: np.ndarray
    storage_kw: np.ndarray
    carbon_g_per_kwh: np.ndarray

    @classmethod
    def of(cls, forecast: SiteForecast | PlainForecast) -> PlainForecast:
        if isinstance(forecast, PlainForecast):
            return forecast
        g = forecast.grid
        return cls(PlainGrid(g.start, g.slot, g.slots), dict(forecast.green_kw),
                   forecast.green_total_kw, forecast.green_p10_kw, forecast.storage_kw,
                   forecast.carbon_g_per_kwh)


@dataclass(frozen=True)
class SiteEntry:
    """A PowerSite and the forecast the planner should use for it."""

    site: PowerSite
    forecast: SiteForecast | PlainForecast

    def plain(self) -> PlainSite:
        """What a round reads of it, of the planner's types only."""
        return PlainSite(self.terms, PlainForecast.of(self.forecast))

    @property
    def name(self) -> str:
        return str(self.site.metadata.name or "")

    @property
    def terms(self) -> SiteTerms:
        return SiteTerms.of(self.site)


@dataclass(frozen=True)
class PlainSite:
    """A :class:`SiteEntry` as the planner process is sent it: the site's
    :class:`~suandian.planner.SiteTerms` and its :class:`PlainForecast` (a PowerSite
    would bring pydantic and the API models into the process, 16 MB)."""

    terms: SiteTerms
    forecast: PlainForecast

    def plain(self) -> PlainSite:
        return self

    @property
    def name(self) -> str:
        return self.terms.name


@dataclass(frozen=True)
class ClusterInputs:
    """Each site's schedulable nodes (by site index, in name order) and free capacity,
    as the view saw them when the round began."""

    nodes: tuple[tuple[int, Any], ...]  # (site index, NodeRecord-like: name, labels, allocatable)
    free: Mapping[str, Mapping[str, float]]


Held = Mapping[str, tuple[str, tuple[tuple[datetime, datetime], ...]]]
"""The decision each waiting job holds, by key: (site, run windows)."""


@dataclass(frozen=True)
class RoundInputs:
    """Everything a round reads, copied on the event loop (see the module docstring).

    ``decisions``: a copy of the decisions handed out so far, from which :attr:`held`
    (each waiting, unchanged demand's incumbent) is worked out off the loop (or
    ``given_held``, as the planner process receives it); ``taken``: for an arrival
    round, what the decisions already handed out take at each site (kW per slot,
    requests × slots) over the round's slots; ``recurring``: the arrivals of a day
    before the round's horizon, planned as the work expected then
    (:mod:`suandian.planner.arrivals`).
    """

    now: datetime
    full: bool
    demands: tuple[Demand, ...]
    sites: tuple[SiteEntry | PlainSite, ...]
    cluster: ClusterInputs | None
    horizon_slots: int
    decisions: Mapping[str, JobDecision] = field(default_factory=dict)
    given_held: Held | None = None
    afresh: frozenset[str] = frozenset()  # demands new or changed: planned with no incumbent
    nodes: tuple[NodeInfo, ...] | None = None  # an arrival round reuses the last full's
    # the sites, by name, that the indices of ``nodes`` count (None: ``sites``)
    node_sites: tuple[str, ...] | None = None
    taken: Mapping[str, tuple[FloatArray, FloatArray]] | None = None
    # what arrived a day before the round's horizon, to plan as expected arrivals
    # (suandian.planning.arrival_log; repeated a day later where the round is computed)
    recurring: tuple[Demand, ...] = ()
    # whether ``recurring`` is all the work forecast: the log is a day old
    # (planner.Snapshot.arrivals_complete)
    arrivals_complete: bool = False
    # the grid's requests (GridEvents), their site indices counting ``sites``: a full
    # round answers them (planner.grid.answer: it may decline a voluntary one); an
    # arrival round is given those the last full round accepted, and plans its arrivals
    # under their ceilings and with their surplus
    asks: tuple[GridAsk, ...] = ()

    @property
    def held(self) -> Held:
        """Each waiting demand's incumbent: its decision, unless it runs, is new or
        changed (planned afresh), or was placed nowhere. O(demands): computed where the
        round is computed, not on the event loop, and not kept (the operator keeps the
        last full round's inputs until the next: a dictionary of every waiting job's
        decision more would stay with them)."""
        if self.given_held is not None:
            return self.given_held
        held = {}
        for d in self.demands:
            decision = self.decisions.get(d.key)
            if (d.running_site is None and d.key not in self.afresh and decision is not None
                    and decision.site is not None and decision.windows):
                held[d.key] = (decision.site, decision.windows)
        return held


@dataclass(frozen=True)
class RoundResult:
    """A computed round: its snapshot, plan, what its decisions take, and its nodes (for
    the arrival rounds until the next full one)."""

    snapshot: Snapshot
    plan: Plan
    commitments: Commitments
    nodes: tuple[NodeInfo, ...]
    seconds: float
    answers: tuple[AskAnswer, ...] = ()  # a full round's answer to each of its asks


def cluster_inputs(view: CapacityView | None, sites: Sequence[SiteEntry]
                   ) -> ClusterInputs | None:
    """Each site's nodes and free capacity from the view: O(nodes) with its label index.
    On the event loop (the view's caches change under it); the nodes are immutable."""
    if view is None:
        return None
    nodes: list[tuple[int, Any]] = []
    free: dict[str, Mapping[str, float]] = {}
    for i, entry in enumerate(sites):
        selector = entry.site.spec.placement
        free[entry.name] = view.free_capacity(selector)
        nodes.extend((i, node) for node in view.site_nodes(selector))
    return ClusterInputs(tuple(nodes), free)


def node_infos(cluster: ClusterInputs | None) -> tuple[NodeInfo, ...]:
    """The planner's nodes (resources as arrays, in :data:`DEFAULT_RESOURCES` order)."""
    if cluster is None:
        return ()
    return tuple(
        NodeInfo(name=node.name, site=i, labels=node.labels,
                 allocatable=np.array([node.allocatable.get(r, 0.0) for r in DEFAULT_RESOURCES]))
        for i, node in cluster.nodes)


def nodes_for(nodes: tuple[NodeInfo, ...], indexed: Sequence[str], sites: Sequence[str]
              ) -> tuple[NodeInfo, ...]:
    """``nodes``, whose site indices count the sites ``indexed``, with indices counting
    ``sites`` instead; a node whose site is not among ``sites`` is left out. The same
    tuple when the names are the same (every round but those right after a site came or
    went). An arrival round reuses the last full round's nodes, and the sites may have
    changed since (a PowerSite deleted, its daemon ended, a new one): read against the
    sites of now, an index past the last is a planning error, and any other that moved
    names another site's nodes as a job's preferred ones."""
    if tuple(indexed) == tuple(sites):
        return nodes
    where = {name: i for i, name in enumerate(sites)}
    out = []
    for node in nodes:
        i = where.get(indexed[node.site]) if 0 <= node.site < len(indexed) else None
        if i is not None:
            out.append(node if i == node.site else replace(node, site=i))
    return tuple(out)


def snapshot_of(inputs: RoundInputs, nodes: Sequence[NodeInfo]) -> Snapshot | None:
    """The round's snapshot; None when there is no site to plan for. Raises
    :class:`PlanningError` when the forecasts cannot be put on one grid."""
    entries = inputs.sites
    if not entries:
        return None
    slot = entries[0].forecast.grid.slot
    start = floor_slot(inputs.now, slot)  # the slot holding now: the arrays' slot 0
    offsets = {}
    horizon = inputs.horizon_slots
    for e in entries:
        grid = e.forecast.grid
        if grid.slot != slot:
            raise PlanningError("sites forecast on different slot lengths")
        if grid.start > start:
            raise PlanningError(f"the forecast of {e.name} starts after now")
        offsets[e.name] = grid.index_of(start)
        horizon = min(horizon, grid.slots - offsets[e.name])
    if horizon <= 0:
        raise PlanningError("every forecast ends before now")
    signals = {e.name: SiteSignals.from_forecast(e.forecast, offsets[e.name], horizon)
               for e in entries}
    free = dict(inputs.cluster.free) if inputs.cluster is not None else {}
    capacity: dict[str, Mapping[str, FloatArray | float]] = dict(free)
    if inputs.cluster is not None:  # a full round reads every site's nodes; an arrival
        # round reuses the last full round's, and a site added since has none counted:
        # no room there until the full round that follows (left out of ``capacity``, a
        # site's resources are unbounded, and jobs went to a site of no known node)
        for e in entries:
            if e.name not in free:
                capacity[e.name] = dict.fromkeys(DEFAULT_RESOURCES, 0.0)
    import_limits: dict[str, FloatArray] = {}
    if not inputs.full:  # the accepted requests, as the full round planned under them
        for s, e in enumerate(entries):
            limit, surplus = import_ceiling_kw(inputs.asks, s, start, slot, horizon,
                                               e.terms.import_limit_kw)
            if surplus.any():
                sig = signals[e.name]
                signals[e.name] = replace(sig, green_p50_kw=sig.green_p50_kw + surplus,
                                          green_p10_kw=sig.green_p10_kw + surplus)
            if (limit < e.terms.import_limit_kw).any():
                import_limits[e.name] = limit
    for e in entries:  # an arrival round plans against what the decisions handed out take
        load, held = (inputs.taken or {}).get(e.name, (None, None))
        if load is None or held is None or not (load.any() or held.any()):
            continue
        sig = signals[e.name]
        # what the committed load draws beyond the green supply comes from the grid
        drawn = np.maximum(load[:horizon] - sig.green_p50_kw, 0.0)
        ceiling = import_limits.get(e.name)
        import_limits[e.name] = np.maximum(
            (e.terms.import_limit_kw if ceiling is None else ceiling) - drawn, 0.0)
        signals[e.name] = replace(
            sig, green_p50_kw=np.maximum(sig.green_p50_kw - load[:horizon], 0.0),
            green_p10_kw=np.maximum(sig.green_p10_kw - load[:horizon], 0.0))
        if e.name in free and held.any():
            capacity[e.name] = {r: np.maximum(free[e.name].get(r, 0.0) - held[i, :horizon], 0.0)
                                for i, r in enumerate(DEFAULT_RESOURCES)}
    known = {e.name for e in entries}
    incumbents = inputs.held
    jobs = [
        # Rounds plan on the slot grid (slot 0 = the slot holding now), so re-plans agree
        # on slot boundaries. A job created inside slot 0 counts as created at its start
        # (else it could only start at the next boundary); for a maxDelay deadline that
        # is up to one slot earlier: on the safe side.
        JobInput(job=d.terms, key=d.key,
                 created=min(d.created, start) if d.created < start + slot else d.created,
                 running_site=d.running_site if d.running_site in known else None,
                 remaining=d.remaining_at(start), held=incumbents.get(d.key))
        for d in inputs.demands
    ]
    seen = [JobInput(job=d.terms, key=d.key, created=d.created) for d in inputs.recurring]
    snap = snapshot_from(now=start, slot=slot, sites=[e.terms for e in entries],
                         signals=signals, jobs=jobs + seen, nodes=nodes,
                         capacity=capacity, import_limits=import_limits)
    del jobs  # (what the planner keeps of them is in the snapshot)
    if inputs.full:  # thousands of jobs to plan; an arrival round's few are not worth it
        snap = replace(snap, jobs=tuple(SHARED.demand(j) for j in snap.jobs))
    snap = replace(snap, arrivals_complete=inputs.arrivals_complete)
    if not seen:
        return snap
    # yesterday's demands as they were, repeated a day later (planner.arrivals)
    real = len(snap.jobs) - len(seen)
    history = [Arrival(d.created, j) for d, j in zip(inputs.recurring, snap.jobs[real:],
                                                      strict=True)]
    return replace(snap, jobs=snap.jobs[:real], expected=expected_arrivals(
        history, start, start + slot * horizon, limit=len(history)))


SHARED_LIMIT = 50_000
"""Values a :class:`Shared` table holds at most; then it starts afresh (the objects
already shared stay so: it only stops finding them)."""


class Shared:
    """One object for each value of what decisions and commitments repeat by the
    thousand: ten thousand jobs waiting for the same wind hold a few distinct run
    windows, slot lists, reasons and requests between them, and as objects of their own
    these are some 800 bytes a job (the planner makes them afresh for every decision of
    every round). Values only: a decision or commitment that goes through here is
    equal to what came in. Safe across threads (a race makes a second copy, no more);
    a shared array is read-only."""

    def __init__(self, limit: int = SHARED_LIMIT) -> None:
        self.limit = limit
        self._table: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self._table)

    def one(self, key: Any, value: Any) -> Any:
        """The object held for ``key``, ``value`` the first time."""
        found = self._table.get(key)
        if found is None:
            if len(self._table) >= self.limit:
                self._table.clear()
            self._table[key] = found = value
        return found

    def array(self, a: np.ndarray) -> np.ndarray:
        """One read-only array for each dtype, shape and contents."""
        key = ("array", a.dtype.str, a.shape, a.tobytes())
        found = self._table.get(key)
        if found is None:
            if a.flags.writeable:
                a = a.copy()  # the caller's stays its own, and writeable
                a.flags.writeable = False
            found = self.one(key, a)
        return found  # type: ignore[no-any-return]

    def decision(self, d: JobDecision, key: str | None = None) -> JobDecision:
        """``d`` with its repeated parts shared (and its key ``key``, when given: the
        caller's string rather than a copy)."""
        tz = d.latest_start.tzinfo  # equal times of other zones stay apart
        new = {
            "slots": self.one(("slots", d.slots, type(d.slots[0]) if d.slots else None),
                              d.slots),
            "windows": self.one(("windows", d.windows, tz), d.windows),
            "node_preferences": self.one(("nodes", d.node_preferences), d.node_preferences),
            "reason": self.one(("reason", d.reason), d.reason),
            "latest_start": self.one(("time", d.latest_start, tz), d.latest_start),
            "planned_start": d.planned_start if d.planned_start is None else self.one(
                ("time", d.planned_start, d.planned_start.tzinfo), d.planned_start),
            "site": d.site if d.site is None else self.one(("site", d.site), d.site),
        }
        if key is not None and key == d.key:
            new["key"] = key
        if all(getattr(d, name) is value for name, value in new.items()):
            return d
        return replace(d, **new)

    def demand(self, j: JobDemand) -> JobDemand:
        """``j`` with its requests (read-only) and allowed sites shared: jobs of one
        template ask alike."""
        resources = self.array(j.resources)
        pod = j.pod_resources if j.pod_resources is None else self.array(j.pod_resources)
        allowed = j.allowed_sites if j.allowed_sites is None else self.one(
            ("allowed", j.allowed_sites), j.allowed_sites)
        if resources is j.resources and pod is j.pod_resources and allowed is j.allowed_sites:
            return j
        return replace(j, resources=resources, pod_resources=pod, allowed_sites=allowed)

    def commitment(self, c: Commitment) -> Commitment:
        """``c`` with its slots and request shared."""
        slots = self.array(c.slots)
        request = c.request if c.request is None else self.array(c.request)
        if slots is c.slots and request is c.request:
            return c
        return Commitment(self.one(("site", c.site), c.site), slots, c.kw, request)


SHARED = Shared()
"""The process's table: rounds share through it (:func:`compute`), and so do the
decisions the planner process sends back."""


def commitments_of(snapshot: Snapshot, result: Plan, into: Commitments | None = None,
                   keys: Container[str] | None = None) -> Commitments:
    """What the round's running jobs and decisions take, on the absolute slot axis (see
    :mod:`.commitments`), added to ``into`` (a new ledger when None); of the jobs in
    ``keys`` only, when given."""
    out = into if into is not None else Commitments(len(DEFAULT_RESOURCES))
    base = absolute_slot(snapshot.now, snapshot.slot)
    pue = [s.pue for s in snapshot.sites]
    jobs = {j.key: j for j in snapshot.jobs}
    for j in snapshot.jobs:
        if j.running_site is not None and (keys is None or j.key in keys):
            n = slots_for(j.duration, snapshot.slot)
            out.commit(j.key, SHARED.commitment(Commitment(
                snapshot.site_names[j.running_site], base + np.arange(n),
                mean_kw(j.power_w, j.duration, n, snapshot.slot) * pue[j.running_site],
                None)))
    for d in result.decisions:
        job = jobs.get(d.key)
        if job is None or d.site is None or d.site_index is None or not d.slots or (
                keys is not None and d.key not in keys):
            continue
        request = np.asarray(job.resources, dtype=float)
        out.commit(d.key, SHARED.commitment(Commitment(
            d.site, base + np.asarray(d.slots),
            mean_kw(job.power_w, job.duration, len(d.slots), snapshot.slot) * pue[d.site_index],
            request if request.any() else None)))
    return out


def compute(inputs: RoundInputs, params: PlanParams, account: bool = True
            ) -> RoundResult | None:
    """Build, plan and account one round (None: no site to plan for; ``account``
    False: an empty ledger, the caller accounts what it needs). Pure: it reads only
    ``inputs`` and may run in any thread."""
    started = time.perf_counter()
    if inputs.nodes is None:
        nodes = node_infos(inputs.cluster)
    elif inputs.node_sites is None:
        nodes = inputs.nodes
    else:  # the last full round's, indexed by its sites
        nodes = nodes_for(inputs.nodes, inputs.node_sites, [e.name for e in inputs.sites])
    snapshot = snapshot_of(inputs, nodes)
    if snapshot is None:
        return None
    answers: tuple[AskAnswer, ...] = ()
    tariffs = [a for a in inputs.asks if a.tariff is not None]
    if tariffs and not inputs.full:  # an arrival round pays the same tariff
        snapshot = shape(snapshot, tariffs, None, params.tariff_weight_g_per_unit)
    if inputs.full and inputs.asks:
        answered = answer(snapshot, inputs.asks, params)
        result, answers = answered.plan, answered.answers
    else:  # (an arrival round's asks are in its snapshot: snapshot_of)
        result = annotate(snapshot, plan(snapshot, params), inputs.asks)
    result = replace(result, decisions=tuple(SHARED.decision(d) for d in result.decisions))
    ledger = commitments_of(snapshot, result) if account else Commitments(
        len(DEFAULT_RESOURCES))
    return RoundResult(snapshot, result, ledger, nodes, time.perf_counter() - started,
                       answers)


def floor_slot(now: datetime, slot: timedelta) -> datetime:
    """The start of the slot holding ``now`` on the epoch-anchored grid."""
    epoch = datetime(1970, 1, 1, tzinfo=now.tzinfo)
    return epoch + slot * ((now - epoch) // slot)


SAME_TIME = timedelta(minutes=1)
"""Rounds start at slightly different moments: times within a minute are the same."""


def moved(site: str | None, start: datetime | None,
          windows: Sequence[tuple[datetime, datetime]], new: JobDecision) -> bool:
    """Whether ``new`` is news to a job whose decision was (``site``, ``start``,
    ``windows``): another site, or a start or run window a minute or more apart."""
    if site != new.site or not _close(start, new.planned_start):
        return True
    return len(windows) != len(new.windows) or not all(
        _close(a, c) and _close(b, d) for (a, b), (c, d) in zip(windows, new.windows,
                                                                 strict=True))


def _close(a: datetime | None, b: datetime | None) -> bool:
    return a == b or (a is not None and b is not None and abs(a - b) < SAME_TIME)

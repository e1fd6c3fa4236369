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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from suandian.api.powersite import PowerSite
from suandian.errors import PlanningError
from suandian.forecast import SiteForecast, TimeGrid
from suandian.planner import (
    DEFAULT_RESOURCES,
    JobDecision,
    JobInput,
    JobTerms,
    NodeInfo,
    Plan,
    PlanParams,
    SiteSignals,
    Snapshot,
    plan,
    snapshot_from,
)
from suandian.planner.arrivals import Arrival, expected_arrivals
from suandian.planner.model import FloatArray
from suandian.planner.terms import mean_kw, slots_for
from suandian.planning.commitments import Commitment, Commitments, absolute_slot

if TYPE_CHECKING:  # a protocol, for type hints only: the planner process needs no client
    from suandian.backends import CapacityView

__all__ = [
    "SAME_TIME",
    "ClusterInputs",
    "Demand",
    "Held",
    "RoundInputs",
    "RoundResult",
    "SiteEntry",
    "cluster_inputs",
    "commitments_of",
    "compute",
    "floor_slot",
    "moved",
    "node_infos",
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

    @property
    def power_w(self) -> float:
        return self.terms.power_w


@dataclass(frozen=True)
class SiteEntry:
    """A PowerSite and the forecast the planner should use for it."""

    site: PowerSite
    forecast: SiteForecast

    @property
    def name(self) -> str:
        return str(self.site.metadata.name or "")


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
    sites: tuple[SiteEntry, ...]
    cluster: ClusterInputs | None
    horizon_slots: int
    decisions: Mapping[str, JobDecision] = field(default_factory=dict)
    given_held: Held | None = None
    afresh: frozenset[str] = frozenset()  # demands new or changed: planned with no incumbent
    nodes: tuple[NodeInfo, ...] | None = None  # an arrival round reuses the last full's
    taken: Mapping[str, tuple[FloatArray, FloatArray]] | None = None
    # what arrived a day before the round's horizon, to plan as expected arrivals
    # (suandian.planning.arrival_log; repeated a day later where the round is computed)
    recurring: tuple[Demand, ...] = ()

    @cached_property
    def held(self) -> Held:
        """Each waiting demand's incumbent: its decision, unless it runs, is new or
        changed (planned afresh), or was placed nowhere. O(demands): computed where the
        round is computed, not on the event loop."""
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
        grid: TimeGrid = e.forecast.grid
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
    import_limits: dict[str, FloatArray] = {}
    for e in entries:  # an arrival round plans against what the decisions handed out take
        load, held = (inputs.taken or {}).get(e.name, (None, None))
        if load is None or held is None or not (load.any() or held.any()):
            continue
        sig = signals[e.name]
        # what the committed load draws beyond the green supply comes from the grid
        drawn = np.maximum(load[:horizon] - sig.green_p50_kw, 0.0)
        import_limits[e.name] = np.maximum(e.site.spec.grid.import_limit_kw - drawn, 0.0)
        signals[e.name] = replace(
            sig, green_p50_kw=np.maximum(sig.green_p50_kw - load[:horizon], 0.0),
            green_p10_kw=np.maximum(sig.green_p10_kw - load[:horizon], 0.0))
        if e.name in free and held.any():
            capacity[e.name] = {r: np.maximum(free[e.name].get(r, 0.0) - held[i, :horizon], 0.0)
                                for i, r in enumerate(DEFAULT_RESOURCES)}
    known = {e.name for e in entries}
    jobs = [
        # Rounds plan on the slot grid (slot 0 = the slot holding now), so re-plans agree
        # on slot boundaries. A job created inside slot 0 counts as created at its start
        # (else it could only start at the next boundary); for a maxDelay deadline that
        # is up to one slot earlier: on the safe side.
        JobInput(job=d.terms, key=d.key,
                 created=min(d.created, start) if d.created < start + slot else d.created,
                 running_site=d.running_site if d.running_site in known else None,
                 remaining=d.remaining, held=inputs.held.get(d.key))
        for d in inputs.demands
    ]
    seen = [JobInput(job=d.terms, key=d.key, created=d.created) for d in inputs.recurring]
    snap = snapshot_from(now=start, slot=slot, sites=[e.site for e in entries],
                         signals=signals, jobs=jobs + seen, nodes=nodes,
                         capacity=capacity, import_limits=import_limits)
    if not seen:
        return snap
    # yesterday's demands as they were, repeated a day later (planner.arrivals)
    history = [Arrival(d.created, j) for d, j in zip(inputs.recurring, snap.jobs[len(jobs):],
                                                      strict=True)]
    return replace(snap, jobs=snap.jobs[:len(jobs)], expected=expected_arrivals(
        history, start, start + slot * horizon, limit=len(history)))


def commitments_of(snapshot: Snapshot, result: Plan, into: Commitments | None = None
                   ) -> Commitments:
    """What the round's running jobs and decisions take, on the absolute slot axis (see
    :mod:`.commitments`), added to ``into`` (a new ledger when None)."""
    out = into if into is not None else Commitments(len(DEFAULT_RESOURCES))
    base = absolute_slot(snapshot.now, snapshot.slot)
    pue = [s.pue for s in snapshot.sites]
    jobs = {j.key: j for j in snapshot.jobs}
    for j in snapshot.jobs:
        if j.running_site is not None:
            n = slots_for(j.duration, snapshot.slot)
            out.commit(j.key, Commitment(snapshot.site_names[j.running_site],
                                         base + np.arange(n),
                                         mean_kw(j.power_w, j.duration, n, snapshot.slot)
                                         * pue[j.running_site], None))
    for d in result.decisions:
        job = jobs.get(d.key)
        if job is None or d.site is None or d.site_index is None or not d.slots:
            continue
        request = np.asarray(job.resources, dtype=float)
        out.commit(d.key, Commitment(
            d.site, base + np.asarray(d.slots),
            mean_kw(job.power_w, job.duration, len(d.slots), snapshot.slot) * pue[d.site_index],
            request if request.any() else None))
    return out


def compute(inputs: RoundInputs, params: PlanParams) -> RoundResult | None:
    """Build, plan and account one round (None: no site to plan for). Pure: it reads
    only ``inputs`` and may run in any thread."""
    started = time.perf_counter()
    nodes = inputs.nodes if inputs.nodes is not None else node_infos(inputs.cluster)
    snapshot = snapshot_of(inputs, nodes)
    if snapshot is None:
        return None
    result = plan(snapshot, params)
    return RoundResult(snapshot, result, commitments_of(snapshot, result), nodes,
                       time.perf_counter() - started)


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

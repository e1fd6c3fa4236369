"""Planning rounds: gather what waits, build one snapshot, plan it, hand out decisions.

Jobs and gated pods register a :class:`Demand` with a listener (:meth:`PlanningService.upsert`)
and are told when a round gives them a decision, or changes it; arrivals within
``plan_batch_window`` share one round, so a burst of creations costs one call of
:func:`suandian.planner.plan`. Such an arrival round plans only the arrivals,
against the green supply and capacity the decisions already handed out take
(:mod:`.commitments`): its cost follows the arrivals, not the thousands of waiting jobs.
A full round, where every waiting job is re-planned together (the planner shares green
supply and capacity between them: no herding), runs first, when forecasts refresh, when
nodes come or go, and every ``replan_interval``.

The service computes only: it writes nothing to the API. The scheduler's steps act on
the decisions (and write them into the objects), and a paused (standby) replica steps
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from suandian import metrics
from suandian.api.powersite import PowerSite
from suandian.backends import CapacityView
from suandian.config import Settings
from suandian.controllers.clock import Clock
from suandian.controllers.commitments import Commitment, Commitments, absolute_slot
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
from suandian.planner.model import FloatArray

__all__ = ["MAX_BACKOFF", "Demand", "PlanningService", "SiteEntry", "signals_from"]

MAX_BACKOFF = 60.0
"""Seconds between retries of a planning round that keeps failing, at most."""

log = logging.getLogger(__name__)


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


def signals_from(forecast: SiteForecast, offset: int, slots: int) -> SiteSignals:
    """The forecast from slot ``offset`` as planner signals (see ``SiteSignals.from_forecast``)."""
    return SiteSignals.from_forecast(forecast, offset, slots)


class PlanningService:
    """Batches planning requests into rounds and keeps the latest decision of each demand."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        sites: Callable[[], Mapping[str, SiteEntry]],
        view: Callable[[], CapacityView | None],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._sites = sites
        self._view = view
        self.params = PlanParams(safety_margin=settings.safety_margin,
                                 risk_aversion=settings.risk_aversion,
                                 move_threshold_g=settings.move_threshold_g,
                                 move_threshold_share=settings.move_threshold_share)
        self._demands: dict[str, Demand] = {}
        self._decisions: dict[str, JobDecision] = {}
        self._listeners: dict[str, Callable[[JobDecision], None]] = {}
        self._dirty = asyncio.Event()
        self._full = True  # the next round re-plans everyone (else: only what is new)
        self._fresh: set[str] = set()  # demands new or changed since the last round
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        # when a round last ended soundly: it planned, or failed for a reason the
        # snapshot explains (PlanningError: a restart would not mend it, and would lose
        # the last good forecasts); not after a bug, nor while a round hangs
        self.last_sound: datetime | None = None
        # called at the end of every round (the operator republishes its job census)
        self.after_round: Callable[[], None] | None = None
        # called after every full round (the operator tidies its heap then: .heap)
        self.after_full_round: Callable[[], None] | None = None
        # what handed-out decisions take, for arrival rounds (see controllers.commitments)
        self._commitments = Commitments(len(DEFAULT_RESOURCES))
        # nodes and free capacity as of the last full round (arrival rounds reuse them)
        self._cluster: tuple[list[NodeInfo], dict[str, dict[str, float]]] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self.last_sound = self.clock.now()  # the grace of a first round
            self._task = asyncio.create_task(self._run(), name="suandian-planning")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- demands -------------------------------------------------------------------------

    def upsert(self, demand: Demand, on_change: Callable[[JobDecision], None] | None = None,
               ) -> None:
        """Add or update a demand; the next round plans it (no round if nothing changed).

        ``on_change`` is called when a round gives the demand its first decision and
        whenever a later round changes it (site, start or windows).
        """
        if on_change is not None:
            self._listeners[demand.key] = on_change
        if self._demands.get(demand.key) == demand:
            return
        self._demands[demand.key] = demand
        self._fresh.add(demand.key)
        self._dirty.set()

    def remove(self, key: str) -> None:
        self._commitments.release(key)
        self._demands.pop(key, None)
        self._decisions.pop(key, None)
        self._listeners.pop(key, None)

    def stale(self, key: str, demand: Demand) -> bool:
        """Whether ``demand`` differs from what the last rounds planned for ``key``."""
        return self._demands.get(key) != demand

    def current(self, key: str) -> JobDecision | None:
        return self._decisions.get(key)

    def running_power_kw(self, site: str) -> float:
        """IT power of the work running at ``site`` now, kW."""
        return sum(d.power_w for d in self._demands.values() if d.running_site == site) / 1e3

    def replan(self) -> None:
        """Ask for a full round soon (forecast refreshed, capacity changed)."""
        self._full = True
        self._dirty.set()

    def clear(self) -> None:
        """Forget every demand and decision (a paused replica; the watch re-lists)."""
        self._demands.clear()
        self._decisions.clear()
        self._listeners.clear()
        self._fresh.clear()
        self._commitments.clear()
        self._full = True

    def pending(self, key: str) -> bool:
        """Whether ``key`` waits for a round (registered, not decided since it changed)."""
        return key in self._fresh or (key in self._demands and key not in self._decisions)

    # -- rounds --------------------------------------------------------------------------

    async def _run(self) -> None:
        """Rounds for ever. A round that fails, whatever the error (a bug too), is
        logged (its traceback once per distinct error), counted
        (``suandian_planning_failures_total``) and retried after a backoff that doubles
        from 1 s to :data:`MAX_BACKOFF`; one that succeeds resets it. Nothing but
        cancellation ends the loop; :meth:`health` tells when it is wedged."""
        interval = self.settings.replan_interval.total_seconds()
        failures, last = 0, ""
        while True:
            try:
                await asyncio.wait_for(self._dirty.wait(), timeout=interval)
            except TimeoutError:
                self._full = True
            await asyncio.sleep(self.settings.plan_batch_window)
            self._dirty.clear()
            try:
                await self.run_round()
            except Exception as exc:
                failures += 1
                message = f"{type(exc).__name__}: {exc}"
                self.last_error = message
                bug = not isinstance(exc, PlanningError | ValueError)
                metrics.record_planning_failure("Bug" if bug else "Planning")
                if not bug:
                    self.last_sound = self.clock.now()
                delay = min(MAX_BACKOFF, 2.0 ** min(failures - 1, 16))  # no overflow
                if message != last:
                    log.error("planning round failed (retrying in %.0f s): %s", delay,
                              message, exc_info=bug)
                else:
                    log.error("planning round failed again (%d in a row; retrying in "
                              "%.0f s): %s", failures, delay, message)
                last = message
                await asyncio.sleep(delay)
                self._dirty.set()
            else:
                failures, last = 0, ""
                self.last_sound = self.clock.now()

    def health(self, now: datetime) -> str:
        """``ok`` (or the last planning error, which a restart would not mend), or raise
        :class:`PlanningError` when a restart is the cure: the loop ended, or no round
        has ended soundly for three replan intervals (every round failed with a bug, or
        one hangs; an idle operator still plans every interval). The liveness probe
        calls it, so the kubelet restarts such a replica and the new one rebuilds its
        state from the API."""
        if self._task is not None and self._task.done():
            why = "cancelled" if self._task.cancelled() else repr(self._task.exception())
            raise PlanningError(f"the planning loop ended ({why})")
        limit = 3 * self.settings.replan_interval
        if self.last_sound is not None and now - self.last_sound > limit:
            raise PlanningError(
                f"no planning round ended soundly for {now - self.last_sound} (limit "
                f"{limit}); last error: {self.last_error or 'none (a round hangs)'}")
        return self.last_error or "ok"

    async def run_round(self) -> Plan | None:
        """Plan now; hand out the decisions that may change.

        A full round (the first, forecast refresh, capacity change, every
        ``replan_interval``) plans every registered demand together and may change any
        waiting job's decision. A round triggered only by arrivals plans only the new (or
        changed) demands, against the green power and capacity the decisions already
        handed out take (:mod:`.commitments`): its cost grows with the arrivals, not with
        every waiting job, and it does not reshuffle the deferred jobs; the next full
        round reconciles everyone.
        """
        full, fresh = self._full or self._cluster is None, self._fresh
        self._full, self._fresh = False, set()
        try:
            return await self._plan_round(full, fresh)
        except BaseException:
            self._full, self._fresh = self._full or full, self._fresh | fresh  # retried
            raise

    async def _plan_round(self, full: bool, fresh: set[str]) -> Plan | None:
        self.last_error = None  # the snapshot may say why nothing can be planned
        if full:
            demands = list(self._demands.values())
        else:
            demands = [self._demands[k] for k in fresh if k in self._demands]
            for key in fresh:
                self._commitments.release(key)  # planned again: its old take is free
        result: Plan | None = None
        if demands:
            snapshot = self._snapshot(demands, full, fresh)
            if snapshot is not None:
                started = time.perf_counter()
                if len(demands) > 8:
                    result = await asyncio.get_running_loop().run_in_executor(
                        None, plan, snapshot, self.params)
                else:  # small: cheaper than a thread hop (and no GIL contention)
                    result = plan(snapshot, self.params)
                took = time.perf_counter() - started
                metrics.record_planning(took, len(result.decisions))
                log.debug("planning round (%s): %d demands in %.0f ms",
                          "full" if full else "arrivals", len(demands), took * 1e3)
                if full:
                    self._commitments.clear()
                self._commit(snapshot, result)
                for decision in result.decisions:
                    if decision.key not in self._demands:
                        continue
                    old = self._decisions.get(decision.key)
                    if not full and old is not None and decision.key not in fresh:
                        continue
                    self._decisions[decision.key] = decision
                    listener = self._listeners.get(decision.key)
                    # told: a first decision, any decision of a changed demand (its step
                    # waits for it, even if it comes out the same), or a changed one
                    if listener is not None and (old is None or decision.key in fresh
                                                 or _differs(old, decision)):
                        listener(decision)
        if self.after_round is not None:
            self.after_round()
        if full and result is not None and self.after_full_round is not None:
            self.after_full_round()
        return result

    def _commit(self, snapshot: Snapshot, result: Plan) -> None:
        """Record what this round's running jobs and decisions take (see .commitments)."""
        base = absolute_slot(snapshot.now, snapshot.slot)
        slot_s = snapshot.slot.total_seconds()
        pue = [s.pue for s in snapshot.sites]
        jobs = {j.key: j for j in snapshot.jobs}
        for j in snapshot.jobs:
            if j.running_site is not None:
                n = max(1, -(-j.duration // snapshot.slot))
                kw = j.power_w / 1e3 * j.duration.total_seconds() / (n * slot_s)
                self._commitments.commit(j.key, Commitment(
                    snapshot.site_names[j.running_site], base + np.arange(n),
                    kw * pue[j.running_site], None))
        for d in result.decisions:
            job = jobs.get(d.key)
            if job is None or d.site is None or d.site_index is None or not d.slots:
                continue
            n = len(d.slots)
            kw = job.power_w / 1e3 * job.duration.total_seconds() / (n * slot_s)
            request = np.asarray(job.resources, dtype=float)
            self._commitments.commit(d.key, Commitment(
                d.site, base + np.asarray(d.slots), kw * pue[d.site_index],
                request if request.any() else None))

    def _cluster_now(self) -> tuple[list[NodeInfo], dict[str, dict[str, float]]] | None:
        """Schedulable nodes (as the planner sees them) and free capacity per site."""
        view = self._view()
        if view is None:
            return None
        entries = sorted(self._sites().values(), key=lambda e: e.site.metadata.name or "")
        nodes: list[NodeInfo] = []
        capacity: dict[str, dict[str, float]] = {}
        for i, e in enumerate(entries):
            selector = e.site.spec.node_selector
            capacity[e.site.metadata.name or ""] = view.free_capacity(selector)
            for node in view.site_nodes(selector):
                nodes.append(NodeInfo(
                    name=node.name, site=i,
                    allocatable=np.array([node.allocatable.get(r, 0.0)
                                          for r in DEFAULT_RESOURCES]),
                    labels=node.labels))
        return nodes, capacity

    def _held(self, demand: Demand, fresh: AbstractSet[str]
              ) -> tuple[str, tuple[tuple[datetime, datetime], ...]] | None:
        """The decision a waiting job holds, kept by the planner unless moving saves more
        than the move threshold (:class:`~suandian.planner.model.Incumbent`); none for
        a running job or one whose spec changed since (planned afresh)."""
        if demand.running_site is not None or demand.key in fresh:
            return None
        decision = self._decisions.get(demand.key)
        if decision is None or decision.site is None or not decision.windows:
            return None
        return decision.site, decision.windows

    def _snapshot(self, demands: Sequence[Demand], full: bool = True,
                  fresh: AbstractSet[str] = frozenset()) -> Snapshot | None:
        sites = self._sites()
        if not sites:
            self.last_error = "no PowerSites known yet"
            return None
        now = self.clock.now()
        entries = sorted(sites.values(), key=lambda e: e.site.metadata.name or "")
        slot = entries[0].forecast.grid.slot
        start = _floor(now, slot)  # the slot holding now: the arrays' slot 0
        offsets = {}
        horizon = self.settings.horizon_slots
        for e in entries:
            grid: TimeGrid = e.forecast.grid
            if grid.slot != slot:
                raise PlanningError("sites forecast on different slot lengths")
            if grid.start > start:
                raise PlanningError(f"the forecast of {e.site.metadata.name} starts after now")
            offset = grid.index_of(start)
            offsets[e.site.metadata.name or ""] = offset
            horizon = min(horizon, grid.slots - offset)
        if horizon <= 0:
            raise PlanningError("every forecast ends before now")
        signals = {e.site.metadata.name or "": signals_from(
            e.forecast, offsets[e.site.metadata.name or ""], horizon) for e in entries}
        cluster = self._cluster_now() if full or self._cluster is None else self._cluster
        if full:
            self._cluster = cluster
        nodes: list[NodeInfo] = []
        free: dict[str, dict[str, float]] = {}
        if cluster is not None:
            nodes, free = cluster
        capacity: dict[str, Mapping[str, FloatArray | float]] = dict(free)
        import_limits: dict[str, FloatArray] = {}
        if not full:  # arrivals: plan against what the decisions handed out leave
            first = absolute_slot(start, slot)
            by_name = {e.site.metadata.name or "": e.site for e in entries}
            for name in list(signals):
                load, held = self._commitments.window(name, first, horizon)
                if not load.any() and not held.any():
                    continue
                sig = signals[name]
                # what the committed load draws beyond the green supply comes from the grid
                drawn = np.maximum(load - sig.green_p50_kw, 0.0)
                import_limits[name] = np.maximum(
                    by_name[name].spec.grid.import_limit_kw - drawn, 0.0)
                signals[name] = replace(
                    sig, green_p50_kw=np.maximum(sig.green_p50_kw - load, 0.0),
                    green_p10_kw=np.maximum(sig.green_p10_kw - load, 0.0))
                if name in free and held.any():
                    capacity[name] = {
                        r: np.maximum(free[name].get(r, 0.0) - held[i], 0.0)
                        for i, r in enumerate(DEFAULT_RESOURCES)}
        known = {e.site.metadata.name for e in entries}
        jobs = [
            JobInput(job=d.terms, key=d.key, created=min(d.created, start) if d.created < start
                     + slot else d.created,
                     running_site=d.running_site if d.running_site in known else None,
                     remaining=d.remaining, held=self._held(d, fresh))
            for d in demands
        ]
        # Rounds plan on the slot grid (slot 0 = the slot holding now), so re-plans agree
        # on slot boundaries. A job created inside slot 0 counts as created at its start
        # (else it could only start at the next boundary); for a maxDelay deadline that
        # is up to one slot earlier: on the safe side.
        return snapshot_from(now=start, slot=slot, sites=[e.site for e in entries],
                             signals=signals, jobs=jobs, nodes=nodes, capacity=capacity,
                             import_limits=import_limits)


def _floor(now: datetime, slot: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=now.tzinfo)
    return epoch + slot * ((now - epoch) // slot)


SAME_TIME = timedelta(minutes=1)


def _close(a: datetime | None, b: datetime | None) -> bool:
    return a == b or (a is not None and b is not None and abs(a - b) < SAME_TIME)


def _differs(old: JobDecision, new: JobDecision) -> bool:
    """Whether a new decision matters to the object: another site, start or windows.

    Rounds start at slightly different moments, so times within a minute are the same.
    """
    if old.site != new.site or not _close(old.planned_start, new.planned_start):
        return True
    if len(old.windows) != len(new.windows):
        return True
    return not all(_close(a, c) and _close(b, d)
                   for (a, b), (c, d) in zip(old.windows, new.windows, strict=True))

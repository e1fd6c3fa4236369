"""Planning rounds: gather what waits, build one snapshot, plan it, hand out decisions.

Jobs and gated pods register a :class:`Demand` with a listener (:meth:`PlanningService.upsert`)
and are told when a round gives them a decision, or changes it; arrivals within
``plan_batch_window`` share one round, so a burst of creations costs one call of
:func:`suandian.planner.plan`. Such an arrival round plans only the arrivals,
against the green supply and capacity the decisions already handed out take
(:mod:`suandian.planning.commitments`): its cost follows the arrivals, not the
thousands of waiting jobs.
A full round, where every waiting job is re-planned together (the planner shares green
supply and capacity between them: no herding), runs first, when forecasts refresh, when
nodes come or go, and every ``replan_interval``.

A full round never holds up an arrival. Its inputs are copied on the event loop (a few
milliseconds: :meth:`PlanningService._take`) and it is computed in a worker thread, while
the loop goes on deciding arrivals against the ledger of the decisions handed out so
far. When it ends, its decisions are handed out a slice at a time
(:data:`HAND_OUT_SLICE`), its ledger replaces the old one, and the arrivals decided
meanwhile, which it did not know, are planned again against it in the next arrival
round, each holding its decision (it moves only when its place no longer fits, or a
move saves more than the move threshold). A demand changed while it computed keeps
the answer of its own arrival round: the full round's answer for the old spec is
dropped.

The service computes only: it writes nothing to the API. The scheduler's steps act on
the decisions (and write them into the objects), and a paused (standby) replica steps
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from suandian import metrics
from suandian.backends import CapacityView
from suandian.config import Settings
from suandian.controllers.clock import Clock
from suandian.controllers.retries import Streak, failed
from suandian.errors import PlanningError
from suandian.forecast import SiteForecast
from suandian.planner import DEFAULT_RESOURCES, JobDecision, Plan, PlanParams, SiteSignals
from suandian.planner.data import DataLink, parse_links
from suandian.planner.grid import AskAnswer, GridAsk, freeze, open_asks
from suandian.planner.model import FloatArray, NodeInfo
from suandian.planning.arrival_log import ArrivalLog
from suandian.planning.commitments import Commitments, absolute_slot
from suandian.planning.process import PlannerProcess, RemoteRound, same_nodes
from suandian.planning.rounds import (
    Demand,
    RoundInputs,
    RoundResult,
    SiteEntry,
    cluster_inputs,
    compute,
    floor_slot,
    moved,
    node_infos,
)

__all__ = ["HAND_OUT_SLICE", "MAX_BACKOFF", "MOVE_SOON", "Demand", "PlanningService", "SiteEntry",
           "signals_from"]

FIRST_BACKOFF = timedelta(seconds=1)
"""The wait after a failed planning round; it doubles at each failure in a row."""
MAX_BACKOFF = timedelta(minutes=1)
"""The wait between retries of a planning round that keeps failing, at most."""
HAND_OUT_SLICE = 500
"""Decisions handed out between two yields to the event loop when a round ends."""
MOVE_SOON = timedelta(minutes=15)
"""A moved decision starting sooner than this is told to the job's listener at once, a
later one to :attr:`PlanningService.moved` (the operator steps those after the steps
that are due, at a bounded rate)."""
INLINE_DEMANDS = 8
"""Rounds of at most this many demands are computed on the loop (cheaper than a thread
hop, and no contention for the GIL); larger ones in a worker thread."""

EXPECTED_LIMIT = 5_000
"""Expected arrivals a full round plans at most, the nearest first: each costs the round
about what a job costs (a round of 10,000 jobs and as many expected took 1.8 s of CPU
against 0.8 s without them, when capacity can bind; none when it cannot)."""

ARRIVAL_EXPECTED_LIMIT = 500
"""Expected arrivals an arrival round plans at most (those due before its jobs' last
deadline)."""

log = logging.getLogger(__name__)

Computed = RoundResult | RemoteRound | None
"""A computed round: in this process (a thread, or at once), or in the planner process."""


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
                                 move_threshold_share=settings.move_threshold_share,
                                 delay_penalty_share_h=settings.delay_penalty_share_h,
                                 repair_work=settings.repair_work,
                                 repair_jobs=settings.repair_jobs,
                                 expected_arrivals=settings.expected_arrivals,
                                 tariff_weight_g_per_unit=settings.tariff_weight_g_per_unit,
                                 data_links=parse_links(settings.data_links, DataLink(
                                     settings.data_bandwidth_gbps,
                                     settings.data_kwh_per_gb)))
        self._demands: dict[str, Demand] = {}
        self._arrival_log = ArrivalLog()  # every demand as first seen: expected arrivals
        self._decisions: dict[str, JobDecision] = {}
        self._listeners: dict[str, Callable[[JobDecision], None]] = {}
        self._dirty = asyncio.Event()
        self._full = True  # the next round re-plans everyone (else: only what is new)
        self._fresh: set[str] = set()  # demands new or changed since the last round
        # decided by an arrival round while a full round was computing: planned again
        # against what the full round's decisions take, holding their decision
        self._recheck: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        # the full round computing in a worker thread, and what it was given
        self._computing: tuple[asyncio.Future[Computed], RoundInputs] | None = None
        self._inflight: frozenset[str] = frozenset()  # fresh demands the full round plans
        self.last_error: str | None = None
        # when a round last ended soundly: it planned, or failed for a reason the
        # snapshot explains (PlanningError: a restart would not mend it, and would lose
        # the last good forecasts); not after a bug, nor while a round hangs
        self.last_sound: datetime | None = None
        # called at the end of every round (the operator republishes its job census)
        self.after_round: Callable[[], None] | None = None
        # called after every full round (the operator tidies its heap then: .heap)
        self.after_full_round: Callable[[], None] | None = None
        # told instead of a demand's listener when a round moves its decision and the new
        # one starts MOVE_SOON or later (the operator steps such moves after the due ones)
        self.moved: Callable[[JobDecision], None] | None = None
        # while it answers True no round starts: a PowerSite's first forecast is coming, and a
        # round without that site would place and start new jobs elsewhere for good and
        # move the waiting ones away from it (the operator's Context.holding; it calls
        # replan() when the hold ends)
        self.hold: Callable[[], bool] | None = None
        # what handed-out decisions take, for arrival rounds (see suandian.planning.commitments)
        self._commitments = Commitments(len(DEFAULT_RESOURCES))
        # nodes and free capacity as of the last full round (arrival rounds reuse them)
        self._cluster: tuple[tuple[NodeInfo, ...], RoundInputs] | None = None
        # where full rounds are computed: a planner process, or a worker thread (None)
        self._planner = PlannerProcess() if settings.full_rounds == "process" else None
        # the grid's requests over their whole windows, given the round's site names (in
        # its order; the operator's GridEvents: .gridevent); None: there are none
        self.grid_asks: Callable[[Sequence[str]], Sequence[GridAsk]] | None = None
        # the last full round's answer to each request, by its key, and its grid (the
        # start of its slot 0 and the slot length) that the answers' windows count
        self.answers: dict[str, AskAnswer] = {}
        self.answer_grid: tuple[datetime, timedelta] | None = None
        # each reduction's baseline as first answered (planner.grid.freeze), by key
        self._baselines: dict[str, tuple[float, ...]] = {}
        # called after a full round that answered requests (the GridEvent statuses)
        self.after_answers: Callable[[], None] | None = None

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
        if self._computing is not None:  # its thread ends on its own; nobody reads it
            self._computing[0].cancel()
            self._computing = None
        if self._planner is not None:
            self._planner.close()

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
        self._arrival_log.add(demand)
        self._fresh.add(demand.key)
        self._recheck.discard(demand.key)
        if self._cluster is None:
            self._full = True  # no full round has ended yet: arrivals wait for one
        self._dirty.set()

    def remove(self, key: str) -> None:
        self._commitments.release(key)
        self._demands.pop(key, None)
        self._decisions.pop(key, None)
        self._listeners.pop(key, None)
        self._fresh.discard(key)
        self._recheck.discard(key)

    def stale(self, key: str, demand: Demand) -> bool:
        """Whether ``demand`` differs from what the last rounds planned for ``key``."""
        return self._demands.get(key) != demand

    def current(self, key: str) -> JobDecision | None:
        return self._decisions.get(key)

    def running_power_kw(self, site: str) -> float:
        """IT power of the work running at ``site`` now, kW (a running job planned afresh
        for a shed ahead, ``Demand.runs_at``, included)."""
        return sum(d.power_w for d in self._demands.values()
                   if (d.running_site or d.runs_at) == site) / 1e3

    def suspendable_at(self, site: str) -> list[str]:
        """The keys of the interruptible work running at ``site`` now."""
        return [d.key for d in self._demands.values()
                if d.running_site == site and d.terms.interruptible]

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
        self._recheck.clear()
        self._commitments.clear()
        self._full = True

    def pending(self, key: str) -> bool:
        """Whether ``key`` waits for a round (registered, not decided since it changed)."""
        return (key in self._fresh or key in self._inflight
                or (key in self._demands and key not in self._decisions))

    @property
    def computing(self) -> bool:
        """Whether a full round is being computed (arrivals are decided meanwhile)."""
        return self._computing is not None

    # -- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        """Rounds for ever. A full round is computed in a worker thread while arrival
        rounds go on deciding new jobs against the decisions already handed out; when it
        ends, its decisions are handed out (and the arrivals decided meanwhile checked
        again against them). A round that fails, whatever the error (a bug too), is
        logged (its traceback once per distinct error), counted
        (``suandian_planning_failures_total``) and retried after a backoff that doubles
        from 1 s to :data:`MAX_BACKOFF`; one that succeeds resets it. Nothing but
        cancellation ends the loop; :meth:`health` tells when it is wedged."""
        failures = Streak()  # rounds failed in a row
        while True:
            await self._wait()
            try:
                progressed = await self._advance()
            except Exception as exc:  # noqa: BLE001 (logged, counted, retried: retries.failed)
                bug = not isinstance(exc, PlanningError | ValueError)
                metrics.record_planning_failure("Bug" if bug else "Planning")
                if not bug:
                    self.last_sound = self.clock.now()
                failures, delay = failed(failures, exc, what="planning round", bug=bug,
                                         first=FIRST_BACKOFF, most=MAX_BACKOFF, logger=log)
                self.last_error = failures.last
                await asyncio.sleep(delay.total_seconds())
                self._dirty.set()
            else:
                if progressed:
                    failures = Streak()
                    self.last_sound = self.clock.now()

    async def _wait(self) -> None:
        """Until there is something to do: a demand or a re-plan asked for (then a
        moment more, ``plan_batch_window``, so a burst shares one round), the full round
        computed, or ``replan_interval`` passed (a full round is due)."""
        waiter = asyncio.ensure_future(self._dirty.wait())
        watched: list[asyncio.Future[object]] = [waiter]  # type: ignore[list-item]
        if self._computing is not None:
            watched.append(self._computing[0])  # type: ignore[arg-type]
        try:
            done, _ = await asyncio.wait(
                watched, timeout=self.settings.replan_interval.total_seconds(),
                return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not done:
            self._full = True
        elif waiter in done:
            await asyncio.sleep(self.settings.plan_batch_window)
        self._dirty.clear()

    async def _advance(self) -> bool:
        """Hand out a computed full round, start one that is due, decide arrivals.
        True if a round ended (for the health of the loop)."""
        ended = False
        if self._computing is not None and self._computing[0].done():
            future, inputs = self._computing
            self._computing = None
            try:
                result = future.result()
            except BaseException:
                self._retry(inputs)
                raise
            await self._hand_out(inputs, result)
            ended = True
        if self.hold is not None and self.hold():
            return ended
        if self._full and self._computing is None:
            inputs = self._take(full=True)
            self._computing = (self._spawn(inputs), inputs)
        if self._cluster is not None and (self._fresh or self._recheck):
            await self._arrivals()
            ended = True
        return ended

    def _spawn(self, inputs: RoundInputs) -> asyncio.Future[Computed]:
        """The round computed: a full one in the planner process (when configured),
        a small one at once, any other in a worker thread."""
        if inputs.full and inputs.demands and self._planner is not None:
            return asyncio.ensure_future(self._planner.compute(inputs, self.params))
        if len(inputs.demands) + len(inputs.recurring) <= INLINE_DEMANDS:
            future: asyncio.Future[Computed] = asyncio.get_running_loop().create_future()
            try:
                future.set_result(compute(inputs, self.params)
                                  if inputs.demands or inputs.asks else None)
            except Exception as exc:  # noqa: BLE001 (raised to whoever awaits the future)
                future.set_exception(exc)
            return future
        return asyncio.ensure_future(asyncio.to_thread(compute, inputs, self.params))

    def _retry(self, inputs: RoundInputs) -> None:
        """A round failed: plan what it held again in the next one."""
        if inputs.full:
            self._full = True
            self._fresh |= self._inflight
            self._inflight = frozenset()
        else:
            self._fresh |= {k for k in inputs.afresh if k in self._demands}
            self._recheck |= {d.key for d in inputs.demands
                              if d.key not in inputs.afresh and d.key in self._demands}

    # -- rounds --------------------------------------------------------------------------

    async def run_round(self) -> Plan | None:
        """One round now, to its end (tests and tools; the loop overlaps them).

        A full round (the first, forecast refresh, capacity change, every
        ``replan_interval``) plans every decided demand together and may change any
        waiting job's decision (each holds the one it has unless a move saves enough);
        the first plans every demand, later ones leave the new and changed to the
        arrival round that follows (the loop runs it while the full one computes).
        A round triggered only by arrivals plans only the new (or changed) demands,
        against the green power and capacity the decisions already handed out take
        (:mod:`suandian.planning.commitments`): its cost grows with the arrivals, not
        with every waiting job, and it does not reshuffle the deferred jobs; the next
        full round reconciles everyone.
        """
        if self._full or self._cluster is None:
            plan = await self._computed(self._take(full=True))
            if not (self._fresh or self._recheck) or self._cluster is None:
                return plan
        return await self._arrivals()  # the new and changed, as the loop would next

    async def _arrivals(self) -> Plan | None:
        if not (self._fresh or self._recheck):  # nothing new: the round ends at once
            if self.after_round is not None:
                self.after_round()
            return None
        return await self._computed(self._take(full=False))

    async def _computed(self, inputs: RoundInputs) -> Plan | None:
        """Compute a round to its end and hand it out; a failure gives its demands back.
        The plan (None when the planner process made it: it stays there)."""
        try:
            result = await self._spawn(inputs)
        except BaseException:
            self._retry(inputs)
            raise
        await self._hand_out(inputs, result)
        return result.plan if isinstance(result, RoundResult) else None

    def _take(self, full: bool) -> RoundInputs:
        """Copy what a round reads (see :mod:`suandian.planning.rounds`); the demands it
        plans are no longer fresh (a failed round gives them back: :meth:`_retry`)."""
        self.last_error = None  # the snapshot may say why nothing can be planned
        entries = tuple(sorted(self._sites().values(), key=lambda e: e.name))
        # nothing to plan (no demand, no request of the grid to answer): the time is
        # never read (and a bare test context has no clock)
        planning = bool(self._demands) or (full and self._asked(entries))
        now = self.clock.now() if planning else datetime.min
        node_sites: tuple[str, ...] | None = None  # (full rounds: indexed by ``entries``)
        if full and self._cluster is None:  # the first: everyone, nobody decides before
            self._full = False
            self._inflight = frozenset(self._fresh)
            afresh: set[str] = self._fresh
            self._fresh, self._recheck = set(), set()
            demands = tuple(self._demands.values())
            cluster = cluster_inputs(self._view(), entries)
            nodes, taken = None, None
        elif full:  # the new and changed go on through arrival rounds, at once
            self._full = False
            afresh = set()
            demands = tuple(d for k, d in self._demands.items()
                            if k not in self._fresh and k not in self._recheck)
            cluster = cluster_inputs(self._view(), entries)
            nodes, taken = None, None
        else:
            afresh, recheck = self._fresh, self._recheck
            self._fresh, self._recheck = set(), set()
            keys = [k for k in (*afresh, *recheck) if k in self._demands]
            demands = tuple(self._demands[k] for k in keys)
            for key in keys:
                self._commitments.release(key)  # planned again: its old take is free
            assert self._cluster is not None
            nodes, last = self._cluster
            cluster = last.cluster
            # the sites its nodes' indices count (they may have changed since)
            node_sites = tuple(e.name for e in last.sites)
            taken = self._taken(entries, now)
        if not entries:
            self.last_error = "no PowerSites known yet"
        return RoundInputs(now=now, full=full, demands=demands, sites=entries,
                           asks=self._asks(entries, now, full) if planning else (),
                           cluster=cluster, horizon_slots=self.settings.horizon_slots,
                           decisions=dict(self._decisions), afresh=frozenset(afresh),
                           nodes=nodes, node_sites=node_sites, taken=taken,
                           recurring=self._recurring(entries, now, None if full else demands),
                           # (no demand: ``now`` is a placeholder, and naive)
                           arrivals_complete=bool(self._demands)
                           and self._arrival_log.complete(now))

    def _asked(self, entries: tuple[SiteEntry, ...]) -> bool:
        """Whether the grid asks anything of these sites (a full round answers it even
        when no job waits: an idle cluster meets a shed, and says so)."""
        return (self.grid_asks is not None and bool(entries)
                and bool(self.grid_asks([e.name for e in entries])))

    def _asks(self, entries: tuple[SiteEntry, ...], now: datetime, full: bool
              ) -> tuple[GridAsk, ...]:
        """The requests a round plans under: a full round, each open one from the slot
        holding now (a shed with its frozen baseline); an arrival round, those the
        last full round accepted, a shed with the baseline it was answered
        against (the arrivals are planned under the ceiling the others were)."""
        if self.grid_asks is None or not entries:
            return ()
        slot = entries[0].forecast.grid.slot
        start = floor_slot(now, slot)
        asks = open_asks(self.grid_asks([e.name for e in entries]), start,
                         start + slot * self.settings.horizon_slots, self._baselines)
        if full:
            return tuple(asks)
        out = []
        for ask in asks:
            known = self.answers.get(ask.key)
            if ask.tariff is None and (known is None or not known.accepted):
                continue  # (a tariff is paid whatever the last full round said)
            if ask.shed and ask.baseline_kw is None and known is not None:
                ask = replace(ask, baseline_kw=tuple(known.baseline_kw.tolist()))
            out.append(ask)
        return tuple(out)

    def _recurring(self, entries: tuple[SiteEntry, ...], now: datetime,
                   arriving: tuple[Demand, ...] | None) -> tuple[Demand, ...]:
        """What arrived a day before the round's horizon (a slice of the sorted log), at
        most :data:`EXPECTED_LIMIT`, nearest first. An arrival round (``arriving``: the
        demands it plans) takes only those expected before the last of its deadlines,
        at most :data:`ARRIVAL_EXPECTED_LIMIT`: it plans a few jobs around what is handed
        out, and the full round that follows plans the rest."""
        if not entries or not self.params.expected_arrivals or not self._demands:
            return ()
        self._arrival_log.forget(now)
        until = now + entries[0].forecast.grid.slot * self.settings.horizon_slots
        limit = EXPECTED_LIMIT
        if arriving is not None:
            if not arriving:
                return ()
            until = min(until, max(d.terms.window(d.created)[1] for d in arriving))
            limit = ARRIVAL_EXPECTED_LIMIT
        return self._arrival_log.due(now, until)[:limit]

    def _taken(self, entries: tuple[SiteEntry, ...], now: datetime
               ) -> dict[str, tuple[FloatArray, FloatArray]]:
        """What the handed-out decisions take at each site from the slot holding now."""
        if not entries:
            return {}
        slot = entries[0].forecast.grid.slot
        first = absolute_slot(floor_slot(now, slot), slot)
        return {e.name: self._commitments.window(e.name, first, self.settings.horizon_slots)
                for e in entries}

    async def _hand_out(self, inputs: RoundInputs, result: Computed) -> None:
        """Apply a computed round on the loop: record what its decisions take, keep and
        tell the decisions of demands unchanged since the round began (a changed or new
        one has its own round coming), a slice at a time so the loop keeps serving."""
        if result is not None:
            planned = {d.key: d for d in inputs.demands}
            decisions: Sequence[JobDecision]
            if inputs.full:
                self._answered(inputs, result.answers)
            if isinstance(result, RemoteRound):  # only what changed came back
                metrics.record_planning(result.seconds, result.decided)
                decisions = [d for d, _ in result.changed]
                await self._adopt_remote(inputs, result, planned)
            else:
                metrics.record_planning(result.seconds, len(result.plan.decisions))
                decisions = result.plan.decisions
                if inputs.full:
                    self._recheck_since(planned)
                    self._commitments = result.commitments
                    self._cluster = (result.nodes, inputs)
                else:
                    for key, take in result.commitments.items():
                        if self._demands.get(key) is planned[key]:
                            self._commitments.commit(key, take)
            log.debug("planning round (%s): %d demands in %.0f ms, %d decisions handed out",
                      "full" if inputs.full else "arrivals", len(inputs.demands),
                      result.seconds * 1e3, len(decisions))
            for i, decision in enumerate(decisions, 1):
                key = decision.key
                if self._demands.get(key) is planned.get(key):
                    old = self._decisions.get(key)
                    self._decisions[key] = decision
                    listener = self._listeners.get(key)
                    # told: a first decision, any decision of a changed demand (its step
                    # waits for it, even if it comes out the same), or a changed one
                    if listener is None:
                        pass
                    elif old is None or key in inputs.afresh:
                        listener(decision)
                    elif _differs(old, decision):
                        soon = decision.planned_start is None or (
                            decision.planned_start - self.clock.now() < MOVE_SOON)
                        moved = self.moved if not soon else None
                        (moved or listener)(decision)
                if i % HAND_OUT_SLICE == 0:
                    await asyncio.sleep(0)
        if inputs.full:
            self._inflight = frozenset()  # (only the first full round has any)
        if self.after_round is not None:
            self.after_round()
        if inputs.full and result is not None and self.after_full_round is not None:
            self.after_full_round()

    def _answered(self, inputs: RoundInputs, answers: Sequence[AskAnswer]) -> None:
        """Keep a full round's answers to the grid's requests (and the reductions'
        baselines, frozen: :func:`~suandian.planner.grid.freeze`, by a round that planned
        some demand)."""
        self.answers = {a.ask.key: a for a in answers}
        if inputs.sites:
            slot = inputs.sites[0].forecast.grid.slot
            self.answer_grid = (floor_slot(inputs.now, slot), slot)
            end = self.answer_grid[0] + slot * inputs.horizon_slots
            live = {a.ask.key for a in answers}
            # a round with no demand plans nothing: its baseline (nothing, or what runs)
            # is not one to hold a reduction to (it would ban all import in the window)
            frozen = freeze(answers, end, self._baselines) if inputs.demands else (
                self._baselines)
            self._baselines = {k: v for k, v in frozen.items() if k in live}
        if self.after_answers is not None:
            self.after_answers()

    def _recheck_since(self, planned: Mapping[str, Demand]) -> None:
        """After a full round: demands decided since it began (by arrival rounds, against
        the ledger before it) are planned again against its decisions in the next
        arrival round, holding their decisions: it may have put others where they are."""
        for key, demand in self._demands.items():
            if planned.get(key) is not demand and key in self._decisions \
                    and key not in self._fresh:
                self._recheck.add(key)
        if self._recheck:
            self._dirty.set()

    async def _adopt_remote(self, inputs: RoundInputs, result: RemoteRound,
                            planned: Mapping[str, Demand]) -> None:
        """A full round from the planner process updates the ledger where decisions
        changed (an unchanged one takes what it took) and for the running jobs."""
        updates = [(d.key, take) for d, take in result.changed] + list(result.running)
        for i, (key, take) in enumerate(updates, 1):
            if self._demands.get(key) is planned.get(key):
                if take is None:
                    self._commitments.release(key)
                else:
                    self._commitments.commit(key, take)
            if i % HAND_OUT_SLICE == 0:
                await asyncio.sleep(0)
        self._recheck_since(planned)
        cluster = inputs.cluster
        known = self._cluster
        if known is None or cluster is None or known[1].cluster is None or not same_nodes(
                cluster.nodes, known[1].cluster.nodes):
            nodes = await asyncio.to_thread(node_infos, cluster)
        else:
            nodes = known[0]
        self._cluster = (nodes, inputs)

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


def _differs(old: JobDecision, new: JobDecision) -> bool:
    """Whether a new decision matters to the object (:func:`.rounds.moved`)."""
    return moved(old.site, old.planned_start, old.windows, new)

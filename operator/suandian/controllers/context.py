"""What every handler of one operator shares: settings, clock, API client, services.

Kopf hands each handler a shallow copy of the operator's ``memo``; the memo holds one
:class:`Context` so all handlers see the same services. Nothing here is the source of
truth about jobs: that is the objects in the API. The context holds caches (forecast
keepers, the latest plan, the compact job records) and the one scheduler that steps
every ComputeJob and gated Pod.

Only the active replica may act. Kopf's peering pauses a standby replica by stopping its
watch streams and its daemons, and does not tell other tasks; the PowerSite daemons tell
the context (:meth:`Context.pause` when kopf stops one for pausing), and any watch event
resumes it only when it is a listing (kopf lists everything again when it resumes a
replica; events already queued when it paused are not listings). A pause also forgets
what the watch showed, which that listing brings back.

Planning rounds wait for every PowerSite's first forecast (at most :data:`SITE_WAIT`),
at start, on a resume and when a site is added: sites come in one refresh at a time,
and a round that knows some of them would start new jobs at those for good (a started
job never moves) and move the waiting ones away from the sites still coming.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from suandian.api.powersite import PowerSite
from suandian.backends import Backend, CapacityView, NativeBackend
from suandian.config import Settings
from suandian.controllers.book import JobBook
from suandian.controllers.census import JobCensus
from suandian.controllers.clock import Clock
from suandian.controllers.gridbook import GridBook
from suandian.controllers.heap import HeapPolicy
from suandian.controllers.planning import PlanningService, SiteEntry
from suandian.controllers.scheduler import Scheduler, Step
from suandian.controllers.view import CHILD_ANNOTATIONS, ClusterCache, ClusterView
from suandian.forecast import ForecastKeeper, SiteInputs
from suandian.gridasks import site_of
from suandian.k8s.client import KubeApi
from suandian.measure.learned import PowerModel
from suandian.measure.prometheus import MeasureConfig
from suandian.planner import JobDecision

__all__ = ["SITE_WAIT", "Context", "KeeperFactory", "Sample"]

KeeperFactory = Callable[[PowerSite, SiteInputs], ForecastKeeper]
"""Makes a site's keeper; its providers read the :class:`SiteInputs` the PowerSite
controller refills from the cluster before every refresh."""

SAMPLES_KEPT = 7 * 96  # a week of 15-minute observations per site
SITE_WAIT = timedelta(seconds=30)
"""How long planning rounds wait for a PowerSite's first forecast: a refresh from the
cluster's ConfigMaps takes milliseconds, one from an HTTP provider seconds; a provider
that hangs longer must not hold every decision (the site is planned when it comes)."""


@dataclass(frozen=True)
class Sample:
    """What a site looked like at one refresh: green kW, grid intensity and the facility
    power its running jobs drew (kW), all "now" as the provider and the operator saw it."""

    at: datetime
    green_kw: float
    carbon_g_per_kwh: float
    compute_kw: float = 0.0
    green_by_source_kw: Mapping[str, float] = field(default_factory=dict)
    """Green kW by source (supply types and ``storage``), to split a job's green energy."""

    @property
    def green_share(self) -> float:
        """The share of the site's compute power the green supply covered."""
        if self.compute_kw <= 0:
            return 1.0 if self.green_kw > 0 else 0.0
        return min(1.0, max(0.0, self.green_kw / self.compute_kw))


@dataclass
class Context:
    """The services one operator's handlers share (see the module docstring)."""

    settings: Settings
    clock: Clock
    api: KubeApi
    keeper_factory: KeeperFactory = ForecastKeeper.from_inputs
    sites: dict[str, SiteEntry] = field(default_factory=dict)
    keepers: dict[str, ForecastKeeper] = field(default_factory=dict)
    inputs: dict[str, SiteInputs] = field(default_factory=dict)  # what each keeper reads
    site_versions: dict[str, str] = field(default_factory=dict)
    samples: dict[str, deque[Sample]] = field(default_factory=dict)
    cluster: ClusterCache = field(default_factory=ClusterCache)
    view: CapacityView | None = None
    census: JobCensus = field(default_factory=JobCensus)
    book: JobBook = field(default_factory=JobBook)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)  # gated pods, slim
    wakers: dict[str, asyncio.Event] = field(default_factory=dict)
    steps: dict[str, Step] = field(default_factory=dict)
    heap: HeapPolicy | None = None  # when to collect garbage (suandian run: .heap)
    backend: Backend = field(default_factory=NativeBackend)  # how decisions are carried out
    feeds: list[asyncio.Task[None]] = field(default_factory=list)  # .cluster's mirrors
    meter: MeasureConfig | None = None  # where finished jobs' energy is read (None: modelled)
    power_model: PowerModel = field(default_factory=PowerModel)  # measured watts by template
    site_names: set[str] = field(default_factory=set)  # PowerSites watched, not deleted
    refreshed: set[str] = field(default_factory=set)  # refreshed by their running daemon
    site_waits: dict[str, datetime] = field(default_factory=dict)  # first forecast awaited
    grid: GridBook = field(default_factory=GridBook)  # the valid GridEvents (.gridevent)
    # told True when this replica acts (a watch event or a listing came), False when it
    # pauses: what only the active replica may run (the OpenADR VEN: .openadr)
    activity: list[Callable[[bool], None]] = field(default_factory=list)
    ven: Any = None  # the OpenADR VEN (.openadr.Ven), when a VTN is configured
    # the accepted sheds of the last full round, (site, start, end): a running
    # interruptible job that would run into one is planned again (next_action)
    sheds: tuple[tuple[str, datetime, datetime], ...] = ()
    planning: PlanningService = field(init=False)
    scheduler: Scheduler = field(init=False)
    _expect_on_resume: bool = field(default=False, init=False)
    _hold_timer: asyncio.TimerHandle | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.book.power_model = self.power_model
        self.cluster.kept_annotations = (*CHILD_ANNOTATIONS, *self.backend.kept_annotations)
        self.view = self.backend.view(ClusterView(
            self.cluster.nodes, self.cluster.pod_requests, lambda: self.cluster.node_version))
        self.planning = PlanningService(self.settings, self.clock, lambda: self.sites,
                                        lambda: self.view)
        self.planning.after_round = self.census.publish
        self.planning.moved = self.wake_to_move
        self.planning.hold = self.holding
        self.planning.grid_asks = self.grid.asks
        self.planning.after_answers = self._answered
        if self.heap is not None:
            self.planning.after_full_round = self.heap.after_full_round
        self.scheduler = Scheduler(self.clock, self._step,
                                   concurrency=max(4, 4 * self.settings.api_workers),
                                   retry_delay=self.settings.retry_delay)

    def missed_deadline(self, key: str) -> bool:
        """Whether the ComputeJob of a planning key missed its deadline, as its status
        says (``deadlineMissed``); False for a Pod, or a job gone."""
        kind, _, uid = key.partition("/")
        record = self.book.get(uid) if kind == "cj" else None
        return bool(record is not None and record.status.get("deadlineMissed"))

    def object_name(self, key: str) -> str:
        """``namespace/name`` of the object a planning key (``cj/<uid>``, ``pod/<uid>``)
        stands for, for people; the key itself when it is gone."""
        kind, _, uid = key.partition("/")
        if kind == "cj" and (record := self.book.get(uid)) is not None:
            return record.key
        meta = (self.pods.get(uid) or {}).get("metadata") or {}
        if kind == "pod" and meta.get("name"):
            return f"{meta.get('namespace')}/{meta.get('name')}"
        return key

    def _answered(self) -> None:
        """A full round answered the grid's requests: each GridEvent's status may change,
        and the running interruptible jobs at a site with a shed new to this round look
        again (the plan may suspend them before it)."""
        for name in self.grid.events:
            self.wake(f"gev/{name}")
        sheds = tuple(sorted((site_of(a.ask.key), a.ask.start, a.ask.end)
                             for a in self.planning.answers.values()
                             if a.accepted and a.ask.shed))
        new = {site for site, *_ in set(sheds) - set(self.sheds)}
        self.sheds = sheds
        for site in new:
            for key in self.planning.suspendable_at(site):
                self.scheduler.wake(key)

    def wake_on_decision(self, decision: JobDecision) -> None:
        """The planning listener of every job and pod: one function for all, so ten
        thousand waiting jobs hold no closure each (planning and scheduler keys agree)."""
        self.scheduler.wake(decision.key)

    def wake_to_move(self, decision: JobDecision) -> None:
        """A round moved a waiting job and its new start is not now: step it after the
        steps that are due (arrivals, starts), with at most an eighth of the step slots."""
        self.scheduler.wake(decision.key, later=True)

    async def _step(self, key: str) -> datetime | None:
        kind, _, _ = key.partition("/")
        return await self.steps[kind](key)

    # -- acting or paused ----------------------------------------------------------------

    def pause(self) -> None:
        """Kopf paused this replica (a peer took over): stop acting, forget the watch."""
        self.scheduler.pause()
        self.planning.clear()
        self.book.clear()
        self.grid.clear()
        self.sheds = ()
        self.pods.clear()
        self.census.clear()  # the cluster view stays: its feeds run on every replica
        self.site_waits.clear()
        self._cancel_hold_timer()
        self._expect_on_resume = True  # its site daemons stop: their forecasts go
        for told in self.activity:
            told(False)

    def handling(self, listed: bool) -> None:
        """A watch event arrived (``listed``: from a listing, or a PowerSite daemon
        started): kopf runs this replica (see the module docstring). The scheduler starts
        here, inside kopf's handler context, so its steps post events through kopf's
        poster. On a resume, every PowerSite's first forecast is awaited again."""
        if listed:
            self.scheduler.resume()
            for told in self.activity:
                told(True)
            if self._expect_on_resume:
                self._expect_on_resume = False
                self.expect_sites(self.site_names)
        self.scheduler.start()

    # -- waiting for the PowerSites' first forecasts (the module docstring) -------------

    def expect_sites(self, names: Iterable[str]) -> None:
        """PowerSites listed or added: rounds wait for each one's first forecast (at most
        :data:`SITE_WAIT`), unless its daemon has refreshed it already."""
        now = None
        for name in names:
            self.site_names.add(name)
            if name not in self.refreshed and name not in self.site_waits:
                now = now or self.clock.now()
                self.site_waits[name] = now
        if now is not None:
            self._arm_hold_timer()

    def site_refreshed(self, name: str) -> None:
        """The site's daemon refreshed it (a forecast, or its spec found invalid)."""
        self.refreshed.add(name)
        self._site_settled(name)

    def site_stopped(self, name: str) -> None:
        """The site's daemon ended (paused, deleted, or the operator stops)."""
        self.refreshed.discard(name)

    def site_gone(self, name: str) -> None:
        """The PowerSite was deleted: nothing to wait for."""
        self.site_names.discard(name)
        self.refreshed.discard(name)
        self._site_settled(name)

    def holding(self) -> bool:
        """Whether planning rounds wait: a site's first forecast is coming, and it has
        been awaited for less than :data:`SITE_WAIT`."""
        if not self.site_waits:
            return False
        now = self.clock.now()
        return any(now < since + SITE_WAIT for since in self.site_waits.values())

    def _site_settled(self, name: str) -> None:
        if self.site_waits.pop(name, None) is not None and not self.site_waits:
            self._cancel_hold_timer()
            self.planning.replan()  # the rounds held meanwhile, with every site

    def _arm_hold_timer(self) -> None:
        """Wake planning when the last wait runs out (a provider that hangs)."""
        self._cancel_hold_timer()
        if not self.site_waits:
            return
        left = max(self.site_waits.values()) + SITE_WAIT - self.clock.now()
        self._hold_timer = asyncio.get_running_loop().call_later(
            max(0.0, left.total_seconds()), self._hold_ended)

    def _hold_ended(self) -> None:
        self._hold_timer = None
        self.planning.replan()

    def _cancel_hold_timer(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None

    def waker(self, key: str) -> asyncio.Event:
        event = self.wakers.get(key)
        if event is None:
            event = self.wakers[key] = asyncio.Event()
        return event

    def wake(self, key: str | None) -> None:
        if key and key in self.wakers:
            self.wakers[key].set()

    def wake_all(self) -> None:
        for event in self.wakers.values():
            event.set()

    def record_sample(self, site: str, sample: Sample) -> None:
        self.samples.setdefault(site, deque(maxlen=SAMPLES_KEPT)).append(sample)


def memo_context(memo: Any) -> Context:
    """The Context inside kopf's memo."""
    ctx = memo.ctx
    assert isinstance(ctx, Context)
    return ctx


__all__ += ["memo_context"]

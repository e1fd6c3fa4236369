"""What every handler of one operator shares: settings, clock, API client, services.

Kopf hands each handler a shallow copy of the operator's ``memo``; the memo holds one
:class:`Context` so all handlers see the same services. Nothing here is the source of
truth about jobs: that is the objects in the API. The context holds caches (forecast
keepers, the latest plan) and wake-up signals that make daemons react at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from suandian.api.powersite import PowerSite
from suandian.config import Settings
from suandian.controllers.census import JobCensus
from suandian.controllers.clock import Clock
from suandian.controllers.planning import PlanningService, SiteEntry
from suandian.controllers.view import ClusterCache, ClusterView
from suandian.forecast import ForecastKeeper
from suandian.k8s.client import KubeApi

__all__ = ["Context", "KeeperFactory", "Sample"]

KeeperFactory = Callable[[PowerSite], ForecastKeeper]

SAMPLES_KEPT = 7 * 96  # a week of 15-minute observations per site


@dataclass(frozen=True)
class Sample:
    """What a site looked like at one refresh: green kW now and grid intensity now."""

    at: datetime
    green_kw: float
    carbon_g_per_kwh: float


@dataclass
class Context:
    """The services one operator's handlers share (see the module docstring)."""

    settings: Settings
    clock: Clock
    api: KubeApi
    keeper_factory: KeeperFactory = ForecastKeeper.for_site
    sites: dict[str, SiteEntry] = field(default_factory=dict)
    keepers: dict[str, ForecastKeeper] = field(default_factory=dict)
    site_versions: dict[str, str] = field(default_factory=dict)
    samples: dict[str, deque[Sample]] = field(default_factory=dict)
    cluster: ClusterCache = field(default_factory=ClusterCache)
    view: ClusterView | None = None
    census: JobCensus = field(default_factory=JobCensus)
    wakers: dict[str, asyncio.Event] = field(default_factory=dict)
    planning: PlanningService = field(init=False)

    def __post_init__(self) -> None:
        self.view = ClusterView(self.cluster.nodes, self.cluster.pod_requests)
        self.planning = PlanningService(self.settings, self.clock, lambda: self.sites,
                                        lambda: self.view)
        self.planning.after_round = self.census.publish

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

    def observed_carbon(self, site: str, start: datetime, end: datetime) -> float | None:
        """Mean grid intensity observed at a site between two times (None if unobserved)."""
        values = [s.carbon_g_per_kwh for s in self.samples.get(site, ()) if start <= s.at <= end]
        if not values:
            before = [s for s in self.samples.get(site, ()) if s.at <= start]
            return before[-1].carbon_g_per_kwh if before else None
        return sum(values) / len(values)


def memo_context(memo: Any) -> Context:
    """The Context inside kopf's memo."""
    ctx = memo.ctx
    assert isinstance(ctx, Context)
    return ctx


__all__ += ["memo_context"]

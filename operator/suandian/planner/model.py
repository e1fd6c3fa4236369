"""The planner's inputs and outputs: a frozen snapshot in, a plan out.

Everything here is plain data (numpy arrays, datetimes, strings) so that the planner
never depends on how forecasts or cluster state were obtained: the operator and the
simulator build a :class:`Snapshot`, :func:`suandian.planner.plan` turns it into a
:class:`Plan`, and they act on it.

Time: slot ``t`` of every array covers ``[now + t*slot, now + (t+1)*slot)``; the caller
aligns its forecast grid to ``now``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from suandian.errors import PlanningError
from suandian.planner.data import DataLinks

__all__ = [
    "POLICIES",
    "FloatArray",
    "Incumbent",
    "JobDecision",
    "JobDemand",
    "NodeInfo",
    "Plan",
    "PlanParams",
    "SiteSupply",
    "Snapshot",
]

FloatArray = NDArray[np.float64]
POLICIES = ("Optimize", "PlaceOnly", "RunNow")
"""The values of ``ComputeJob.spec.policy`` (:class:`suandian.api.Policy`)."""


@dataclass(frozen=True, eq=False)
class SiteSupply:
    """One site's forecast supply and free capacity over the horizon.

    ``green_*_kw`` include storage discharge. ``capacity`` is free capacity, shape
    ``(resources, slots)``: allocatable minus what running and already-planned work
    outside this snapshot takes. ``import_limit_kw`` caps grid power per slot.
    """

    name: str
    green_p50_kw: FloatArray
    green_p10_kw: FloatArray
    carbon_g_per_kwh: FloatArray
    import_limit_kw: FloatArray
    pue: float
    capacity: FloatArray
    green_by_source_kw: Mapping[str, FloatArray] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    tariff_g_per_kwh: FloatArray | None = None
    """A tariff's price of grid power as grams per kWh (price ×
    ``PlanParams.tariff_weight_g_per_unit``, :mod:`~suandian.planner.grid`): the plan
    minimises grams plus this over the grid power it draws; the grams it reports are
    the carbon alone. None: no tariff."""


@dataclass(frozen=True, eq=False, slots=True)
class NodeInfo:
    """A node: its site (index into ``Snapshot.sites``), allocatable per resource, labels."""

    name: str
    site: int
    allocatable: FloatArray
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Incumbent:
    """The decision a waiting job holds from an earlier round: its site (index into
    ``Snapshot.sites``) and its run windows, ``(start, end)`` on the slot grid (one for a
    contiguous job, as :attr:`JobDecision.windows`).

    A re-plan keeps it unless a move saves more than
    ``max(move_threshold_g, move_threshold_share × its cost)`` (:class:`PlanParams`), or
    it is no longer possible (no room, its green floor unmet, past the latest start):
    decisions then change when something changed, not because the clock moved.
    """

    site: int
    windows: tuple[tuple[datetime, datetime], ...]


@dataclass(frozen=True, eq=False, slots=True)
class JobDemand:
    """One job to plan (or, with ``running_site`` set, one already running).

    ``resources`` is the whole job's request per resource (all pods), ``pod_resources``
    one pod's (for node fit; defaults to ``resources``). ``allowed_sites`` are indices
    into ``Snapshot.sites`` (``None``: any). A running job's ``duration`` is what is left
    of it; it takes green supply from ``now`` for that long and is not re-planned. A
    waiting job's ``incumbent`` is the decision it holds (see :class:`Incumbent`).
    ``data_gb`` > 0: it reads that much data living at the site named ``data_site``
    (:mod:`~suandian.planner.data`: running elsewhere waits for the transfer and
    counts its energy).
    """

    key: str
    resources: FloatArray
    power_w: float
    duration: timedelta
    earliest_start: datetime
    deadline: datetime
    interruptible: bool = False
    allowed_sites: tuple[int, ...] | None = None
    min_green_fraction: float = 0.0
    priority: int = 0
    policy: str = "Optimize"
    running_site: int | None = None
    pod_resources: FloatArray | None = None
    gpu_model: str | None = None
    incumbent: Incumbent | None = None
    data_gb: float = 0.0
    data_site: str = ""


@dataclass(frozen=True)
class PlanParams:
    """Knobs of the planner; the defaults are what the operator runs with.

    ``risk_aversion`` ρ weighs P10 against P50 supply in the cost (0: trust the median
    forecast; 1: plan on the pessimistic one). The delay cost, a tie-breaker that
    prefers earlier starts when waiting saves little, is per kWh per hour of delay
    ``delay_penalty_share_h`` of the site's cost spread over the horizon plus
    ``delay_penalty_g_per_kwh_h`` grams (:func:`~suandian.planner.scoring.delay_rate`):
    relative, so it is as small a share of what waiting can save on a clean grid as on a
    dirty one. After the greedy pass, jobs left without room are repaired
    (:mod:`~suandian.planner.repair`: jobs that have not started moved within their
    windows to make room; at most ``repair_work`` feasibility computations, moving at
    most ``repair_jobs`` jobs per stranded one), then ``improvement_passes`` rounds take
    each flexible job out and re-place it with all others in place (never raising the
    total), when there are at most ``improvement_max_jobs`` pending jobs (a latency
    budget for huge snapshots). Then each flexible job tries the cheaper places that
    lack room for it, taking out at most ``exchange_ejections`` jobs in its way and
    placing them again (:mod:`~suandian.planner.exchange`; at most ``exchange_work``
    places tried a round). With ``price_iterations`` > 0, when a limit binds, a second
    plan starts from the round's prices (:mod:`~suandian.planner.prices`: that many
    subgradient steps in ``price_rounds`` blocks, fixing the jobs that fit after each)
    and the cheaper of the two is kept, unless it leaves less room than the greedy plan
    in some tail of the horizon where it keeps less than ``price_reserve_share`` of that
    tail's capacity free (room for work that arrives later than forecast). Off by
    default (0): it finds near-optimal plans when every job is known (one round of
    ``contended-continental``: 99.3% of the optimum's saving against 95.1%), but
    online it defers today's work further than the greedy plan into hours that later
    arrivals need (docs/planner.md, "Prices"). A job holding an
    :class:`Incumbent` decision moves only when the move saves more than
    ``max(move_threshold_g, move_threshold_share × the held decision's cost)`` grams
    of risk-weighted emissions (0 and 0: re-plan freely).
    ``expected_arrivals``: plan the snapshot's :attr:`Snapshot.expected` jobs (the work
    forecast to arrive, :mod:`~suandian.planner.arrivals`) beside the real ones, so that
    deferring today's jobs leaves room for tomorrow's (False: ignore them).
    ``data_links``: bandwidth and energy per GB between sites, for the jobs that declare
    their data (:mod:`~suandian.planner.data`).
    ``tariff_weight_g_per_unit``: the grams of CO2 one unit of a tariff's currency weighs
    against carbon (10,000 g: a carbon price of 100 per tonne, about China's national
    market in yuan), so that a price schedule is a cost beside carbon, not instead of it.
    """

    safety_margin: timedelta = timedelta(minutes=15)
    risk_aversion: float = 0.5
    delay_penalty_g_per_kwh_h: float = 0.0
    delay_penalty_share_h: float = 0.001
    node_preferences: int = 5
    node_preference_site_limit: int = 2000
    improvement_passes: int = 8
    improvement_max_jobs: int = 2000
    repair_work: int = 4000
    repair_jobs: int = 60
    move_threshold_g: float = 100.0
    move_threshold_share: float = 0.05
    exchange_work: int = 2000
    exchange_ejections: int = 6
    price_iterations: int = 0
    price_rounds: int = 20
    price_reserve_share: float = 0.2
    expected_arrivals: bool = True
    data_links: DataLinks = field(default_factory=DataLinks)
    tariff_weight_g_per_unit: float = 10_000.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.risk_aversion <= 1.0:
            raise PlanningError(f"risk_aversion must be within [0, 1], got {self.risk_aversion}")
        if self.safety_margin < timedelta(0) or min(
                self.delay_penalty_g_per_kwh_h, self.delay_penalty_share_h,
                self.repair_work, self.repair_jobs, self.exchange_work,
                self.exchange_ejections, self.price_iterations, self.price_rounds) < 0:
            raise PlanningError("safety_margin, the delay penalties and the repair, "
                                "exchange and price limits must not be negative")
        if not (self.tariff_weight_g_per_unit >= 0 and math.isfinite(
                self.tariff_weight_g_per_unit)):
            raise PlanningError("tariff_weight_g_per_unit must be a finite weight, at least 0")
        if not 0.0 <= self.price_reserve_share <= 1.0:
            raise PlanningError("price_reserve_share must be within [0, 1], got "
                                f"{self.price_reserve_share}")
        if self.move_threshold_g < 0 or not 0.0 <= self.move_threshold_share <= 1.0:
            raise PlanningError("move_threshold_g must not be negative and "
                                f"move_threshold_share within [0, 1], got "
                                f"{self.move_threshold_g}, {self.move_threshold_share}")


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Frozen inputs of one planning round. Validated on construction."""

    now: datetime
    slot: timedelta
    resources: tuple[str, ...]
    sites: tuple[SiteSupply, ...]
    jobs: tuple[JobDemand, ...]
    nodes: tuple[NodeInfo, ...] = ()
    expected: tuple[JobDemand, ...] = ()
    """Work forecast to arrive (:mod:`~suandian.planner.arrivals`): planned beside the
    jobs so that it finds room, never decided (the plan has no decision for it), and
    the first to give way when a real job has no room."""
    arrivals_complete: bool = True
    """Whether :attr:`expected` forecasts all the work still to come: False while the
    arrival log behind it is younger than a period (a day), when work may arrive that
    nothing forecasts. The plan then takes no priced start
    (:mod:`~suandian.planner.prices`): it leaves more of the work for the cleanest
    hours near the deadlines, and on the contended grid-only week that cost 2 missed
    deadlines on the first night, when late arrivals found that room taken."""

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise PlanningError("Snapshot.now must be timezone-aware (UTC)")
        if self.slot <= timedelta(0):
            raise PlanningError("Snapshot.slot must be positive")
        if not self.sites:
            raise PlanningError("a snapshot needs at least one site")
        slots, nres = self.slots, len(self.resources)
        for site in self.sites:
            for name in ("green_p50_kw", "green_p10_kw", "carbon_g_per_kwh", "import_limit_kw"):
                arr = getattr(site, name)
                if np.shape(arr) != (slots,):
                    raise PlanningError(
                        f"site {site.name}: {name} has shape {np.shape(arr)}, want ({slots},)"
                    )
            if np.shape(site.capacity) != (nres, slots):
                raise PlanningError(
                    f"site {site.name}: capacity has shape {np.shape(site.capacity)}, "
                    f"want ({nres}, {slots})"
                )
            if site.pue < 1.0:
                raise PlanningError(f"site {site.name}: PUE {site.pue} is below 1")
        nsites = len(self.sites)
        for job in self.jobs + self.expected:
            if np.shape(job.resources) != (nres,):
                raise PlanningError(f"job {job.key}: resources shape {np.shape(job.resources)}")
            if job.policy not in POLICIES:
                raise PlanningError(f"job {job.key}: unknown policy {job.policy!r}")
            bad = [i for i in job.allowed_sites or () if not 0 <= i < nsites]
            if job.incumbent is not None and not 0 <= job.incumbent.site < nsites:
                bad.append(job.incumbent.site)
            if bad or (job.running_site is not None and not 0 <= job.running_site < nsites):
                raise PlanningError(f"job {job.key}: site index out of range")
            if job.duration <= timedelta(0) or job.power_w < 0:
                raise PlanningError(f"job {job.key}: duration must be > 0 and power >= 0")
            if not (np.isfinite(job.data_gb) and job.data_gb >= 0) or (
                    job.data_gb > 0 and not job.data_site):
                raise PlanningError(f"job {job.key}: data_gb must be >= 0 and name its "
                                    f"data_site, got {job.data_gb} at {job.data_site!r}")
        for node in self.nodes:
            if not 0 <= node.site < nsites or np.shape(node.allocatable) != (nres,):
                raise PlanningError(f"node {node.name}: bad site index or allocatable shape")

    @property
    def slots(self) -> int:
        """Number of time slots in the horizon."""
        return int(np.shape(self.sites[0].green_p50_kw)[0])

    @property
    def slot_hours(self) -> float:
        """Length of one slot in hours."""
        return self.slot.total_seconds() / 3600.0

    @cached_property
    def site_names(self) -> tuple[str, ...]:
        """Site names in index order."""
        return tuple(s.name for s in self.sites)

    def stacked(self, name: str) -> FloatArray:
        """One per-site signal stacked into a ``(sites, slots)`` array (a fresh copy)."""
        return np.stack([np.asarray(getattr(s, name), dtype=np.float64) for s in self.sites])

    def time_of(self, slot_index: int) -> datetime:
        """Start time of a slot."""
        return self.now + self.slot * slot_index


@dataclass(frozen=True, slots=True)
class JobDecision:
    """Where and when one job runs, what that is expected to emit, and why.

    ``slots`` are the planned slot indices (contiguous unless the job is interruptible);
    ``windows`` the same as ``(start, end)`` times. ``site`` is ``None`` when no site
    can take the job yet (it is re-planned later and still starts by ``latest_start``).
    ``forced``: started now by the deadline guarantee, whatever the forecast.
    """

    key: str
    site: str | None
    site_index: int | None
    start_slot: int | None
    planned_start: datetime | None
    latest_start: datetime
    slots: tuple[int, ...]
    windows: tuple[tuple[datetime, datetime], ...]
    start_now: bool
    node_preferences: tuple[tuple[str, int], ...]
    expected_emissions_g: float
    run_now_emissions_g: float
    expected_green_fraction: float
    energy_kwh: float
    reason: str
    forced: bool = False
    oversubscribed: bool = False

    @property
    def saved_g(self) -> float:
        """Expected saving against running at once, grams CO2."""
        return self.run_now_emissions_g - self.expected_emissions_g

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``suandian plan --json`` and the simulator's reports."""
        return {
            "key": self.key,
            "site": self.site,
            "plannedStart": self.planned_start.isoformat() if self.planned_start else None,
            "latestStart": self.latest_start.isoformat(),
            "startNow": self.start_now,
            "windows": [[a.isoformat(), b.isoformat()] for a, b in self.windows],
            "nodePreferences": [{"node": n, "weight": w} for n, w in self.node_preferences],
            "expectedEmissionsG": round(self.expected_emissions_g, 3),
            "runNowEmissionsG": round(self.run_now_emissions_g, 3),
            "savedG": round(self.saved_g, 3),
            "expectedGreenFraction": round(self.expected_green_fraction, 4),
            "energyKWh": round(self.energy_kwh, 4),
            "forced": self.forced,
            "reason": self.reason,
        }


@dataclass(frozen=True, eq=False)
class Plan:
    """The decisions of one planning round, plus the load it puts on each site.

    ``load_kw`` and ``green_used_kw`` (``(sites, slots)``, facility power) include running
    jobs; ``green_used_kw`` never exceeds the P50 green supply (no double counting).
    """

    now: datetime
    slot: timedelta
    site_names: tuple[str, ...]
    decisions: tuple[JobDecision, ...]
    load_kw: FloatArray
    green_used_kw: FloatArray

    @cached_property
    def by_key(self) -> dict[str, JobDecision]:
        """Decisions by job key."""
        return {d.key: d for d in self.decisions}

    @property
    def expected_emissions_g(self) -> float:
        """Sum of the decisions' expected emissions."""
        return float(sum(d.expected_emissions_g for d in self.decisions))

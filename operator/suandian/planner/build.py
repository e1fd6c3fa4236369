"""Build a :class:`Snapshot` from API objects and per-site forecast arrays.

The operator and ``suandian plan`` parse PowerSites and ComputeJobs with
``suandian.api`` and obtain forecasts elsewhere; they hand the arrays in as
:class:`SiteSignals`, so this package never imports ``suandian.forecast``. What the
planner reads of the API objects is :class:`JobTerms` and :class:`SiteTerms`: the
planner process is sent those, and so never loads pydantic nor the API models (16 MB
of its resident memory); the models are imported here for their types only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from suandian.errors import PlanningError
from suandian.planner.model import (
    FloatArray,
    Incumbent,
    JobDemand,
    NodeInfo,
    SiteSupply,
    Snapshot,
)
from suandian.planner.power import DEFAULT_RESOURCES, estimate_power_w
from suandian.units import parse_quantity

if TYPE_CHECKING:
    from suandian.api.computejob import ComputeJob
    from suandian.api.powersite import PowerSite

__all__ = [
    "ForecastArrays", "JobInput", "JobTerms", "SiteSignals", "SiteTerms", "job_demand_from",
    "planner_quantities", "site_supply_from", "snapshot_from",
]

_GIB = 1024.0**3
_GPU_LABEL = "nvidia.com/gpu.product"


@dataclass(frozen=True, eq=False)
class SiteSignals:
    """A site's forecast over the snapshot's slots: green P50 and P10 (kW, storage
    included), grid carbon intensity (g/kWh), and optionally green kW by source."""

    green_p50_kw: FloatArray
    green_p10_kw: FloatArray
    carbon_g_per_kwh: FloatArray
    green_by_source_kw: Mapping[str, FloatArray] = field(default_factory=dict)

    @classmethod
    def from_forecast(cls, forecast: ForecastArrays, offset: int = 0,
                      slots: int | None = None) -> SiteSignals:
        """A forecast's arrays from slot ``offset`` (``slots`` of them, or all the rest).

        Storage discharge counts as green supply, P50 and P10 alike: the battery was
        charged from the site's own green surplus. The operator and ``suandian plan``
        both build their snapshots through here, so a dry run sees what the operator sees.
        """
        s = slice(offset, None if slots is None else offset + slots)
        return cls(
            green_p50_kw=np.asarray((forecast.green_total_kw + forecast.storage_kw)[s],
                                    dtype=float),
            green_p10_kw=np.asarray((forecast.green_p10_kw + forecast.storage_kw)[s],
                                    dtype=float),
            carbon_g_per_kwh=np.asarray(forecast.carbon_g_per_kwh[s], dtype=float),
            green_by_source_kw={k: np.asarray(v[s], dtype=float)
                                for k, v in forecast.green_kw.items()},
        )


class ForecastArrays(Protocol):
    """What :meth:`SiteSignals.from_forecast` reads of a forecast (``suandian.forecast``'s
    ``SiteForecast`` has it; the planner does not import the forecast layer)."""

    @property
    def green_total_kw(self) -> np.ndarray: ...
    @property
    def green_p10_kw(self) -> np.ndarray: ...
    @property
    def storage_kw(self) -> np.ndarray: ...
    @property
    def carbon_g_per_kwh(self) -> np.ndarray: ...
    @property
    def green_kw(self) -> Mapping[str, np.ndarray]: ...


@dataclass(frozen=True, slots=True)
class JobTerms:
    """What the planner reads of a ComputeJob, and nothing else.

    The operator keeps one for every job it has not finished: the parsed ComputeJob
    model is some 8 KB (its pod template alone), these are a few hundred bytes, and they
    do not depend on which sites exist (sites are resolved per round, by name).
    ``total``/``per_pod`` are the whole job's and one pod's requests in planner units
    (see :func:`to_planner_units`); ``sites``/``site_labels`` restrict where it may run.
    """

    power_w: float
    duration: timedelta
    complete_by: datetime | None = None
    max_delay: timedelta | None = None
    not_before: datetime | None = None
    total: Mapping[str, float] = field(default_factory=dict)
    per_pod: Mapping[str, float] = field(default_factory=dict)
    interruptible: bool = False
    sites: tuple[str, ...] | None = None
    site_labels: Mapping[str, str] | None = None
    min_green_fraction: float = 0.0
    priority: int = 0
    policy: str = "Optimize"
    gpu_model: str | None = None
    data_gb: float = 0.0
    data_site: str = ""

    @classmethod
    def from_computejob(cls, cj: ComputeJob) -> JobTerms:
        """The terms of a parsed ComputeJob: resources summed over containers and pods,
        power from ``spec.power`` or :func:`estimate_power_w`."""
        spec = cj.spec
        pod_spec = spec.template.spec.template.spec
        pods = spec.template.spec.parallelism
        per_pod: dict[str, float] = {}
        for container in pod_spec.containers:
            for rname, amount in container.resources.requests.items():
                per_pod[rname] = per_pod.get(rname, 0.0) + to_planner_units(rname, amount)
        total = {k: v * pods for k, v in per_pod.items()}
        extra = getattr(pod_spec, "model_extra", None) or {}
        node_selector = extra.get("nodeSelector") or {}
        gpu_model = node_selector.get(_GPU_LABEL) if isinstance(node_selector, dict) else None
        power = spec.power.watts if spec.power is not None else estimate_power_w(
            total, gpu_model)
        return cls(
            power_w=power, duration=spec.duration, complete_by=spec.deadline.complete_by,
            max_delay=spec.deadline.max_delay, not_before=spec.not_before,
            total=total, per_pod=per_pod, interruptible=spec.interruptible,
            sites=tuple(spec.sites) if spec.sites is not None else None,
            site_labels=(dict(spec.site_selector.match_labels)
                         if spec.site_selector is not None else None),
            min_green_fraction=spec.min_green_fraction, priority=spec.priority,
            policy=spec.policy.value, gpu_model=gpu_model,
            data_gb=spec.data.size_gb if spec.data is not None else 0.0,
            data_site=spec.data.site if spec.data is not None else "",
        )

    def window(self, created: datetime) -> tuple[datetime, datetime]:
        """Earliest start and completion deadline, given the creation time (as
        :meth:`ComputeJob.window`)."""
        earliest = max(created, self.not_before) if self.not_before else created
        if self.complete_by is not None:
            return earliest, self.complete_by
        return earliest, earliest + self.duration + (self.max_delay or timedelta(0))

    def pinned(self, site: str) -> JobTerms:
        """The same job restricted to one site (a started job cannot move its pods)."""
        return replace(self, sites=(site,), site_labels=None)


@dataclass(frozen=True, slots=True)
class SiteTerms:
    """What the planner reads of a PowerSite, and nothing else: its name and labels
    (which jobs may run there), PUE and grid import limit (kW). The forecast comes
    apart, as :class:`SiteSignals`."""

    name: str
    pue: float
    import_limit_kw: float
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, site: PowerSite | SiteTerms) -> SiteTerms:
        """The terms of a parsed PowerSite (or these terms, as they are)."""
        if isinstance(site, SiteTerms):
            return site
        return cls(name=site.metadata.name or "", pue=site.spec.pue,
                   import_limit_kw=site.spec.grid.import_limit_kw,
                   labels=dict(site.metadata.labels or {}))


@dataclass(frozen=True)
class JobInput:
    """A job to plan (a ComputeJob, or its :class:`JobTerms`): its key
    (``namespace/name``), creation time, and, if it is already running, its site and
    the run time left; if it waits, the decision it holds (``held``: site name and run
    windows, see :class:`~suandian.planner.model.Incumbent`)."""

    job: ComputeJob | JobTerms
    key: str
    created: datetime
    running_site: str | None = None
    remaining: timedelta | None = None
    held: tuple[str, tuple[tuple[datetime, datetime], ...]] | None = None


def to_planner_units(name: str, amount: Decimal | float) -> float:
    """Quantities in planner units: memory and storage in GiB, everything else as is."""
    value = float(amount)
    if name in ("memory", "ephemeral-storage") or name.startswith("hugepages-"):
        return value / _GIB
    return value


_RESOURCE_NAMES = {name: name for name in DEFAULT_RESOURCES}  # one string object per name


def planner_quantities(raw: Mapping[str, Any] | None) -> dict[str, float]:
    """A Kubernetes resource list (``{"cpu": "4", "memory": "16Gi", ...}``) in planner
    units, the planner's resources only; a quantity the API server would not have
    accepted is left out."""
    out: dict[str, float] = {}
    for name, value in (raw or {}).items():
        key = _RESOURCE_NAMES.get(name)
        if key is None:
            continue
        try:
            out[key] = to_planner_units(key, parse_quantity(value))
        except ValueError:
            continue
    return out


def site_supply_from(
    site: PowerSite | SiteTerms,
    signals: SiteSignals,
    *,
    resources: Sequence[str] = DEFAULT_RESOURCES,
    capacity: Mapping[str, FloatArray | float] | None = None,
    import_limit_kw: FloatArray | None = None,
) -> SiteSupply:
    """A :class:`SiteSupply` from a PowerSite (or its terms) and its forecast arrays.

    ``capacity`` is free capacity per resource (planner units, scalar or per slot);
    resources it does not name are unbounded. The import limit is ``spec.grid``'s, or
    ``import_limit_kw`` per slot (what other work outside the snapshot leaves of it).
    """
    terms = SiteTerms.of(site)
    slots = len(signals.green_p50_kw)
    cap = np.full((len(resources), slots), np.inf)
    for r, name in enumerate(resources):
        if capacity is not None and name in capacity:
            cap[r] = np.broadcast_to(np.asarray(capacity[name], dtype=float), (slots,))
    return SiteSupply(
        name=terms.name,
        green_p50_kw=np.asarray(signals.green_p50_kw, dtype=float),
        green_p10_kw=np.asarray(signals.green_p10_kw, dtype=float),
        carbon_g_per_kwh=np.asarray(signals.carbon_g_per_kwh, dtype=float),
        import_limit_kw=(np.full(slots, terms.import_limit_kw)
                         if import_limit_kw is None else
                         np.asarray(import_limit_kw, dtype=float)),
        pue=terms.pue,
        capacity=cap,
        green_by_source_kw=dict(signals.green_by_source_kw),
        labels=dict(terms.labels),
    )


def job_demand_from(
    job: ComputeJob | JobTerms,
    *,
    key: str,
    created: datetime,
    sites: Sequence[SiteSupply],
    resources: Sequence[str] = DEFAULT_RESOURCES,
    running_site: str | None = None,
    remaining: timedelta | None = None,
    held: tuple[str, tuple[tuple[datetime, datetime], ...]] | None = None,
) -> JobDemand:
    """A :class:`JobDemand` from a ComputeJob (or its terms): allowed sites resolved to
    indices into ``sites`` (``spec.sites`` in the user's order: the first is the job's
    home), the window from the creation time, the decision it holds on a site that is
    still there."""
    terms = job if isinstance(job, JobTerms) else JobTerms.from_computejob(job)
    earliest, deadline = terms.window(created)
    names = [s.name for s in sites]
    allowed = list(range(len(sites)))
    if terms.sites is not None:
        allowed = [names.index(n) for n in terms.sites if n in names]
    if terms.site_labels is not None:
        want = terms.site_labels
        allowed = [i for i in allowed
                   if all(sites[i].labels.get(k) == v for k, v in want.items())]
    run_site = None
    if running_site is not None:
        if running_site not in names:
            raise PlanningError(f"job {key} runs on unknown site {running_site!r}")
        run_site = names.index(running_site)
    return JobDemand(
        key=key,
        resources=np.array([terms.total.get(r, 0.0) for r in resources]),
        pod_resources=np.array([terms.per_pod.get(r, 0.0) for r in resources]),
        power_w=terms.power_w,
        duration=remaining if remaining is not None else terms.duration,
        earliest_start=earliest,
        deadline=deadline,
        interruptible=terms.interruptible,
        allowed_sites=tuple(allowed),
        min_green_fraction=terms.min_green_fraction,
        priority=terms.priority,
        policy=terms.policy,
        running_site=run_site,
        gpu_model=terms.gpu_model,
        data_gb=terms.data_gb,
        data_site=terms.data_site,
        incumbent=(Incumbent(names.index(held[0]), held[1])
                   if held is not None and held[0] in names else None),
    )


def snapshot_from(
    *,
    now: datetime,
    slot: timedelta,
    sites: Sequence[PowerSite | SiteTerms],
    signals: Mapping[str, SiteSignals],
    jobs: Sequence[JobInput],
    nodes: Sequence[NodeInfo] = (),
    capacity: Mapping[str, Mapping[str, FloatArray | float]] | None = None,
    resources: Sequence[str] = DEFAULT_RESOURCES,
    import_limits: Mapping[str, FloatArray] | None = None,
) -> Snapshot:
    """The snapshot of one planning round.

    ``signals`` and ``capacity`` are keyed by site name; slot 0 of every array starts at
    ``now``. A site without signals is an error (the caller decides the fallback, e.g.
    all-grid when its forecast is stale).
    """
    supplies = []
    for site in map(SiteTerms.of, sites):
        name = site.name
        if name not in signals:
            raise PlanningError(f"no forecast arrays for site {name!r}")
        supplies.append(site_supply_from(site, signals[name], resources=resources,
                                         capacity=(capacity or {}).get(name),
                                         import_limit_kw=(import_limits or {}).get(name)))
    demands = tuple(
        job_demand_from(j.job, key=j.key, created=j.created, sites=supplies,
                        resources=resources, running_site=j.running_site,
                        remaining=j.remaining, held=j.held)
        for j in jobs
    )
    return Snapshot(now=now, slot=slot, resources=tuple(resources), sites=tuple(supplies),
                    jobs=demands, nodes=tuple(nodes))

"""The metric objects of the operator, bound to one registry, and the registry in use.

The metrics live in their own :class:`~prometheus_client.CollectorRegistry`, never the
process-global one, so tests start from zero with :func:`reset` and the operator's
``/metrics`` shows only what Suandian means to expose. Call sites never touch these
objects: they call a ``record_*`` helper (:mod:`suandian.metrics.record`,
:mod:`suandian.metrics.ledger`), which reads :func:`instruments` at call time, so a
:func:`reset` takes effect everywhere at once.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from suandian import __version__
from suandian.metrics.grid import GridMetrics
from suandian.metrics.labels import (
    DEFERRAL_BUCKETS,
    FAILURE_REASONS,
    PLANNING_BUCKETS,
    PLANNING_FAILURE_REASONS,
    PROVIDER_BUCKETS,
    SITE_FAILURE_REASONS,
)


class _ForecastAge(Collector):
    """``suandian_site_forecast_age_seconds``: computed at scrape time from the last
    update, so the age keeps growing when the operator stops refreshing a site."""

    def __init__(self, updated: Mapping[str, float], clock: Callable[[], float]) -> None:
        self._updated = updated
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "suandian_site_forecast_age_seconds",
            "Seconds since the forecast in use for the site was obtained.",
            labels=["site"],
        )
        now = self._clock()
        for site, stamp in sorted(self._updated.items()):
            family.add_metric([site], max(0.0, now - stamp))
        yield family



class Ledger:
    """The green-power ledger's counters: every finished job's energy by namespace, site,
    supply source and provenance, in base units (joules, grams).

    Emissions avoided can be negative (a job that did worse than running at once), which
    a counter cannot express; so the ledger counts what the job would have emitted had it
    run at once (``suandian_ledger_run_now_emissions_grams_total``) and the saving is
    that minus ``suandian_ledger_emissions_grams_total``, exact and signed, over any range.
    """

    def __init__(self, r: CollectorRegistry) -> None:
        self.opened: set[tuple[str, str, str]] = set()
        """(namespace, site, provenance) whose series exist at 0 (see ``ledger._open``)."""
        self.energy = Counter(
            "suandian_ledger_energy_joules_total",
            "Facility energy of finished jobs (IT energy x PUE), by namespace, site, supply "
            "source and provenance (measured, partial, modelled).",
            ["namespace", "site", "source", "provenance"], registry=r)
        self.it_energy = Counter(
            "suandian_ledger_it_energy_joules_total",
            "IT energy of finished jobs (without PUE), by namespace, site and provenance.",
            ["namespace", "site", "provenance"], registry=r)
        self.emissions = Counter(
            "suandian_ledger_emissions_grams_total",
            "CO2 emitted by finished jobs, grams, by namespace and site.",
            ["namespace", "site"], registry=r)
        self.run_now_emissions = Counter(
            "suandian_ledger_run_now_emissions_grams_total",
            "CO2 finished jobs would have emitted had they run at once (policy RunNow), "
            "grams; minus suandian_ledger_emissions_grams_total it is the saving.",
            ["namespace", "site"], registry=r)
        self.runs = Counter(
            "suandian_ledger_runs_total",
            "Finished jobs entered in the ledger, by namespace, site and provenance.",
            ["namespace", "site", "provenance"], registry=r)


@dataclass
class Instruments:
    """Every metric object, bound to one registry. Build a fresh one with :func:`reset`."""

    clock: Callable[[], float] = time.time
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry())
    forecast_updated: dict[str, float] = field(default_factory=dict)
    energy_by_site: dict[tuple[str, str], float] = field(default_factory=dict)
    sources_by_site: dict[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.registry
        self.green_power = Gauge(
            "suandian_site_green_power_watts",
            "Green power available at the site now, by source (storage is battery discharge).",
            ["site", "source"], registry=r)
        self.green_forecast = Gauge(
            "suandian_site_green_power_forecast_watts",
            "Mean green power forecast for the site over the next horizon.",
            ["site", "horizon"], registry=r)
        self.carbon_intensity = Gauge(
            "suandian_site_grid_carbon_intensity_grams_per_joule",
            "Grid carbon intensity at the site now, gCO2 per joule (x 3.6e6 for g/kWh).",
            ["site"], registry=r)
        self.compute_power = Gauge(
            "suandian_site_compute_power_watts",
            "Power drawn by the compute Suandian placed at the site, including PUE.",
            ["site"], registry=r)
        self.headroom = Gauge(
            "suandian_site_headroom_watts",
            "Green power not used by compute now; negative when the grid fills the gap.",
            ["site"], registry=r)
        self.forecast_updated_ts = Gauge(
            "suandian_site_forecast_updated_timestamp_seconds",
            "Unix time at which the forecast in use for the site was obtained.",
            ["site"], registry=r)
        self.max_staleness = Gauge(
            "suandian_site_forecast_max_staleness_seconds",
            "How long the site's last good forecast is trusted (spec.forecast.maxStaleness).",
            ["site"], registry=r)
        self.degraded = Gauge(
            "suandian_site_degraded",
            "1 when the site runs on a stale or conservative forecast (condition Degraded).",
            ["site"], registry=r)
        self.jobs = Gauge(
            "suandian_jobs",
            "ComputeJobs and gated Pods by phase and site (site is empty before placement).",
            ["site", "phase"], registry=r)
        self.deferrals = Counter(
            "suandian_deferrals_total", "Decisions to defer a job to a later green window.",
            ["site"], registry=r)
        self.starts = Counter(
            "suandian_job_starts_total", "Jobs started (unsuspended or ungated), by trigger.",
            ["site", "trigger"], registry=r)
        self.suspensions = Counter(
            "suandian_job_suspensions_total",
            "Interruptible jobs suspended because their site's green supply fell.",
            ["site"], registry=r)
        self.deferral_seconds = Histogram(
            "suandian_deferral_duration_seconds",
            "Delay from a job's earliest start to its actual start.",
            ["site"], buckets=DEFERRAL_BUCKETS, registry=r)
        self.planning_seconds = Histogram(
            "suandian_planning_duration_seconds",
            "Wall time of one planning round (snapshot to plan).",
            buckets=PLANNING_BUCKETS, registry=r)
        self.planning_failures = Counter(
            "suandian_planning_failures_total",
            "Planning rounds that failed (Planning: an inconsistent snapshot; Bug: anything "
            "else); each is retried with backoff.", ["reason"], registry=r)
        self.step_failures = Counter(
            "suandian_step_failures_total",
            "Steps of a job or pod that failed (ApiError, Planning, Bug); each is retried "
            "with backoff.", ["reason"], registry=r)
        self.site_refresh_failures = Counter(
            "suandian_site_refresh_failures_total",
            "Refreshes of a PowerSite that raised (ApiError: a status write or a read "
            "refused; Bug: anything else); the site keeps its last forecast and the "
            "refresh is retried with backoff.", ["reason"], registry=r)
        for reason in PLANNING_FAILURE_REASONS:  # at 0 from the start: rate() sees them
            self.planning_failures.labels(reason=reason)
        for reason in FAILURE_REASONS:
            self.step_failures.labels(reason=reason)
        for reason in SITE_FAILURE_REASONS:
            self.site_refresh_failures.labels(reason=reason)
        self.planned_jobs = Counter(
            "suandian_planned_jobs_total", "Jobs given a decision by a planning round.",
            registry=r)
        self.deadline_misses = Counter(
            "suandian_deadline_misses_total",
            "Jobs that finished (or could only start) after their deadline; must stay 0.",
            ["site"], registry=r)
        self.child_refusals = Counter(
            "suandian_child_job_refusals_total",
            "Child Jobs the API server refused (the ComputeJob waits with ChildJobCreated=False).",
            ["reason"], registry=r)
        self.finished = Counter(
            "suandian_jobs_finished_total", "Jobs that finished, by outcome.",
            ["site", "outcome"], registry=r)
        self.energy = Counter(
            "suandian_energy_joules_total",
            "Energy used by finished jobs, including PUE, by source (green or grid).",
            ["site", "source"], registry=r)
        self.emissions = Counter(
            "suandian_emissions_grams_total", "CO2 emitted by finished jobs, grams.",
            ["site"], registry=r)
        self.avoided = Counter(
            "suandian_emissions_avoided_grams_total",
            "CO2 avoided against running each job at once where it would have landed, grams.",
            ["site"], registry=r)
        self.green_ratio = Gauge(
            "suandian_completed_work_green_ratio",
            "Share of the energy of jobs finished since this replica started that was green.",
            ["site"], registry=r)
        self.provider_requests = Counter(
            "suandian_provider_requests_total",
            "Requests to forecast providers, failed ones included.",
            ["provider"], registry=r)
        self.provider_errors = Counter(
            "suandian_provider_errors_total", "Failed requests to forecast providers, by reason.",
            ["provider", "reason"], registry=r)
        self.provider_seconds = Histogram(
            "suandian_provider_request_duration_seconds",
            "Wall time of one forecast provider request, retries included.",
            ["provider"], buckets=PROVIDER_BUCKETS, registry=r)
        self.measurement_failures = Counter(
            "suandian_measurement_failures_total",
            "Finished jobs whose energy could not be read from Prometheus (Kepler, DCGM) "
            "and was modelled instead, by reason.", ["reason"], registry=r)
        self.build_info = Gauge(
            "suandian_build_info", "Always 1; the labels say which build is running.",
            ["version", "python_version", "kopf_version"], registry=r)
        self.ledger = Ledger(r)
        self.grid = GridMetrics(r)
        r.register(_ForecastAge(self.forecast_updated, self.clock))


_current = Instruments()


def instruments() -> Instruments:
    """The instruments in use (the ones :func:`reset` installed last)."""
    return _current


def registry() -> CollectorRegistry:
    """The registry ``/metrics`` serves."""
    return _current.registry


def reset(clock: Callable[[], float] = time.time) -> CollectorRegistry:
    """Start over with a fresh registry (tests; a new operator run); returns the registry."""
    global _current
    _current = Instruments(clock=clock)
    record_build_info()
    return _current.registry


def record_build_info(kopf_version: str | None = None) -> None:
    """Set ``suandian_build_info`` (done by :func:`reset`; the operator may add kopf's version)."""
    if kopf_version is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            kopf_version = version("kopf")
        except PackageNotFoundError:
            kopf_version = "none"
    m = _current
    m.build_info.clear()
    m.build_info.labels(version=__version__, python_version=platform.python_version(),
                        kopf_version=kopf_version).set(1)


record_build_info()

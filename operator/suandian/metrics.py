"""Prometheus metrics of the operator: one registry, one ``record_*`` helper per call site.

Call sites never touch a metric object: they call a helper with the quantities they
already hold, in the units the API uses (kW, gCO2/kWh, kWh-free joules), and the helper
converts to Prometheus base units (watts, seconds, joules, grams, ratios) in one place,
where a unit slip would be caught by a test.

The metrics live in their own :class:`~prometheus_client.CollectorRegistry`, never the
process-global one, so tests start from zero with :func:`reset` and the operator's
``/metrics`` shows only what Suandian means to expose. :func:`metrics_app` and
:func:`start_metrics_server` serve it over aiohttp (the operator's event loop).

Labels are bounded by construction: ``site`` (one per PowerSite), ``source``, ``phase``,
``provider``, ``reason``, ``trigger``, ``outcome`` and ``horizon`` take values from fixed
sets checked here; no job, pod or namespace name is ever a label (see
``tests/unit/metrics/test_naming.py``, which walks the registry and enforces the rules).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from suandian import __version__
from suandian.api.computejob import Phase
from suandian.api.powersite import ForecastProvider, SourceType
from suandian.errors import PROVIDER_REASONS, ForecastError, ProviderError

__all__ = [
    "ENERGY_SOURCES",
    "FAILURE_REASONS",
    "GREEN_SOURCES",
    "HORIZONS",
    "LABEL_NAMES",
    "OUTCOMES",
    "PLANNING_FAILURE_REASONS",
    "PROVIDER_ERROR_REASONS",
    "REFUSAL_REASONS",
    "START_TRIGGERS",
    "Instruments",
    "MetricsServer",
    "instruments",
    "metrics_app",
    "metrics_handler",
    "provider_error_reason",
    "record_build_info",
    "record_child_refused",
    "record_deadline_miss",
    "record_deferral",
    "record_job_finished",
    "record_jobs_by_phase",
    "record_planning",
    "record_planning_failure",
    "record_provider_request",
    "record_site",
    "record_site_forecast",
    "record_site_removed",
    "record_start",
    "record_step_failure",
    "record_suspension",
    "registry",
    "reset",
    "start_metrics_server",
]

WATTS_PER_KW: Final = 1000.0
JOULES_PER_KWH: Final = 3.6e6

GREEN_SOURCES: Final = frozenset({s.value for s in SourceType} | {"storage"})
"""``source`` of ``suandian_site_green_power_watts``: each supply type, and battery discharge."""
ENERGY_SOURCES: Final = frozenset({"green", "grid"})
"""``source`` of ``suandian_energy_joules_total``."""
HORIZONS: Final = ("1h", "6h", "24h", "48h")
"""``horizon`` of the forecast gauge: mean green power over the next hour, 6 h, ..."""
START_TRIGGERS: Final = frozenset({"planned", "deadline", "immediate", "resumed"})
"""Why a job started: its planned green window came, its latest start came whatever the
forecast said, it asked to run at once (policy RunNow or nothing to gain), or an
interruptible job resumed after a suspension."""
OUTCOMES: Final = frozenset({Phase.SUCCEEDED.value, Phase.FAILED.value})
PROVIDER_ERROR_REASONS: Final = PROVIDER_REASONS | {"Rejected", "Other"}
FAILURE_REASONS: Final = frozenset({"ApiError", "Planning", "Bug"})
"""``reason`` of the step failure counter; a planning round has no ``ApiError``."""
PLANNING_FAILURE_REASONS: Final = frozenset({"Planning", "Bug"})
"""``reason`` of ``suandian_provider_errors_total``: the providers' own vocabulary and two
more (see :func:`provider_error_reason`), a fixed set, so a provider's free-text error can
never create a new series."""
LABEL_NAMES: Final = frozenset({
    "site", "source", "phase", "provider", "reason", "trigger", "outcome", "horizon",
    "version", "python_version", "kopf_version",
})
"""Every label name a Suandian metric may carry (checked over the registry by a test)."""

DEFERRAL_BUCKETS: Final = (
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0,
    86400.0, 172800.0, 604800.0,
)
"""Deferral delays: a minute to a week (most land between 1 h and 24 h)."""
PLANNING_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
"""Planning latency: the target is under 1 s for 10,000 jobs, so buckets straddle it."""
PROVIDER_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _check(kind: str, value: str, allowed: Collection[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{kind} {value!r} is not one of {sorted(allowed)}")
    return value


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
        for reason in PLANNING_FAILURE_REASONS:  # at 0 from the start: rate() sees them
            self.planning_failures.labels(reason=reason)
        for reason in FAILURE_REASONS:
            self.step_failures.labels(reason=reason)
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
        self.build_info = Gauge(
            "suandian_build_info", "Always 1; the labels say which build is running.",
            ["version", "python_version", "kopf_version"], registry=r)
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


def record_site(
    site: str,
    *,
    green_power_kw_by_source: Mapping[str, float],
    grid_carbon_intensity_g_per_kwh: float,
    compute_power_kw: float,
    headroom_kw: float,
    forecast_updated: float | None,
    max_staleness_s: float,
    degraded: bool,
) -> None:
    """Record what a PowerSite's status says now (call it wherever the status is written).

    ``green_power_kw_by_source`` maps ``solar``, ``wind``, ``hydro``, ``directGreen`` or
    ``storage`` to kW; sources missing from the map are dropped from the gauge.
    ``forecast_updated`` is a Unix time (None: no forecast yet). The first call for a site
    also creates its counters at 0, so rates and alerts see the site before anything happens.
    """
    m = _current
    sources = frozenset(green_power_kw_by_source)
    for source in sources:
        _check("source", source, GREEN_SOURCES)
    previous = m.sources_by_site.get(site)
    if previous is None:
        _init_site_counters(m, site)
    for source in (previous or frozenset()) - sources:
        _remove(m.green_power, site, source)
    m.sources_by_site[site] = sources
    for source, kw in green_power_kw_by_source.items():
        m.green_power.labels(site=site, source=source).set(kw * WATTS_PER_KW)
    m.carbon_intensity.labels(site=site).set(grid_carbon_intensity_g_per_kwh / JOULES_PER_KWH)
    m.compute_power.labels(site=site).set(compute_power_kw * WATTS_PER_KW)
    m.headroom.labels(site=site).set(headroom_kw * WATTS_PER_KW)
    m.max_staleness.labels(site=site).set(max_staleness_s)
    m.degraded.labels(site=site).set(1 if degraded else 0)
    if forecast_updated is not None:
        m.forecast_updated[site] = forecast_updated
        m.forecast_updated_ts.labels(site=site).set(forecast_updated)


def record_site_forecast(site: str, mean_green_kw_by_horizon: Mapping[str, float]) -> None:
    """Record the mean green power forecast over each horizon (``1h``, ``6h``, ``24h``, ``48h``)."""
    m = _current
    for horizon, kw in mean_green_kw_by_horizon.items():
        m.green_forecast.labels(site=site, horizon=_check("horizon", horizon, HORIZONS)).set(
            kw * WATTS_PER_KW)


def record_site_removed(site: str) -> None:
    """Drop every gauge series of a deleted PowerSite (counters keep their history)."""
    m = _current
    for source in GREEN_SOURCES:
        _remove(m.green_power, site, source)
    for horizon in HORIZONS:
        _remove(m.green_forecast, site, horizon)
    for gauge in (m.carbon_intensity, m.compute_power, m.headroom, m.forecast_updated_ts,
                  m.max_staleness, m.degraded, m.green_ratio):
        _remove(gauge, site)
    m.forecast_updated.pop(site, None)
    m.sources_by_site.pop(site, None)


def record_jobs_by_phase(counts: Mapping[tuple[str | None, str], int]) -> None:
    """Replace the ``suandian_jobs`` gauge with a census: ``(site or None, phase) -> count``.

    A census rather than increments, so the gauge cannot drift from the objects: the
    operator counts what its index holds and hands the whole picture over.
    """
    m = _current
    phases = {p.value for p in Phase}
    m.jobs.clear()
    for (site, phase), count in counts.items():
        m.jobs.labels(site=site or "", phase=_check("phase", phase, phases)).set(count)


def record_deferral(site: str) -> None:
    """A job was deferred (or re-deferred after a re-plan) to a later window at ``site``."""
    _current.deferrals.labels(site=site).inc()


def record_start(site: str, *, trigger: str, delay_s: float) -> None:
    """A job started at ``site``; ``delay_s`` is actual start minus earliest start."""
    m = _current
    m.starts.labels(site=site, trigger=_check("trigger", trigger, START_TRIGGERS)).inc()
    if trigger != "resumed":
        m.deferral_seconds.labels(site=site).observe(max(0.0, delay_s))


def record_suspension(site: str) -> None:
    """An interruptible job was suspended at ``site`` to wait for green power again."""
    _current.suspensions.labels(site=site).inc()


def record_planning_failure(reason: str) -> None:
    """A planning round failed (``Planning`` or ``Bug``)."""
    _current.planning_failures.labels(
        reason=_check("reason", reason, PLANNING_FAILURE_REASONS)).inc()


def record_step_failure(reason: str) -> None:
    """A job's or pod's step failed (``ApiError``, ``Planning`` or ``Bug``)."""
    _current.step_failures.labels(reason=_check("reason", reason, FAILURE_REASONS)).inc()


def record_planning(duration_s: float, jobs: int) -> None:
    """One planning round took ``duration_s`` seconds and decided ``jobs`` jobs."""
    m = _current
    m.planning_seconds.observe(duration_s)
    m.planned_jobs.inc(jobs)


REFUSAL_REASONS: Final = {400: "BadRequest", 403: "Forbidden", 404: "NotFound",
                          422: "Invalid"}
"""``reason`` of ``suandian_child_job_refusals_total``, by the refusal's HTTP status."""


def record_child_refused(status: int) -> None:
    """The API server refused to create a child Job with HTTP ``status`` (a 4xx)."""
    reason = _check("refusal", REFUSAL_REASONS.get(status, ""), REFUSAL_REASONS.values())
    _current.child_refusals.labels(reason=reason).inc()


def record_deadline_miss(site: str) -> None:
    """A job finished after its deadline, or its latest start passed before it started."""
    _current.deadline_misses.labels(site=site).inc()


def record_job_finished(
    site: str,
    *,
    outcome: str,
    green_kwh: float,
    grid_kwh: float,
    emissions_g: float,
    avoided_g: float,
) -> None:
    """A job finished (``Succeeded`` or ``Failed``) after drawing the given energy.

    ``avoided_g`` may be negative (the job did worse than running at once); a counter
    cannot go down, so a negative saving is counted as 0 avoided and its emissions
    still count in full.
    """
    m = _current
    m.finished.labels(site=site, outcome=_check("outcome", outcome, OUTCOMES)).inc()
    for source, kwh in (("green", green_kwh), ("grid", grid_kwh)):
        joules = max(0.0, kwh) * JOULES_PER_KWH
        m.energy.labels(site=site, source=source).inc(joules)
        m.energy_by_site[site, source] = m.energy_by_site.get((site, source), 0.0) + joules
    m.emissions.labels(site=site).inc(max(0.0, emissions_g))
    m.avoided.labels(site=site).inc(max(0.0, avoided_g))
    green = m.energy_by_site.get((site, "green"), 0.0)
    total = green + m.energy_by_site.get((site, "grid"), 0.0)
    if total > 0:
        m.green_ratio.labels(site=site).set(green / total)


def provider_error_reason(error: BaseException) -> str:
    """The ``reason`` label of a failed forecast refresh: the provider's own reason (one
    vocabulary, :data:`~suandian.errors.PROVIDER_REASONS`); ``Rejected`` when the forecast
    came but failed the assembly's checks; ``Other`` for anything else (a bug)."""
    if isinstance(error, ProviderError):
        return error.reason
    if isinstance(error, ForecastError):
        return "Rejected"
    return "Other"


def record_provider_request(
    provider: str, *, duration_s: float, error: BaseException | None = None
) -> None:
    """One request to a forecast provider finished, well (``error=None``) or not."""
    m = _current
    name = _check("provider", provider, frozenset(p.value for p in ForecastProvider))
    m.provider_requests.labels(provider=name).inc()
    m.provider_seconds.labels(provider=name).observe(duration_s)
    if error is not None:
        m.provider_errors.labels(provider=name, reason=provider_error_reason(error)).inc()


def _init_site_counters(m: Instruments, site: str) -> None:
    m.deferrals.labels(site=site)
    m.deferral_seconds.labels(site=site)  # at 0 too: else a site's first starts never rate()
    m.deadline_misses.labels(site=site)
    m.suspensions.labels(site=site)
    for trigger in START_TRIGGERS:
        m.starts.labels(site=site, trigger=trigger)
    for source in ENERGY_SOURCES:
        m.energy.labels(site=site, source=source)
    m.emissions.labels(site=site)
    m.avoided.labels(site=site)


def _remove(metric: Gauge, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        return


async def metrics_handler(request: web.Request) -> web.Response:
    """aiohttp handler of ``GET /metrics``: text format, or OpenMetrics when asked for."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(registry())
    return web.Response(body=body, headers={"Content-Type": content_type})


def metrics_app() -> web.Application:
    """An aiohttp application serving ``/metrics`` (mount it, or run it on its own port)."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    return app


@dataclass
class MetricsServer:
    """A running ``/metrics`` server; ``port`` is the bound one (useful with port 0)."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_metrics_server(host: str = "0.0.0.0", port: int = 8081) -> MetricsServer:
    """Serve ``/metrics`` on ``host:port`` in the running event loop until ``stop()``."""
    runner = web.AppRunner(metrics_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for address in runner.addresses:  # (host, port) for TCP, more items for IPv6
        bound = int(address[1])
    return MetricsServer(runner=runner, host=host, port=bound)


record_build_info()

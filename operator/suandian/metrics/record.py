"""The ``record_*`` helpers of sites, jobs, planning rounds and forecast providers.

Call sites call a helper with the quantities they already hold, in the units the API
uses (kW, gCO2/kWh, kWh), and the helper converts to Prometheus base units (watts,
seconds, joules, grams, ratios) in one place, where a unit slip would be caught by a
test; labels are checked against :mod:`suandian.metrics.labels`.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Gauge

from suandian.api.computejob import Phase
from suandian.api.powersite import ForecastProvider
from suandian.errors import ForecastError, ProviderError
from suandian.metrics.grid import SiteFigures
from suandian.metrics.instruments import Instruments, instruments
from suandian.metrics.labels import (
    ENERGY_SOURCES,
    FAILURE_REASONS,
    GREEN_SOURCES,
    HORIZONS,
    JOULES_PER_KWH,
    OUTCOMES,
    PLANNING_FAILURE_REASONS,
    REFUSAL_REASONS,
    SITE_FAILURE_REASONS,
    START_TRIGGERS,
    WATTS_PER_KW,
    check,
)


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
    m = instruments()
    sources = frozenset(green_power_kw_by_source)
    for source in sources:
        check("source", source, GREEN_SOURCES)
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
    m = instruments()
    for horizon, kw in mean_green_kw_by_horizon.items():
        m.green_forecast.labels(site=site, horizon=check("horizon", horizon, HORIZONS)).set(
            kw * WATTS_PER_KW)


def record_site_removed(site: str) -> None:
    """Drop every gauge series of a deleted PowerSite (counters keep their history)."""
    m = instruments()
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
    m = instruments()
    phases = {p.value for p in Phase}
    m.jobs.clear()
    for (site, phase), count in counts.items():
        m.jobs.labels(site=site or "", phase=check("phase", phase, phases)).set(count)


def record_deferral(site: str) -> None:
    """A job was deferred (or re-deferred after a re-plan) to a later window at ``site``."""
    instruments().deferrals.labels(site=site).inc()


def record_start(site: str, *, trigger: str, delay_s: float) -> None:
    """A job started at ``site``; ``delay_s`` is actual start minus earliest start."""
    m = instruments()
    m.starts.labels(site=site, trigger=check("trigger", trigger, START_TRIGGERS)).inc()
    if trigger != "resumed":
        m.deferral_seconds.labels(site=site).observe(max(0.0, delay_s))


def record_suspension(site: str) -> None:
    """An interruptible job was suspended at ``site`` to wait for green power again."""
    instruments().suspensions.labels(site=site).inc()


def record_planning_failure(reason: str) -> None:
    """A planning round failed (``Planning`` or ``Bug``)."""
    instruments().planning_failures.labels(
        reason=check("reason", reason, PLANNING_FAILURE_REASONS)).inc()


def record_site_refresh_failure(reason: str) -> None:
    """A PowerSite's refresh raised (``ApiError`` or ``Bug``); it is retried."""
    instruments().site_refresh_failures.labels(
        reason=check("reason", reason, SITE_FAILURE_REASONS)).inc()


def record_step_failure(reason: str) -> None:
    """A job's or pod's step failed (``ApiError``, ``Planning`` or ``Bug``)."""
    instruments().step_failures.labels(reason=check("reason", reason, FAILURE_REASONS)).inc()


def record_planning(duration_s: float, jobs: int) -> None:
    """One planning round took ``duration_s`` seconds and decided ``jobs`` jobs."""
    m = instruments()
    m.planning_seconds.observe(duration_s)
    m.planned_jobs.inc(jobs)


def record_child_refused(status: int) -> None:
    """The API server refused to create a child Job with HTTP ``status`` (a 4xx)."""
    reason = check("refusal", REFUSAL_REASONS.get(status, ""), REFUSAL_REASONS.values())
    instruments().child_refusals.labels(reason=reason).inc()


def record_deadline_miss(site: str) -> None:
    """A job finished after its deadline, or its latest start passed before it started."""
    instruments().deadline_misses.labels(site=site).inc()


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
    m = instruments()
    m.finished.labels(site=site, outcome=check("outcome", outcome, OUTCOMES)).inc()
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
    m = instruments()
    name = check("provider", provider, frozenset(p.value for p in ForecastProvider))
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


def record_grid_event(name: str, type_: str, phase: str, figures: Mapping[str, SiteFigures],
                      delivered_kwh: float) -> None:
    """A GridEvent now: its figures by site while it is on, and the energy (kWh) it
    delivered since the last record (:mod:`.grid`)."""
    instruments().grid.record(name, type_, phase, figures, delivered_kwh)


def record_grid_event_removed(name: str) -> None:
    """A deleted GridEvent leaves the gauges (the energy counter keeps it)."""
    instruments().grid.remove(name)


def record_ven(registered: bool, *, failed: bool = False) -> None:
    """The OpenADR VEN registered (or not), and whether an attempt just failed."""
    grid = instruments().grid
    grid.ven_registered.set(1 if registered else 0)
    if failed:
        grid.ven_failures.inc()


def _remove(metric: Gauge, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        return

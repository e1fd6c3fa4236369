"""PowerSite controller: refresh each site's forecast on its interval and report it.

One kopf daemon per PowerSite (kopf stops it on a standby replica, which is how the
operator learns that it is paused: see :mod:`.context`) loops: refresh the
forecast through the site's :class:`~suandian.forecast.ForecastKeeper` (provider, else
last good forecast, else conservative: it never raises for a provider's failure), hand
it to planning, write ``status`` (green power now, grid intensity, compute drawn,
headroom, nodes, allocatable, forecast freshness, ``ForecastReady``/``Degraded``) and post
an event when the site degrades or recovers. Then it sleeps ``spec.forecast.refreshInterval``
on the operator's clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import kopf
import numpy as np

from suandian import metrics
from suandian.api.powersite import PowerSite
from suandian.api.validation import parse_powersite
from suandian.controllers.clock import first_of
from suandian.controllers.context import Context, Sample, memo_context
from suandian.controllers.planning import SiteEntry
from suandian.controllers.retries import Streak, failed
from suandian.errors import InvalidSpecError, KubeApiError
from suandian.forecast import SiteForecast, SiteHealth, SiteInputs
from suandian.k8s import events
from suandian.k8s.decision import format_time
from suandian.k8s.inputs import read_site_inputs
from suandian.k8s.status import condition_status, with_condition

__all__ = ["register", "site_status"]

log = logging.getLogger(__name__)


def site_status(site: PowerSite, forecast: SiteForecast, health: SiteHealth, ctx: Context,
                previous: Mapping[str, Any], generation: int | None) -> dict[str, Any]:
    """The PowerSite ``status`` for a forecast, its health and the cluster view."""
    now = ctx.clock.now()
    grid = forecast.grid
    i = max(0, min(grid.slots - 1, grid.index_of(now) if now >= grid.start else 0))
    green = forecast.green_supply_kw
    slot_h = grid.slot_hours
    ahead = green[i:]

    def mean(hours: float) -> float:
        n = max(1, round(hours / slot_h))
        return round(float(np.mean(ahead[:n])), 1) if ahead.size else 0.0

    peak = int(np.argmax(ahead)) if ahead.size else 0
    name = site.metadata.name or ""
    compute_kw = ctx.planning.running_power_kw(name) * site.spec.pue
    status: dict[str, Any] = {
        "greenPowerKW": round(float(green[i]), 1),
        "greenPowerBySourceKW": {
            **{k: round(float(v[i]), 1) for k, v in forecast.green_kw.items()},
            **({"storage": round(float(forecast.storage_kw[i]), 1)}
               if float(forecast.storage_kw[i]) > 0 else {}),
        },
        "greenForecast": {
            "next6hAverageKW": mean(6), "next24hAverageKW": mean(24),
            "peakKW": round(float(ahead[peak]), 1) if ahead.size else 0.0,
            "peakAt": format_time(grid.time_at(i + peak)),
        },
        "gridCarbonIntensity": round(float(forecast.carbon_g_per_kwh[i]), 1),
        "computePowerKW": round(compute_kw, 3),
        "headroomKW": round(float(green[i]) - compute_kw, 3),
        "forecastSource": health.source,
        "forecastUpdated": format_time(forecast.issued_at),
    }
    if ctx.view is not None:
        nodes = ctx.view.site_nodes(site.spec.placement)
        status["nodes"] = len(nodes)
        status["allocatable"] = {
            k: _quantity(k, v) for k, v in ctx.view.allocatable(site.spec.placement).items()
            if v > 0}
    conditions = previous.get("conditions") or []
    for cond in health.conditions():
        conditions = with_condition(conditions, cond["type"], cond["status"] == "True",
                                    cond["reason"], cond["message"], now, generation)
    status["conditions"] = conditions
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def _quantity(name: str, value: float) -> str:
    if name == "memory":
        return f"{round(value * 1024)}Mi"
    return f"{round(value, 3):g}"


def register(registry: kopf.OperatorRegistry) -> None:
    """Add the PowerSite handlers to ``registry``."""

    @kopf.daemon("suandian.io", "v1alpha1", "powersites", registry=registry,
                 cancellation_timeout=5.0)
    async def powersite(body: kopf.Body, name: str, memo: kopf.Memo,
                        stopped: kopf.DaemonStopped, **_: Any) -> None:
        ctx = memo_context(memo)
        ctx.handling(listed=True)  # kopf runs daemons only on an active replica
        waker = ctx.waker(f"site/{name}")
        failures = Streak()  # refreshes failed in a row
        try:
            while not stopped:
                waker.clear()
                try:
                    delay = await _refresh(ctx, body, name)
                except Exception as exc:  # noqa: BLE001 (logged, counted, retried: the site
                    # keeps its keeper and last good forecast)
                    delay, failures = _refresh_failed(name, exc, failures,
                                                      ctx.settings.replan_interval)
                    if name in ctx.sites:  # its forecast came (its status write did not)
                        ctx.site_refreshed(name)
                else:
                    failures = Streak()
                    ctx.site_refreshed(name)  # planning rounds need not wait for it
                await first_of(ctx.clock.sleep_until(ctx.clock.now() + delay),
                               stopped.wait(), waker.wait())
        finally:
            ctx.site_stopped(name)
            ctx.sites.pop(name, None)
            ctx.keepers.pop(name, None)
            ctx.inputs.pop(name, None)
            ctx.wakers.pop(f"site/{name}", None)
            if stopped.reason is not None and (
                    stopped.reason & kopf.DaemonStoppingReason.OPERATOR_PAUSING):
                ctx.pause()

    @kopf.on.event("suandian.io", "v1alpha1", "powersites", registry=registry)
    async def powersite_changed(name: str, memo: kopf.Memo, type: str | None,
                                body: kopf.Body, **_: Any) -> None:
        ctx = memo_context(memo)
        ctx.handling(listed=type is None)
        if type in (None, "ADDED"):
            ctx.expect_sites([name])  # rounds wait for its first forecast
        generation = body.get("metadata", {}).get("generation")
        if type != "MODIFIED" or generation != (body.get("status") or {}).get(
                "observedGeneration"):
            # a new or edited site; not our own status writes (each would refresh the
            # forecast and re-plan every job again)
            ctx.wake(f"site/{name}")
        if type == "DELETED":
            ctx.site_gone(name)
            ctx.sites.pop(name, None)
            metrics.record_site_removed(name)
            ctx.planning.replan()


REFRESH_RETRY = timedelta(seconds=5)
"""The first retry of a failed refresh; it doubles at each failure in a row, up to the
re-plan interval."""


def _refresh_failed(name: str, exc: Exception, failures: Streak, most: timedelta
                    ) -> tuple[timedelta, Streak]:
    """Log and count a refresh that raised (a status write refused, a read of the site's
    inputs that failed, a bug) by the rule every loop keeps (:mod:`.retries`); how long
    until the next try (:data:`REFRESH_RETRY`, doubled at each failure in a row, at most
    ``most``) and the failures in a row now. The daemon lives on: had it ended, its site,
    keeper and last good forecast would have gone with it, and every job planned there
    would have been re-planned without the site until kopf restarted the daemon, to fail
    again."""
    api = isinstance(exc, KubeApiError)
    metrics.record_site_refresh_failure("ApiError" if api else "Bug")
    after, delay = failed(failures, exc, what=f"refresh of PowerSite {name}", bug=not api,
                          first=REFRESH_RETRY, most=most, logger=log)
    return delay, after


async def _refresh(ctx: Context, body: kopf.Body, name: str) -> Any:
    """One refresh of one site; returns how long to wait before the next."""
    raw = dict(body)
    meta = raw.get("metadata") or {}
    status = raw.get("status") or {}
    generation = meta.get("generation")
    try:
        site = parse_powersite(raw)
        problem = ctx.backend.site_problem(site.spec)  # a spec this mode cannot use
        if problem is not None:
            raise InvalidSpecError("PowerSite", [problem])
    except InvalidSpecError as exc:
        ctx.sites.pop(name, None)
        if status.get("observedGeneration") != generation:
            events.warning(raw, "InvalidSpec", str(exc))
            conditions = with_condition(status.get("conditions"), "ForecastReady", False,
                                        "InvalidSpec", str(exc), ctx.clock.now(), generation)
            await _patch(ctx, name, {"conditions": conditions,
                                     "observedGeneration": generation})
        return ctx.settings.replan_interval
    keeper = ctx.keepers.get(name)
    if keeper is None or ctx.site_versions.get(name) != str(generation):
        inputs = ctx.inputs[name] = SiteInputs()
        keeper = ctx.keepers[name] = ctx.keeper_factory(site, inputs)
        ctx.site_versions[name] = str(generation)
    await read_site_inputs(ctx.api, site, ctx.inputs[name])
    now = ctx.clock.now()
    started = time.perf_counter()
    forecast = await keeper.refresh(now)
    record_provider_requests(site, time.perf_counter() - started, keeper.last_error)
    health = keeper.health(now)
    before = ctx.sites.get(name)
    ctx.sites[name] = SiteEntry(site=site, forecast=forecast)
    if before is None or before.forecast is not forecast or before.site != site:
        ctx.planning.replan()  # a new forecast or spec: everyone may plan better now
    new_status = site_status(site, forecast, health, ctx, status, generation)
    ctx.record_sample(name, Sample(now, new_status["greenPowerKW"],
                                   new_status["gridCarbonIntensity"],
                                   new_status["computePowerKW"],
                                   dict(new_status["greenPowerBySourceKW"])))
    was_degraded = condition_status(status.get("conditions"), "Degraded") == "True"
    was_ready = condition_status(status.get("conditions"), "ForecastReady")
    if health.degraded and not was_degraded:
        events.warning(raw, "ForecastDegraded", health.message)
    elif not health.degraded and was_degraded:
        events.normal(raw, "ForecastRecovered", health.message)
    if not health.ready and was_ready == "True":
        events.warning(raw, "ForecastUnavailable", health.message)
    await _patch(ctx, name, new_status)
    metrics.record_site(
        name,
        green_power_kw_by_source=dict(new_status["greenPowerBySourceKW"]),
        grid_carbon_intensity_g_per_kwh=new_status["gridCarbonIntensity"],
        compute_power_kw=new_status["computePowerKW"],
        headroom_kw=new_status["headroomKW"],
        forecast_updated=forecast.issued_at.timestamp(),
        max_staleness_s=site.spec.forecast.max_staleness.total_seconds(),
        degraded=health.degraded,
    )
    metrics.record_site_forecast(name, horizon_means(forecast, now))
    return site.spec.forecast.refresh_interval


def record_provider_requests(site: PowerSite, duration_s: float,
                             error: BaseException | None) -> None:
    """Count one forecast refresh as one request to each provider the site names.

    The keeper fetches supply and carbon together (one request when one provider gives
    both), so both take the refresh's wall time. A failure is charged to the provider the
    error names, else to the supply provider (the assembly's checks, e.g. stale or gappy
    data, judge the supply forecast first).
    """
    fs = site.spec.forecast
    providers = list(dict.fromkeys((fs.supply.provider.value, fs.carbon.provider.value)))
    named = getattr(error, "provider", None)
    blamed = named if named in providers else providers[0]
    for provider in providers:
        metrics.record_provider_request(
            provider, duration_s=duration_s, error=error if provider == blamed else None)


def horizon_means(forecast: SiteForecast, now: Any) -> dict[str, float]:
    """Mean green supply (kW, storage included) over the next 1, 6, 24 and 48 hours."""
    grid = forecast.grid
    i = max(0, min(grid.slots - 1, grid.index_of(now) if now >= grid.start else 0))
    ahead = forecast.green_supply_kw[i:]
    out = {}
    for label, hours in (("1h", 1), ("6h", 6), ("24h", 24), ("48h", 48)):
        n = max(1, round(hours / grid.slot_hours))
        out[label] = float(np.mean(ahead[:n])) if ahead.size else 0.0
    return out


async def _patch(ctx: Context, name: str, status: Mapping[str, Any]) -> None:
    try:
        await ctx.api.patch_powersite_status(name, status)
    except KubeApiError as exc:
        if not exc.transient and exc.status != 404:
            raise
        log.warning("could not write the status of PowerSite %s: %s", name, exc)

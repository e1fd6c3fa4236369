"""The built-in physical models, assembled into ``SiteForecast`` s for many sites at once.

Everything is computed as sites x slots numpy arrays in one pass (solar geometry,
clouds, wind, hydro, carbon), then split per site. Deterministic for a seed: the weather
of a site is a function of (seed, site name, absolute time) only, so overlapping grids
agree (see :mod:`suandian.forecast.noise`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from suandian.api.powersite import PowerSite, SourceType
from suandian.forecast.carbon import carbon_intensity
from suandian.forecast.grid import TimeGrid
from suandian.forecast.noise import site_key
from suandian.forecast.regions import RegionProfile, region_for
from suandian.forecast.series import SiteForecast, capacity_by_type
from suandian.forecast.solar import clearness, pv_output
from suandian.forecast.storage import Battery, run_batteries
from suandian.forecast.supply import direct_green_output, hydro_output, local_hours
from suandian.forecast.uncertainty import DEFAULT_ERROR_24H, band, lead_sigma, total_band
from suandian.forecast.wind import wind_output

__all__ = ["ModelRun", "builtin_forecasts", "region_of", "run_models", "seed_of"]


def region_of(site: PowerSite) -> str:
    """The embedded region a site's built-in models use: the supply block's, else the
    carbon block's, else the site's own name."""
    for block in (site.spec.forecast.supply.builtin, site.spec.forecast.carbon.builtin):
        if block is not None and block.region:
            return block.region
    return site.metadata.name or ""


def seed_of(site: PowerSite, default: int) -> int:
    block = site.spec.forecast.supply.builtin
    return block.seed if block is not None and block.seed is not None else default


@dataclass(frozen=True)
class ModelRun:
    """Per-unit outputs (sites x slots) and the per-site kW by source type."""

    pv_cf: np.ndarray
    wind_cf: np.ndarray
    hydro_cf: np.ndarray
    green_kw: list[dict[str, np.ndarray]]
    carbon: np.ndarray
    regions: list[RegionProfile]


def run_models(sites: Sequence[PowerSite], grid: TimeGrid, seed: int = 0) -> ModelRun:
    """Run every model for every site over ``grid``."""
    names = [s.metadata.name or f"site-{i}" for i, s in enumerate(sites)]
    regions = [region_for(region_of(s)) for s in sites]
    seeds = [seed_of(s, seed) for s in sites]
    lat = np.array([s.spec.location.latitude for s in sites], dtype=np.float64)
    lon = np.array([s.spec.location.longitude for s in sites], dtype=np.float64)

    def keys(stream: str) -> np.ndarray:
        return np.array([site_key(sd, n, stream) for sd, n in zip(seeds, names, strict=True)],
                        dtype=np.uint64)

    def col(attr: str) -> np.ndarray:
        return np.array([getattr(r, attr) for r in regions], dtype=np.float64)

    epoch = grid.epoch_seconds
    mid = epoch + grid.slot_seconds / 2.0
    k = clearness(keys("cloud"), epoch, grid.slot_seconds, col("clearness_winter"),
                  col("clearness_summer"), lat)
    pv = pv_output(mid, lat, lon, k)
    wind = wind_output(keys("wind"), mid, grid.slot_seconds, lon, col("weibull_scale"),
                       col("weibull_shape"), col("wind_diurnal"), col("wind_peak_hour"))
    hydro_base = np.array([
        next((g.capacity_factor for g in s.spec.supply
              if g.type is SourceType.HYDRO and g.capacity_factor), r.hydro_cf)
        for s, r in zip(sites, regions, strict=True)], dtype=np.float64)
    hydro = hydro_output(keys("hydro"), mid, hydro_base, col("hydro_wet_amplitude"), lat)
    hours = local_hours(epoch, [s.spec.location.time_zone for s in sites])

    green: list[dict[str, np.ndarray]] = []
    for i, site in enumerate(sites):
        by_type: dict[str, np.ndarray] = {}
        for src in site.spec.supply:
            if src.type is SourceType.SOLAR:
                kw = src.capacity_kw * pv[i]
            elif src.type is SourceType.WIND:
                kw = src.capacity_kw * wind[i]
            elif src.type is SourceType.HYDRO:
                kw = src.capacity_kw * hydro[i]
            else:
                kw = src.capacity_kw * direct_green_output(
                    hours[i], src.hourly_profile, src.capacity_factor)
            t = src.type.value
            by_type[t] = by_type[t] + kw if t in by_type else kw
        green.append(by_type)

    pv_mean = np.array([np.mean(r.solar_cf_range) for r in regions])
    wind_mean = np.array([np.mean(r.wind_cf_range) for r in regions])
    carbon = carbon_intensity(col("carbon_g_per_kwh"), col("solar_share"), col("wind_share"),
                              pv, wind, pv_mean, wind_mean)
    return ModelRun(pv, wind, hydro, green, carbon, regions)


def builtin_forecasts(sites: Sequence[PowerSite], grid: TimeGrid, seed: int = 0, *,
                      issued_at: datetime | None = None, with_bands: bool = True,
                      draw_kw: Sequence[float | None] | None = None,
                      soc0: Sequence[float | None] | None = None) -> dict[str, SiteForecast]:
    """Built-in forecasts for ``sites`` over ``grid``.

    ``with_bands`` gives P10/P90 from the lead-time error model (what a forecast is);
    without, they collapse onto P50 (what the simulator takes as the truth).
    ``draw_kw`` is each site's reference draw for the battery model (``None``: the mean
    green power over the grid); ``soc0`` its measured state of charge, if known.
    """
    issued = issued_at or grid.start
    run = run_models(sites, grid, seed)
    n = grid.slots
    totals = np.array([sum(g.values()) if g else np.zeros(n) for g in run.green_kw])
    totals = totals.reshape(len(sites), n)
    draws = np.array([
        (d if d is not None else float(totals[i].mean()))
        for i, d in enumerate(draw_kw or [None] * len(sites))])
    batteries = [Battery.from_spec(s.spec.storage) if s.spec.storage else None for s in sites]
    soc_start = None
    if soc0 is not None:
        soc_start = np.array([
            (v if v is not None else (b.initial_soc if b else 0.0))
            for v, b in zip(soc0, batteries, strict=True)])
    storage = run_batteries(totals, draws, batteries, grid.slot_hours, soc_start).discharge_kw
    lead_h = (grid.epoch_seconds + grid.slot_seconds - issued.timestamp()) / 3600.0

    out: dict[str, SiteForecast] = {}
    for i, site in enumerate(sites):
        name = site.metadata.name or f"site-{i}"
        caps = capacity_by_type(site)
        green = run.green_kw[i]
        carbon = run.carbon[i]
        if with_bands and green:
            sig = {t: lead_sigma(lead_h, DEFAULT_ERROR_24H[t]) for t in green}
            g10, g90 = total_band(green, sig, sum(caps.values()))
        else:
            g10 = g90 = totals[i]
        if with_bands:
            c10, c90 = band(carbon, lead_sigma(lead_h, DEFAULT_ERROR_24H["carbon"]), None)
        else:
            c10 = c90 = carbon
        b = batteries[i]
        out[name] = SiteForecast(
            site=name, grid=grid, green_kw=green, green_total_kw=totals[i],
            green_p10_kw=g10, green_p90_kw=g90, storage_kw=storage[i],
            carbon_g_per_kwh=carbon, carbon_p10=c10, carbon_p90=c90, price=None,
            source="builtin", issued_at=issued, capacity_kw=caps,
            storage_max_kw=b.max_power_kw if b else 0.0,
        )
    return out

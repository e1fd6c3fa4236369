#!/usr/bin/env python3
"""Benchmark: built-in forecasts for 50 sites x 192 slots (target: < 50 ms once warm).

Prints the vectorised figures and, as the baseline run in the same process, a
straightforward pure-Python version of the same models (one site, one slot at a time,
``math`` instead of numpy) and the ratio between them.

    python hack/bench_forecast.py [--sites 50] [--repeat 20]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from suandian.api.powersite import PowerSite
from suandian.forecast import TimeGrid, builtin_forecasts, builtin_sites, solar, wind
from suandian.forecast.builtin import region_of
from suandian.forecast.noise import ar1_window, site_key, warmup_slots
from suandian.forecast.regions import region_for
from suandian.forecast.storage import Battery, battery_loop_reference
from suandian.forecast.supply import hydro_output


def make_sites(n: int) -> list[PowerSite]:
    """``n`` sites cycling through the eight embedded ones, renamed and nudged in place."""
    base = list(builtin_sites().values())
    out = []
    for i in range(n):
        s = base[i % len(base)]
        doc = s.model_dump(by_alias=True)
        doc["metadata"]["name"] = f"{s.metadata.name}-{i}"
        doc["spec"]["location"]["longitude"] += (i // len(base)) * 0.3
        out.append(PowerSite.model_validate(doc))
    return out


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def pure_python(sites: list[PowerSite], grid: TimeGrid) -> dict[str, list[float]]:
    """The same models written the straightforward way: a Python loop over sites and
    slots with ``math`` (numpy only for the noise streams, which both versions share).
    Returns each site's green kW plus storage kW, to check it agrees with the fast path."""
    out: dict[str, list[float]] = {}
    slot_s, slot_h = grid.slot_seconds, grid.slot_hours
    for site in sites:
        name = site.metadata.name or ""
        region = region_for(region_of(site))
        lat_d, lon = site.spec.location.latitude, site.spec.location.longitude
        lat = math.radians(lat_d)
        first = grid.start_epoch // slot_s
        cloud = ar1_window(np.array([site_key(0, name, "cloud")], dtype=np.uint64), first,
                           grid.slots, math.exp(-slot_h / solar.CLOUD_TAU_HOURS),
                           warmup_slots(solar.CLOUD_TAU_HOURS, slot_h))[0].tolist()
        gust = ar1_window(np.array([site_key(0, name, "wind")], dtype=np.uint64), first,
                          grid.slots, math.exp(-slot_h / wind.WIND_TAU_HOURS),
                          warmup_slots(wind.WIND_TAU_HOURS, slot_h))[0].tolist()
        hydro_cf = next((g.capacity_factor for g in site.spec.supply
                         if g.type.value == "hydro" and g.capacity_factor), region.hydro_cf)
        mid = grid.epoch_seconds + slot_s / 2
        hydro = hydro_output(np.array([site_key(0, name, "hydro")], dtype=np.uint64), mid,
                             np.array([hydro_cf]), np.array([region.hydro_wet_amplitude]),
                             np.array([lat_d]))[0].tolist()
        tz = ZoneInfo(site.spec.location.time_zone)
        green: list[float] = []
        carbon: list[float] = []
        for t in range(grid.slots):
            epoch = grid.start_epoch + t * slot_s
            m = epoch + slot_s / 2
            when = datetime.fromtimestamp(m, UTC)
            doy = when.timetuple().tm_yday
            hour = when.hour + when.minute / 60 + when.second / 3600
            g = 2 * math.pi * (doy - 1 + (hour - 12) / 24) / 365
            decl = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g)
                    - 0.006758 * math.cos(2 * g) + 0.000907 * math.sin(2 * g)
                    - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
            eot = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
                            - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g))
            w = math.radians((hour * 60 + 4 * lon + eot) / 4 - 180)
            cz = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(w)
            season = math.cos(2 * math.pi * (epoch / 86400 - 14) / 365.2422)
            mean = (0.5 * (region.clearness_winter + region.clearness_summer)
                    + 0.5 * (region.clearness_winter - region.clearness_summer) * season)
            k = 1 / (1 + math.exp(-(math.log(mean / (1 - mean)) + solar.CLOUD_SPREAD * cloud[t])))
            ghi = 1098 * cz * math.exp(-0.057 / cz) * k if cz > 1e-3 else 0.0
            cos_theta = max(math.cos(decl) * math.cos(w), 0.0)
            rb = min(cos_theta / max(cz, 0.02), 5.0) if cz > 0.02 else 0.0
            diffuse = min(max(0.15 + 0.75 * (1 - k), 0.0), 1.0)
            poa = ghi * ((1 - diffuse) * rb + diffuse * (1 + math.cos(abs(lat))) / 2)
            pv = min(solar.PERFORMANCE_RATIO * poa / 1000, 1.0)
            u = min(max(_phi(gust[t]), 1e-12), 1 - 1e-12)
            sh = ((m % 86400) / 3600 + lon / 15) % 24
            daily = math.cos(2 * math.pi * (sh - region.wind_peak_hour) / 24)
            c = (region.weibull_scale * (1 + region.wind_diurnal * daily)
                 * (1 + wind.SEASONAL_AMPLITUDE * math.cos(
                     2 * math.pi * (m / 86400 - wind.SEASONAL_PEAK_DOY) / 365.2422)))
            v = c * (-math.log1p(-u)) ** (1 / region.weibull_shape)
            if v < wind.CUT_IN or v >= wind.CUT_OUT:
                wcf = 0.0
            elif v < wind.RATED:
                wcf = (v**3 - wind.CUT_IN**3) / (wind.RATED**3 - wind.CUT_IN**3)
            else:
                wcf = 1.0
            wcf *= 1 - wind.LOSSES
            local_hour = datetime.fromtimestamp(epoch, UTC).astimezone(tz).hour
            kw = 0.0
            for src in site.spec.supply:
                kind = src.type.value
                if kind == "solar":
                    kw += src.capacity_kw * pv
                elif kind == "wind":
                    kw += src.capacity_kw * wcf
                elif kind == "hydro":
                    kw += src.capacity_kw * hydro[t]
                elif src.hourly_profile is not None:
                    kw += src.capacity_kw * src.hourly_profile[local_hour]
                else:
                    kw += src.capacity_kw * (src.capacity_factor or 0.35)
            green.append(kw)
            rel = (1 - region.solar_share * (pv / statistics.mean(region.solar_cf_range) - 1)
                   - region.wind_share * (wcf / statistics.mean(region.wind_cf_range) - 1))
            carbon.append(region.carbon_g_per_kwh * min(max(rel, 0.3), 1.6))
        storage = [0.0] * grid.slots
        if site.spec.storage:
            b = Battery.from_spec(site.spec.storage)
            storage = battery_loop_reference(green, sum(green) / len(green), b, slot_h)
        out[name] = [gk + sk for gk, sk in zip(green, storage, strict=True)] + carbon
    return out


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--slots", type=int, default=192)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    sites = make_sites(args.sites)
    grid = TimeGrid(datetime(2026, 6, 1, tzinfo=UTC), slots=args.slots)
    builtin_forecasts(sites, grid)  # warm up (imports, caches)
    vec = timed(lambda: builtin_forecasts(sites, grid), args.repeat)
    fast = builtin_forecasts(sites, grid)
    slow = pure_python(sites, grid)
    worst = max(
        float(np.max(np.abs(np.concatenate([f.green_supply_kw, f.carbon_g_per_kwh])
                            - np.array(slow[n])))
              / max(1.0, float(np.max(np.abs(slow[n])))))
        for n, f in fast.items())
    base = timed(lambda: pure_python(sites, grid), max(args.repeat // 5, 2))
    med_v, med_b = statistics.median(vec), statistics.median(base)
    print(f"built-in forecasts: {args.sites} sites x {args.slots} slots, {args.repeat} runs")
    print(f"  vectorised numpy : median {med_v:7.2f} ms  min {min(vec):7.2f} ms  "
          f"max {max(vec):7.2f} ms  (target < 50 ms)")
    print(f"  pure-Python loop : median {med_b:7.2f} ms  (same physics, slot by slot)")
    print(f"  ratio            : {med_b / med_v:6.1f}x faster vectorised")
    print(f"  per site         : {med_v / args.sites * 1000:7.1f} us")
    print(f"  agreement        : max relative difference {worst:.2e} (green+storage, gCO2/kWh)")


if __name__ == "__main__":
    main()

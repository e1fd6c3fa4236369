"""From provider ``Signals`` to a checked ``SiteForecast``: gaps, ranges, bands, storage.

Gap policy (per signal, on the grid):

* holes of up to ``max_gap`` (1 hour) inside the data are interpolated;
* a start more than ``max_gap`` after the grid's start, or a longer hole, is ``Gaps``;
* data that ends before the grid starts is ``Stale``;
* a forecast shorter than the grid (a 24 h service on a 48 h grid) is extended: grid
  intensity by repeating its last 24 hours (daily persistence; the last value if it
  covers less), green supply by **zero** (never promising green nobody forecast).
  Less than ``min_horizon`` (6 h) of data is ``Gaps``.

Range: green kW within ``[-1%, 110%]`` of the site's nameplate for that source
(SCADA noise is clipped into range, anything further is ``OutOfRange``); a site source
with no signal is ``Gaps`` (never a silent zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from suandian.api.powersite import MAX_CARBON_G_PER_KWH, PowerSite
from suandian.errors import ProviderResponseError
from suandian.forecast.grid import TimeGrid
from suandian.forecast.providers.base import Signals
from suandian.forecast.resample import fill_short_gaps
from suandian.forecast.series import SOURCE_TYPES, SiteForecast, capacity_by_type
from suandian.forecast.storage import Battery, run_batteries
from suandian.forecast.uncertainty import DEFAULT_ERROR_24H, band, lead_sigma, total_band

__all__ = ["GapPolicy", "assemble", "clean_signal"]


@dataclass(frozen=True)
class GapPolicy:
    max_gap: timedelta = timedelta(hours=1)
    min_horizon: timedelta = timedelta(hours=6)


def clean_signal(provider: str, name: str, values: np.ndarray, grid: TimeGrid,
                 tail: str, policy: GapPolicy | None = None) -> np.ndarray:
    """``values`` with the gap policy applied; ``tail`` is ``"persist"`` or ``"zero"``."""
    pol = policy or GapPolicy()
    max_gap = max(int(pol.max_gap / grid.slot), 1)
    arr = fill_short_gaps(values, max_gap)
    ok = np.isfinite(arr)
    if not ok.any():
        raise ProviderResponseError(provider, "Gaps", f"{name}: no data on the horizon")
    first, last = int(np.argmax(ok)), int(ok.size - 1 - np.argmax(ok[::-1]))
    if first > max_gap:
        raise ProviderResponseError(
            provider, "Gaps", f"{name}: data starts {first * grid.slot} after the grid")
    arr[:first] = arr[first]
    if not np.all(ok[first:last + 1]):
        holes = int(np.sum(~ok[first:last + 1]))
        raise ProviderResponseError(
            provider, "Gaps", f"{name}: {holes} slots missing inside the horizon")
    covered = last + 1
    if covered < grid.slots:
        if covered * grid.slot < pol.min_horizon:
            raise ProviderResponseError(
                provider, "Gaps", f"{name}: only {covered * grid.slot} of forecast")
        if tail == "zero":
            arr[covered:] = 0.0
        else:
            day = int(timedelta(days=1) / grid.slot)
            for i in range(covered, grid.slots):
                arr[i] = arr[i - day] if i - day >= 0 else arr[covered - 1]
    return arr


def _check_stale(sig: Signals, now: datetime) -> None:
    if sig.generated_at is not None and sig.generated_at > now + timedelta(minutes=5):
        raise ProviderResponseError(sig.provider, "MalformedResponse",
                                    "forecast generated in the future")


def assemble(site: PowerSite, grid: TimeGrid, issued_at: datetime, supply: Signals,
             carbon: Signals, *, draw_kw: float | None = None, soc0: float | None = None,
             policy: GapPolicy | None = None) -> SiteForecast:
    """Check and combine a supply and a carbon answer into the site's forecast."""
    for s in (supply, carbon):
        _check_stale(s, issued_at)
    caps = capacity_by_type(site)
    lead_h = (grid.epoch_seconds + grid.slot_seconds - issued_at.timestamp()) / 3600.0
    green: dict[str, np.ndarray] = {}
    sig: dict[str, np.ndarray] = {}
    g_lo: dict[str, np.ndarray] = {}
    g_hi: dict[str, np.ndarray] = {}
    for kind in SOURCE_TYPES:
        if kind not in caps:
            continue
        if kind not in supply.values:
            raise ProviderResponseError(supply.provider, "Gaps", f"no {kind} signal")
        values = clean_signal(supply.provider, kind, supply.values[kind], grid, "zero", policy)
        cap = caps[kind]
        if np.any(values < -0.01 * cap) or np.any(values > 1.1 * cap):
            raise ProviderResponseError(
                supply.provider, "OutOfRange",
                f"{kind}: {np.min(values):.0f}..{np.max(values):.0f} kW outside 0..{cap:.0f}")
        green[kind] = np.clip(values, 0.0, cap)
        sig[kind] = lead_sigma(lead_h, DEFAULT_ERROR_24H[kind])
        if kind in supply.p10 and kind in supply.p90:
            lo = np.nan_to_num(supply.p10[kind], nan=0.0)
            hi = np.nan_to_num(supply.p90[kind], nan=cap)
            g_lo[kind] = np.clip(np.minimum(lo, green[kind]), 0.0, cap)
            g_hi[kind] = np.clip(np.maximum(hi, green[kind]), 0.0, cap)
    total = np.sum(list(green.values()), axis=0) if green else np.zeros(grid.slots)
    if green and len(g_lo) == len(green):
        g10 = np.minimum(np.sum(list(g_lo.values()), axis=0), total)
        g90 = np.maximum(np.sum(list(g_hi.values()), axis=0), total)
    elif green:
        g10, g90 = total_band(green, sig, sum(caps.values()))
    else:
        g10 = g90 = total

    name = "carbonIntensity"
    if name not in carbon.values:
        raise ProviderResponseError(carbon.provider, "Gaps", "no carbonIntensity signal")
    ci = clean_signal(carbon.provider, name, carbon.values[name], grid, "persist", policy)
    if np.any(ci < 0) or np.any(ci > MAX_CARBON_G_PER_KWH):
        raise ProviderResponseError(carbon.provider, "OutOfRange",
                                    "carbon intensity outside 0..2000 gCO2/kWh")
    if name in carbon.p10 and name in carbon.p90:
        c10 = np.minimum(np.nan_to_num(carbon.p10[name], nan=0.0), ci)
        c90 = np.maximum(np.nan_to_num(carbon.p90[name], nan=0.0), ci)
    else:
        c10, c90 = band(ci, lead_sigma(lead_h, DEFAULT_ERROR_24H["carbon"]), None)

    price = None
    for s in (supply, carbon):
        if "price" in s.values:
            price = clean_signal(s.provider, "price", s.values["price"], grid, "persist", policy)
            break

    battery = Battery.from_spec(site.spec.storage) if site.spec.storage else None
    draw = float(total.mean()) if draw_kw is None else draw_kw
    storage = run_batteries(total[None, :], np.array([draw]), [battery], grid.slot_hours,
                            None if soc0 is None else np.array([soc0])).discharge_kw[0]
    source = supply.provider if supply.provider == carbon.provider else (
        f"{supply.provider}+{carbon.provider}")
    return SiteForecast(
        site=site.metadata.name or "", grid=grid, green_kw=green, green_total_kw=total,
        green_p10_kw=g10, green_p90_kw=g90, storage_kw=storage, carbon_g_per_kwh=ci,
        carbon_p10=c10, carbon_p90=c90, price=price, source=source, issued_at=issued_at,
        capacity_kw=caps, storage_max_kw=battery.max_power_kw if battery else 0.0,
    )

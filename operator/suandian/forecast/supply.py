"""Hydro and direct green-power lines, and local time for hourly profiles.

Hydro is slow: a seasonal swing between the dry (January) and wet (July) seasons around
the capacity factor, times a multi-day AR(1) (5-day correlation time, +-8%) computed at
daily resolution and interpolated to the slots.

Direct green lines (直连绿电) are contracts: the seller delivers a contracted share of
the line's capacity for each local hour (``hourlyProfile``), or a flat
``capacityFactor`` block when no profile is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from suandian.forecast.noise import ar1_window, warmup_slots

__all__ = ["DEFAULT_DIRECT_CF", "direct_green_output", "hydro_output", "local_hours"]

HYDRO_TAU_DAYS = 5.0
HYDRO_NOISE = 0.08
DEFAULT_DIRECT_CF = 0.35
_DAY = 86400.0


def hydro_output(keys: np.ndarray, epoch_mid_s: np.ndarray, base_cf: np.ndarray,
                 wet_amplitude: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Hydro output per kW of nameplate (0..1), sites x slots."""
    days = epoch_mid_s / _DAY
    d0 = int(np.floor(days[0])) - 1
    n_days = int(np.ceil(days[-1])) - d0 + 2
    phi = float(np.exp(-1.0 / HYDRO_TAU_DAYS))
    z_days = ar1_window(keys, d0, n_days, phi, warmup_slots(HYDRO_TAU_DAYS, 1.0))
    day_axis = d0 + np.arange(n_days) + 0.5
    z = np.stack([np.interp(days, day_axis, row) for row in z_days]) if len(keys) else (
        np.zeros((0, days.size)))
    season = -np.cos(2.0 * np.pi * (days - 14.0) / 365.2422)[None, :]  # -1 mid-Jan, +1 mid-Jul
    season = np.where(lat_deg[:, None] < 0, -season, season)
    cf = base_cf[:, None] * (1.0 + wet_amplitude[:, None] * season) * (1.0 + HYDRO_NOISE * z)
    result: np.ndarray = np.clip(cf, 0.0, 1.0)
    return result


def local_hours(epoch_s: np.ndarray, zones: Sequence[str]) -> np.ndarray:
    """Local wall-clock hour (0..23) of each slot start for each zone: sites x slots.

    Offsets are looked up per slot only for zones whose offset changes inside the window
    (a DST transition); fixed-offset windows take one lookup.
    """
    out = np.empty((len(zones), epoch_s.size), dtype=np.int64)
    cache: dict[str, np.ndarray] = {}
    for i, name in enumerate(zones):
        if name not in cache:
            tz = ZoneInfo(name)

            def offset(t: float, tz: ZoneInfo = tz) -> float:
                stamp = datetime.fromtimestamp(t, UTC).astimezone(tz).utcoffset()
                return stamp.total_seconds() if stamp is not None else 0.0

            first, last = offset(float(epoch_s[0])), offset(float(epoch_s[-1]))
            offsets = (np.full(epoch_s.size, first) if first == last
                       else np.array([offset(float(t)) for t in epoch_s]))
            cache[name] = (((epoch_s + offsets) % _DAY) // 3600).astype(np.int64)
        out[i] = cache[name]
    return out


def direct_green_output(hours: np.ndarray, profile: Sequence[float] | None,
                        capacity_factor: float | None) -> np.ndarray:
    """Contracted output per kW of line capacity for one line, from its local hours."""
    if profile is not None:
        result: np.ndarray = np.asarray(profile, dtype=np.float64)[hours]
        return result
    cf = DEFAULT_DIRECT_CF if capacity_factor is None else capacity_factor
    return np.full(hours.shape, cf, dtype=np.float64)

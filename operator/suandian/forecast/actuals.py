"""The simulator's truth and what a policy would have been told in advance.

``simulate_actuals`` runs the built-in models over a grid (bands collapsed onto P50:
this is what happened). ``forecast_from_actuals`` makes the forecast a policy sees at
``issued_at``: the truth window times ``1 + sigma(lead) x e(lead)``, where ``e`` is a
unit AR(1) in lead time (6-hour correlation: errors come in weather-system-sized runs,
not white noise) and ``sigma`` grows as ``error x sqrt(lead / 24 h)``
(:mod:`suandian.forecast.uncertainty`). Each source gets its own error path; grid
intensity gets half the relative error (it is smoother than the weather). The P10/P90
bands are those of that same ``sigma``, so a calibrated policy may trust them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np

from suandian.api.powersite import PowerSite
from suandian.errors import ForecastError
from suandian.forecast.builtin import builtin_forecasts
from suandian.forecast.grid import TimeGrid
from suandian.forecast.noise import ar1
from suandian.forecast.series import SiteForecast
from suandian.forecast.uncertainty import band, lead_sigma, total_band

__all__ = ["CARBON_ERROR_RATIO", "ERROR_TAU_HOURS", "forecast_from_actuals", "simulate_actuals"]

ERROR_TAU_HOURS = 6.0
CARBON_ERROR_RATIO = 0.5


def simulate_actuals(sites: Sequence[PowerSite], grid: TimeGrid,
                     seed: int) -> dict[str, SiteForecast]:
    """What each site's supply and grid really did over ``grid``; deterministic for ``seed``."""
    return builtin_forecasts(sites, grid, seed, issued_at=grid.start, with_bands=False)


def forecast_from_actuals(actual: SiteForecast, issued_at: datetime, horizon_slots: int,
                          error: float, rng: np.random.Generator) -> SiteForecast:
    """The forecast issued at ``issued_at`` for up to ``horizon_slots`` slots of ``actual``.

    The window starts at the slot holding ``issued_at`` and is cut at the end of the
    truth. ``error`` is the relative std at 24 h lead; ``error == 0`` returns the truth
    window exactly (with ``issued_at`` stamped).
    """
    start = max(actual.grid.index_of(issued_at), 0)
    slots = min(horizon_slots, actual.grid.slots - start)
    if slots <= 0:
        raise ForecastError(f"{issued_at.isoformat()} is past the end of the actuals")
    truth = replace(actual.window(start, slots), issued_at=issued_at)
    if error < 0:
        raise ValueError(f"error must be >= 0, got {error}")
    if error == 0:
        return truth
    grid = truth.grid
    lead_h = (grid.epoch_seconds + grid.slot_seconds - issued_at.timestamp()) / 3600.0
    sigma = lead_sigma(lead_h, error)
    phi = float(np.exp(-grid.slot_hours / ERROR_TAU_HOURS))

    def path() -> np.ndarray:
        result: np.ndarray = ar1(rng.standard_normal((1, slots)), phi)[0]
        return result

    green: dict[str, np.ndarray] = {}
    sig_by: dict[str, np.ndarray] = {}
    for kind, values in truth.green_kw.items():
        cap = truth.capacity_kw.get(kind)
        noisy = values * (1.0 + sigma * path())
        green[kind] = np.clip(noisy, 0.0, cap if cap else None)
        sig_by[kind] = sigma
    total = np.sum(list(green.values()), axis=0) if green else np.zeros(slots)
    cap_total = sum(truth.capacity_kw.values()) or None
    g10, g90 = total_band(green, sig_by, cap_total) if green else (total, total)
    c_sigma = sigma * CARBON_ERROR_RATIO
    carbon = np.maximum(truth.carbon_g_per_kwh * (1.0 + c_sigma * path()), 0.0)
    c10, c90 = band(carbon, c_sigma, None)
    storage = np.clip(truth.storage_kw * (1.0 + sigma * path()), 0.0,
                      truth.storage_max_kw or None)
    price = None if truth.price is None else np.maximum(truth.price * (1 + sigma * path()), 0.0)
    return replace(truth, green_kw=green, green_total_kw=total, green_p10_kw=g10,
                   green_p90_kw=g90, storage_kw=storage, carbon_g_per_kwh=carbon,
                   carbon_p10=c10, carbon_p90=c90, price=price)

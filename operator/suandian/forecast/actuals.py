"""The simulator's truth and what a policy would have been told in advance.

``simulate_actuals`` runs the built-in models over a grid (bands collapsed onto P50:
this is what happened). ``forecast_from_actuals`` makes the forecast a policy sees at
``issued_at`` with one of two error models (``ERROR_MODELS``):

* ``lead`` (the default): the truth window times ``1 + sigma(lead) x e(lead)``, where
  ``e`` is a unit AR(1) in lead time (6-hour correlation: errors come in
  weather-system-sized runs, not white noise) and ``sigma`` grows as
  ``error x sqrt(lead / 24 h)``, floored at a tenth of it
  (:mod:`suandian.forecast.uncertainty`). Each source gets its own error path; grid
  intensity gets half the relative error (it is smoother than the weather). Mild: at
  ``error = 0.15`` the next hours are off by 2-5%.
* ``iid``: the truth plus independent Gaussian noise in every slot, of standard
  deviation ``error x`` the series' mean over the run (``scale``), whatever the lead:
  the model most carbon-aware scheduling papers evaluate with (e.g. Wiesner et al.,
  "Let's Wait Awhile", Middleware 2021). Every signal gets the full ``error``.

Either way values are clipped to ``[0, nameplate]``; the P10/P90 bands are those of the
model's own ``sigma``, so a calibrated policy may trust them. Signals in ``exact`` (real
forecasts a scenario gives) are passed through unchanged, bands collapsed onto them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Literal

import numpy as np

from suandian.api.powersite import PowerSite
from suandian.errors import ForecastError
from suandian.forecast.builtin import builtin_forecasts
from suandian.forecast.grid import TimeGrid
from suandian.forecast.noise import ar1
from suandian.forecast.series import SiteForecast
from suandian.forecast.uncertainty import band, lead_sigma, total_band

__all__ = ["CARBON_ERROR_RATIO", "ERROR_MODELS", "ERROR_TAU_HOURS", "ErrorModel",
           "forecast_from_actuals", "series_means", "simulate_actuals"]

ERROR_TAU_HOURS = 6.0
CARBON_ERROR_RATIO = 0.5
ErrorModel = Literal["lead", "iid"]
ERROR_MODELS: tuple[ErrorModel, ...] = ("lead", "iid")
"""The forecast error models (see the module's docstring)."""
CARBON = "carbonIntensity"


def simulate_actuals(sites: Sequence[PowerSite], grid: TimeGrid,
                     seed: int) -> dict[str, SiteForecast]:
    """What each site's supply and grid really did over ``grid``; deterministic for ``seed``."""
    return builtin_forecasts(sites, grid, seed, issued_at=grid.start, with_bands=False)


def series_means(actual: SiteForecast) -> dict[str, float]:
    """Each signal's mean over ``actual`` (green by source, ``carbonIntensity``,
    ``storage``, ``price``): the ``iid`` model's unit of error."""
    out = {k: float(np.mean(v)) for k, v in actual.green_kw.items()}
    out[CARBON] = float(np.mean(actual.carbon_g_per_kwh))
    out["storage"] = float(np.mean(actual.storage_kw))
    if actual.price is not None:
        out["price"] = float(np.mean(np.abs(actual.price)))
    return out


def forecast_from_actuals(actual: SiteForecast, issued_at: datetime, horizon_slots: int,
                          error: float, rng: np.random.Generator, *,
                          model: ErrorModel = "lead", scale: Mapping[str, float] | None = None,
                          exact: Collection[str] = ()) -> SiteForecast:
    """The forecast issued at ``issued_at`` for up to ``horizon_slots`` slots of ``actual``.

    The window starts at the slot holding ``issued_at`` and is cut at the end of the
    truth. ``error`` is the relative std at 24 h lead (``lead``) or the std as a share of
    each series' mean (``iid``; ``scale`` gives the means, by default those of
    ``actual``: pass the whole run's, as a window's own mean would vary). ``error == 0``
    returns the truth window exactly (with ``issued_at`` stamped); so do signals in
    ``exact``.
    """
    start = max(actual.grid.index_of(issued_at), 0)
    slots = min(horizon_slots, actual.grid.slots - start)
    if slots <= 0:
        raise ForecastError(f"{issued_at.isoformat()} is past the end of the actuals")
    truth = replace(actual.window(start, slots), issued_at=issued_at)
    if error < 0:
        raise ValueError(f"error must be >= 0, got {error}")
    if model not in ERROR_MODELS:
        raise ValueError(f"error model must be one of {ERROR_MODELS}, got {model!r}")
    if error == 0:
        return truth
    grid = truth.grid
    if model == "iid":
        means = scale if scale is not None else series_means(actual)
        sd = {k: np.full(slots, error * means.get(k, 0.0)) for k in means}

        def noise(kind: str) -> np.ndarray:
            draws: np.ndarray = rng.standard_normal(slots) * sd.get(kind, np.zeros(slots))
            return draws

        return _noisy(truth, exact, lambda k, v: v + noise(k),
                      lambda k, v: sd.get(k, np.zeros(slots)) / np.maximum(np.abs(v), 1e-9))
    lead_h = (grid.epoch_seconds + grid.slot_seconds - issued_at.timestamp()) / 3600.0
    sigma = lead_sigma(lead_h, error)
    phi = float(np.exp(-grid.slot_hours / ERROR_TAU_HOURS))

    def path() -> np.ndarray:
        result: np.ndarray = ar1(rng.standard_normal((1, slots)), phi)[0]
        return result

    def relative(kind: str) -> np.ndarray:
        return sigma * (CARBON_ERROR_RATIO if kind == CARBON else 1.0)

    return _noisy(truth, exact, lambda k, v: v * (1.0 + relative(k) * path()),
                  lambda k, v: relative(k))


def _noisy(truth: SiteForecast, exact: Collection[str],
           perturb: Callable[[str, np.ndarray], np.ndarray],
           rel_sigma: Callable[[str, np.ndarray], np.ndarray]) -> SiteForecast:
    """``truth`` with ``perturb(signal, values)`` applied to each signal not in ``exact``
    (in a fixed order: the draws of one issue are reproducible), clipped into range, and
    bands from ``rel_sigma(signal, perturbed values)`` (relative std)."""
    slots = truth.grid.slots
    zero = np.zeros(slots)
    green: dict[str, np.ndarray] = {}
    sig_by: dict[str, np.ndarray] = {}
    for kind, values in truth.green_kw.items():
        if kind in exact:
            green[kind], sig_by[kind] = np.array(values), zero
            continue
        cap = truth.capacity_kw.get(kind)
        green[kind] = np.clip(perturb(kind, values), 0.0, cap if cap else None)
        sig_by[kind] = rel_sigma(kind, green[kind])
    total = np.sum(list(green.values()), axis=0) if green else np.zeros(slots)
    cap_total = sum(truth.capacity_kw.values()) or None
    g10, g90 = total_band(green, sig_by, cap_total) if green else (total, total)
    if CARBON in exact:
        carbon = c10 = c90 = truth.carbon_g_per_kwh
    else:
        carbon = np.maximum(perturb(CARBON, truth.carbon_g_per_kwh), 0.0)
        c10, c90 = band(carbon, rel_sigma(CARBON, carbon), None)
    storage = np.clip(perturb("storage", truth.storage_kw), 0.0, truth.storage_max_kw or None)
    price = None if truth.price is None else perturb("price", truth.price)
    if price is not None and truth.price is not None and np.all(truth.price >= 0):
        price = np.maximum(price, 0.0)
    return replace(truth, green_kw=green, green_total_kw=total, green_p10_kw=g10,
                   green_p90_kw=g90, storage_kw=storage, carbon_g_per_kwh=carbon,
                   carbon_p10=c10, carbon_p90=c90, price=price)

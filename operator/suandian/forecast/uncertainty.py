"""How forecast error grows with lead time, and the P10/P90 bands that follow from it.

Relative error of a source at lead time ``tau``: ``sigma(tau) = e24 x sqrt(tau / 24 h)``
(a random-walk-like growth, as numerical weather prediction skill decays), floored at
``0.1 x e24`` for the nowcast. Bands are ``P50 x (1 -/+ Z90 sigma)``, clipped to
``[0, capacity]``; sources are treated as independent when summed to the total.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from suandian.forecast.series import Z90

__all__ = ["DEFAULT_ERROR_24H", "band", "lead_sigma", "total_band"]

DEFAULT_ERROR_24H: dict[str, float] = {
    "solar": 0.25,
    "wind": 0.35,
    "hydro": 0.05,
    "directGreen": 0.03,
    "carbon": 0.08,
}
"""Relative std at 24 h lead of the built-in forecasts, by signal (see data/README.md)."""


def lead_sigma(lead_hours: np.ndarray, error_24h: float) -> np.ndarray:
    """Relative standard deviation of the forecast error at each lead time."""
    lead = np.maximum(np.asarray(lead_hours, dtype=np.float64), 0.0)
    result: np.ndarray = error_24h * np.maximum(np.sqrt(lead / 24.0), 0.1)
    return result


def band(p50: np.ndarray, sigma: np.ndarray, cap: float | None) -> tuple[np.ndarray, np.ndarray]:
    """P10 and P90 around ``p50`` for relative std ``sigma``, within ``[0, cap]``."""
    lo = np.maximum(p50 * (1.0 - Z90 * sigma), 0.0)
    hi = p50 * (1.0 + Z90 * sigma)
    if cap is not None:
        hi = np.minimum(hi, max(cap, 0.0))
    return np.minimum(lo, p50), np.maximum(hi, p50)


def total_band(p50_by_source: Mapping[str, np.ndarray], sigma_by_source: Mapping[str, np.ndarray],
               cap_total: float | None) -> tuple[np.ndarray, np.ndarray]:
    """P10/P90 of the sum of independent sources."""
    keys = list(p50_by_source)
    if not keys:
        raise ValueError("no sources")
    total = np.sum([p50_by_source[k] for k in keys], axis=0)
    sd = np.sqrt(np.sum([(p50_by_source[k] * sigma_by_source[k]) ** 2 for k in keys], axis=0))
    lo = np.clip(total - Z90 * sd, 0.0, total)
    hi = total + Z90 * sd
    if cap_total is not None:
        hi = np.minimum(hi, cap_total)
    return lo, np.maximum(hi, total)

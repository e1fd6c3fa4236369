"""Wind power: a Weibull wind-speed process with memory and a daily cycle, through a
turbine power curve.

Speed: a stationary AR(1) ``z`` (10-hour correlation time, the synoptic-to-mesoscale
persistence of hub-height wind) is mapped to a Weibull marginal through the normal CDF
(a Gaussian copula): ``v = c (-ln(1 - Phi(z)))^(1/k)``. The Weibull scale ``c`` swings
through the day (inland northern China's low-level jet makes hub-height wind strongest
at night) and with the seasons (spring strongest).

Power curve of a generic 3 MW-class onshore turbine (IEC class II): cut-in 3 m/s, rated
11.5 m/s, cut-out 25 m/s, cubic between cut-in and rated. ``LOSSES`` (wake, electrical,
availability) take 12% off, a typical farm-level figure.
"""

from __future__ import annotations

import math

import numpy as np

from suandian.forecast.noise import ar1_window, warmup_slots

__all__ = ["CUT_IN", "CUT_OUT", "LOSSES", "RATED", "power_curve", "wind_output", "wind_speed"]

CUT_IN = 3.0
RATED = 11.5
CUT_OUT = 25.0
LOSSES = 0.12
WIND_TAU_HOURS = 10.0
SEASONAL_AMPLITUDE = 0.10
SEASONAL_PEAK_DOY = 105.0  # mid-April
_DAY = 86400.0


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Phi(z) = erfc(-z / sqrt 2) / 2, exact to double precision (math.erfc, element-wise:
    scipy.special.ndtr would cost the operator 25 MB of imports for this one function)."""
    erfc = np.asarray(_ERFC(-np.asarray(z, dtype=float) / math.sqrt(2.0)), dtype=float)
    result: np.ndarray = 0.5 * erfc
    return result


def power_curve(speed: np.ndarray) -> np.ndarray:
    """Output per kW of nameplate (0..1) at hub-height ``speed`` in m/s."""
    cubic = (speed**3 - CUT_IN**3) / (RATED**3 - CUT_IN**3)
    out = np.where(speed < CUT_IN, 0.0, np.where(speed < RATED, cubic, 1.0))
    result: np.ndarray = np.where(speed >= CUT_OUT, 0.0, out) * (1.0 - LOSSES)
    return result


def wind_speed(keys: np.ndarray, epoch_mid_s: np.ndarray, slot_s: int, lon_deg: np.ndarray,
               scale: np.ndarray, shape: np.ndarray, diurnal: np.ndarray,
               peak_hour: np.ndarray) -> np.ndarray:
    """Hub-height wind speed in m/s, sites x slots."""
    slot_h = slot_s / 3600.0
    phi = float(np.exp(-slot_h / WIND_TAU_HOURS))
    first = int((epoch_mid_s[0] - slot_s / 2) // slot_s)
    z = ar1_window(keys, first, epoch_mid_s.size, phi, warmup_slots(WIND_TAU_HOURS, slot_h))
    u = np.clip(normal_cdf(z), 1e-12, 1.0 - 1e-12)
    solar_hour = ((epoch_mid_s % _DAY)[None, :] / 3600.0 + lon_deg[:, None] / 15.0) % 24.0
    daily = 1.0 + diurnal[:, None] * np.cos(2 * np.pi * (solar_hour - peak_hour[:, None]) / 24)
    season = 1.0 + SEASONAL_AMPLITUDE * np.cos(
        2 * np.pi * (epoch_mid_s / _DAY - SEASONAL_PEAK_DOY) / 365.2422)[None, :]
    c = scale[:, None] * daily * season
    result: np.ndarray = c * (-np.log1p(-u)) ** (1.0 / shape[:, None])
    return result


def wind_output(keys: np.ndarray, epoch_mid_s: np.ndarray, slot_s: int, lon_deg: np.ndarray,
                scale: np.ndarray, shape: np.ndarray, diurnal: np.ndarray,
                peak_hour: np.ndarray) -> np.ndarray:
    """Wind-farm output per kW of nameplate (0..1), sites x slots."""
    return power_curve(
        wind_speed(keys, epoch_mid_s, slot_s, lon_deg, scale, shape, diurnal, peak_hour)
    )

"""Solar power from real solar geometry, a clear-sky model and a cloudiness process.

Geometry (all vectorised over sites x slots, evaluated at slot midpoints):

* day angle ``g = 2 pi (doy - 1 + (hour - 12) / 24) / 365``;
* declination and equation of time: Spencer's Fourier series (Spencer 1971, "Fourier
  series representation of the position of the Sun", Search 2(5):172), as used by the
  NOAA solar calculator;
* true solar time ``= UTC minutes + 4 x longitude + EoT``; hour angle ``w = tst/4 - 180``;
* ``cos Z = sin(lat) sin(decl) + cos(lat) cos(decl) cos(w)``.

Clear-sky global horizontal irradiance: Haurwitz (1945), ``GHI = 1098 cos Z exp(-0.057 /
cos Z)`` W/m², a one-parameter model that Reno, Hansen and Stein (Sandia SAND2012-2389)
found among the best of the simple ones.

Panels are fixed, facing south, tilted at the site's latitude, for which the beam's
incidence is ``cos(theta) = cos(decl) cos(w)``; irradiance on the plane adds the beam
(``Rb = cos theta / cos Z``) and isotropic diffuse sky (Liu-Jordan). The diffuse fraction
grows as clouds thicken (``d = 0.15 + 0.75 (1 - k)``, an Erbs-like shape). Output is
``PR x POA / 1000`` of nameplate with performance ratio ``PR = 0.82``, capped at 1.

Cloudiness: the clearness ``k`` (share of clear-sky irradiance that arrives) is a
logistic transform of a stationary AR(1) with an 8-hour correlation time, around a
regional mean that moves from its winter to its summer value with the seasons.
"""

from __future__ import annotations

import numpy as np

from suandian.forecast.noise import ar1_window, warmup_slots

__all__ = [
    "PERFORMANCE_RATIO",
    "clear_sky_ghi",
    "clearness",
    "cos_zenith",
    "declination",
    "equation_of_time_minutes",
    "pv_output",
    "solar_noon_utc_hours",
]

PERFORMANCE_RATIO = 0.82
CLOUD_TAU_HOURS = 8.0
CLOUD_SPREAD = 1.6
_DAY = 86400.0


def _day_angle(epoch_s: np.ndarray) -> np.ndarray:
    days = epoch_s / _DAY
    # day of year (1-based) and fractional hour from the epoch in UTC
    year_start = _year_start_days(days)
    doy = np.floor(days - year_start) + 1.0
    hour = (days - np.floor(days)) * 24.0
    result: np.ndarray = 2.0 * np.pi * (doy - 1.0 + (hour - 12.0) / 24.0) / 365.0
    return result


def _year_start_days(days: np.ndarray) -> np.ndarray:
    """Days since the epoch of 1 January of the (UTC) year holding each day."""
    day = np.floor(days).astype(np.int64).astype("datetime64[D]")
    first = day.astype("datetime64[Y]").astype("datetime64[D]")
    result: np.ndarray = first.astype(np.int64).astype(np.float64)
    return result


def declination(epoch_s: np.ndarray) -> np.ndarray:
    """Solar declination in radians (Spencer 1971)."""
    g = _day_angle(epoch_s)
    result: np.ndarray = (
        0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g) + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g)
    )
    return result


def equation_of_time_minutes(epoch_s: np.ndarray) -> np.ndarray:
    """Equation of time in minutes (Spencer 1971): apparent minus mean solar time."""
    g = _day_angle(epoch_s)
    result: np.ndarray = 229.18 * (
        0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g)
    )
    return result


def _hour_angle(epoch_s: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    utc_minutes = (epoch_s % _DAY) / 60.0
    tst = utc_minutes[None, :] + 4.0 * lon_deg[:, None] + equation_of_time_minutes(epoch_s)
    result: np.ndarray = np.radians(tst / 4.0 - 180.0)
    return result


def cos_zenith(epoch_s: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Cosine of the solar zenith angle, shape ``(sites, times)``; negative at night."""
    decl = declination(epoch_s)[None, :]
    lat = np.radians(lat_deg)[:, None]
    w = _hour_angle(epoch_s, lon_deg)
    result: np.ndarray = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(w)
    return result


def solar_noon_utc_hours(epoch_s: np.ndarray, lon_deg: float) -> np.ndarray:
    """UTC hour of local solar noon on the days of ``epoch_s`` (for checks and docs)."""
    return 12.0 - lon_deg / 15.0 - equation_of_time_minutes(epoch_s) / 60.0


def clear_sky_ghi(cos_z: np.ndarray) -> np.ndarray:
    """Haurwitz clear-sky global horizontal irradiance, W/m² (0 when the sun is down)."""
    cz = np.maximum(cos_z, 0.0)
    safe = np.where(cz > 1e-3, cz, 1.0)
    result: np.ndarray = np.where(cz > 1e-3, 1098.0 * cz * np.exp(-0.057 / safe), 0.0)
    return result


def clearness(keys: np.ndarray, epoch_s: np.ndarray, slot_s: int, winter: np.ndarray,
              summer: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Share of clear-sky irradiance reaching the ground, in (0, 1), sites x slots.

    ``winter``/``summer`` are the regional seasonal means (mid-January / mid-July in the
    northern hemisphere; swapped in the southern one).
    """
    slot_h = slot_s / 3600.0
    phi = float(np.exp(-slot_h / CLOUD_TAU_HOURS))
    first = int(epoch_s[0] // slot_s)
    z = ar1_window(keys, first, epoch_s.size, phi, warmup_slots(CLOUD_TAU_HOURS, slot_h))
    season = np.cos(2.0 * np.pi * (epoch_s / _DAY - 14.0) / 365.2422)[None, :]  # +1 mid-Jan
    season = np.where(lat_deg[:, None] < 0, -season, season)
    mean = 0.5 * (winter + summer)[:, None] + 0.5 * (winter - summer)[:, None] * season
    mean = np.clip(mean, 0.02, 0.98)
    result: np.ndarray = 1.0 / (1.0 + np.exp(-(np.log(mean / (1.0 - mean)) + CLOUD_SPREAD * z)))
    return result


def pv_output(epoch_mid_s: np.ndarray, lat_deg: np.ndarray, lon_deg: np.ndarray,
              k: np.ndarray) -> np.ndarray:
    """PV output per kW of nameplate (0..1), sites x slots, from geometry and clearness."""
    cz = cos_zenith(epoch_mid_s, lat_deg, lon_deg)
    ghi = clear_sky_ghi(cz) * k
    decl = declination(epoch_mid_s)[None, :]
    w = _hour_angle(epoch_mid_s, lon_deg)
    cos_theta = np.maximum(np.cos(decl) * np.cos(w), 0.0)
    # southern-hemisphere sites tilt north: the same identity holds with |lat|
    rb = np.where(cz > 0.02, np.minimum(cos_theta / np.maximum(cz, 0.02), 5.0), 0.0)
    diffuse = np.clip(0.15 + 0.75 * (1.0 - k), 0.0, 1.0)
    tilt = np.radians(np.abs(lat_deg))[:, None]
    poa = ghi * ((1.0 - diffuse) * rb + diffuse * (1.0 + np.cos(tilt)) / 2.0)
    result: np.ndarray = np.minimum(PERFORMANCE_RATIO * poa / 1000.0, 1.0)
    return result

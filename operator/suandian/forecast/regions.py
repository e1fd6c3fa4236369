"""Per-region parameters of the built-in models; every number's source is in data/README.md.

A region is a provincial grid (the unit of China's published emission factors and of the
NEA's utilisation-hour statistics). The eight embedded hub sites each map to one; any
other name falls back to ``national``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NATIONAL", "REGIONS", "RegionProfile", "region_for"]


@dataclass(frozen=True)
class RegionProfile:
    """What the built-in models need to know about a provincial grid.

    Capacity-factor ranges are annual equivalent utilisation hours / 8760.
    """

    name: str
    province: str
    carbon_g_per_kwh: float
    """MEE/NBS 2022 provincial average grid CO2 emission factor, g/kWh."""
    solar_share: float
    """Approximate share of solar in the province's generation (drives the daily shape)."""
    wind_share: float
    """Approximate share of wind in the province's generation."""
    clearness_winter: float
    """Mean fraction of clear-sky irradiance reaching the panels in mid-winter."""
    clearness_summer: float
    """Mean fraction of clear-sky irradiance reaching the panels in mid-summer."""
    weibull_scale: float
    """Weibull scale of hub-height wind speed, m/s (annual mean ~ 0.89 x scale for k=2)."""
    weibull_shape: float = 2.0
    wind_diurnal: float = 0.12
    """Relative amplitude of the daily wind-speed cycle (inland China: strongest at night)."""
    wind_peak_hour: float = 2.0
    """Local solar hour of the daily wind-speed maximum."""
    hydro_cf: float = 0.40
    """Default hydro capacity factor (annual)."""
    hydro_wet_amplitude: float = 0.35
    """Relative swing of hydro output between the wet (Jul) and dry (Jan) seasons."""
    solar_cf_range: tuple[float, float] = (0.12, 0.18)
    wind_cf_range: tuple[float, float] = (0.20, 0.30)


def _h(lo: float, hi: float) -> tuple[float, float]:
    """Utilisation hours to a capacity-factor range."""
    return (lo / 8760.0, hi / 8760.0)


REGIONS: dict[str, RegionProfile] = {
    "national": RegionProfile(
        "national", "China (national)", 536.6, 0.05, 0.09, 0.66, 0.66, 7.4,
        solar_cf_range=_h(1100, 1450), wind_cf_range=_h(1950, 2500)),
    "gansu": RegionProfile(
        "gansu", "Gansu", 477.2, 0.10, 0.17, 0.86, 0.74, 7.2,
        solar_cf_range=_h(1300, 1700), wind_cf_range=_h(1700, 2300)),
    "ningxia": RegionProfile(
        "ningxia", "Ningxia", 642.3, 0.11, 0.14, 0.86, 0.74, 7.2,
        solar_cf_range=_h(1300, 1700), wind_cf_range=_h(1700, 2300)),
    "inner-mongolia": RegionProfile(
        "inner-mongolia", "Inner Mongolia", 684.9, 0.05, 0.17, 0.90, 0.80, 7.8,
        wind_diurnal=0.10, solar_cf_range=_h(1400, 1800), wind_cf_range=_h(2200, 2800)),
    "guizhou": RegionProfile(
        "guizhou", "Guizhou", 498.9, 0.05, 0.04, 0.30, 0.52, 7.0,
        wind_diurnal=0.08, hydro_cf=0.42, hydro_wet_amplitude=0.45,
        solar_cf_range=_h(800, 1150), wind_cf_range=_h(1700, 2300)),
    "chengyu": RegionProfile(
        "chengyu", "Sichuan", 140.4, 0.01, 0.02, 0.38, 0.62, 7.5,
        wind_diurnal=0.08, hydro_cf=0.45, hydro_wet_amplitude=0.5,
        solar_cf_range=_h(850, 1350), wind_cf_range=_h(1800, 2600)),
    "jing-jin-ji": RegionProfile(
        "jing-jin-ji", "Hebei", 725.2, 0.08, 0.12, 0.88, 0.74, 7.6,
        solar_cf_range=_h(1250, 1600), wind_cf_range=_h(2000, 2500)),
    "yangtze-delta": RegionProfile(
        "yangtze-delta", "Anhui", 678.2, 0.06, 0.04, 0.52, 0.58, 6.9,
        wind_diurnal=0.06, solar_cf_range=_h(950, 1300), wind_cf_range=_h(1700, 2300)),
    "guangdong": RegionProfile(
        "guangdong", "Guangdong", 440.3, 0.03, 0.04, 0.58, 0.58, 7.6,
        wind_diurnal=0.06, hydro_cf=0.35,
        solar_cf_range=_h(950, 1350), wind_cf_range=_h(1900, 2500)),
}
NATIONAL = REGIONS["national"]


def region_for(name: str | None) -> RegionProfile:
    """The profile of an embedded region, or the national one for any other name."""
    return REGIONS.get(name or "", NATIONAL)

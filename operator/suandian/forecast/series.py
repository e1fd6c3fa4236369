"""``SiteForecast``: one site's supply and grid forecast on a ``TimeGrid``, as numpy arrays.

A small typed object outside, plain float64 arrays inside: the planner stacks these into
its snapshot without copying per slot. Every array has shape ``(grid.slots,)``, is
finite (never NaN) and read-only; the constructor checks it, so a bad provider answer
fails where it is made, not deep inside the planner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import numpy as np

from suandian.api.powersite import PowerSite, SourceType
from suandian.errors import ForecastError
from suandian.forecast.grid import TimeGrid

__all__ = [
    "SOURCE_TYPES",
    "Z90",
    "SiteForecast",
    "conservative_forecast",
]

SOURCE_TYPES: tuple[str, ...] = tuple(s.value for s in SourceType)
Z90 = 1.2815515655446004
"""The standard normal 90th percentile: P10/P90 are P50 -/+ ``Z90`` standard deviations."""


def _frozen(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)  # a copy: callers may keep mutating theirs
    if arr.shape != (n,):
        raise ForecastError(f"{name} has shape {arr.shape}, expected ({n},)")
    if not np.all(np.isfinite(arr)):
        raise ForecastError(f"{name} has {int(np.sum(~np.isfinite(arr)))} non-finite values")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class SiteForecast:
    """Green supply (kW by source), storage, grid intensity and price for one site.

    ``green_total_kw`` is the P50 sum of the sources; storage is separate in
    ``storage_kw``: what the battery can add in each slot, under the assumption documented
    in :mod:`suandian.forecast.storage`. ``capacity_kw`` is the nameplate capacity by
    source (bands never exceed it).
    """

    site: str
    grid: TimeGrid
    green_kw: Mapping[str, np.ndarray]
    green_total_kw: np.ndarray
    green_p10_kw: np.ndarray
    green_p90_kw: np.ndarray
    storage_kw: np.ndarray
    carbon_g_per_kwh: np.ndarray
    carbon_p10: np.ndarray
    carbon_p90: np.ndarray
    price: np.ndarray | None
    source: str
    issued_at: datetime
    capacity_kw: Mapping[str, float] = field(default_factory=dict)
    storage_max_kw: float = 0.0

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickled as its fields, the read-only mappings as dicts (a planner process
        receives forecasts): rebuilt, and checked again, on the other side."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["green_kw"], values["capacity_kw"] = dict(self.green_kw), dict(self.capacity_kw)
        return _site_forecast, (values,)

    def __post_init__(self) -> None:
        n = self.grid.slots
        set_ = object.__setattr__
        set_(self, "green_kw", MappingProxyType(
            {k: _frozen(v, n, f"green_kw[{k}]") for k, v in self.green_kw.items()}))
        for name in ("green_total_kw", "green_p10_kw", "green_p90_kw", "storage_kw",
                     "carbon_g_per_kwh", "carbon_p10", "carbon_p90"):
            set_(self, name, _frozen(getattr(self, name), n, name))
        if self.price is not None:
            set_(self, "price", _frozen(self.price, n, "price"))
        set_(self, "capacity_kw", MappingProxyType(dict(self.capacity_kw)))
        unknown = set(self.green_kw) - set(SOURCE_TYPES)
        if unknown:
            raise ForecastError(f"unknown green source types {sorted(unknown)}")
        tol = 1e-6 * (1.0 + float(np.max(np.abs(self.green_total_kw), initial=0.0)))
        if self.green_kw and np.any(
            np.abs(sum(self.green_kw.values()) - self.green_total_kw) > tol
        ):
            raise ForecastError("green_total_kw is not the sum of green_kw")
        for lo, mid, hi, what in (
            (self.green_p10_kw, self.green_total_kw, self.green_p90_kw, "green"),
            (self.carbon_p10, self.carbon_g_per_kwh, self.carbon_p90, "carbon"),
        ):
            if np.any(lo > mid + tol) or np.any(mid > hi + tol):
                raise ForecastError(f"{what} bands are not ordered p10 <= p50 <= p90")
        if np.any(self.green_p10_kw < -tol) or np.any(self.storage_kw < -tol):
            raise ForecastError("green or storage power is negative")
        if np.any(self.carbon_p10 < 0):
            raise ForecastError("grid carbon intensity is negative")
        if self.issued_at.tzinfo is None:
            raise ForecastError("issued_at must be timezone-aware")

    @property
    def green_supply_kw(self) -> np.ndarray:
        """P50 green power the planner may use: sources plus storage discharge."""
        result: np.ndarray = self.green_total_kw + self.storage_kw
        return result

    def window(self, offset: int, slots: int) -> SiteForecast:
        """The forecast for ``slots`` slots from slot ``offset`` (must lie inside the grid)."""
        if offset < 0 or slots <= 0 or offset + slots > self.grid.slots:
            raise ForecastError(
                f"window [{offset}, {offset + slots}) is outside the grid of {self.grid.slots}"
            )
        s = slice(offset, offset + slots)
        return replace(
            self,
            grid=self.grid.window(offset, slots),
            green_kw={k: v[s] for k, v in self.green_kw.items()},
            green_total_kw=self.green_total_kw[s],
            green_p10_kw=self.green_p10_kw[s],
            green_p90_kw=self.green_p90_kw[s],
            storage_kw=self.storage_kw[s],
            carbon_g_per_kwh=self.carbon_g_per_kwh[s],
            carbon_p10=self.carbon_p10[s],
            carbon_p90=self.carbon_p90[s],
            price=None if self.price is None else self.price[s],
        )

    def with_source(self, source: str) -> SiteForecast:
        return replace(self, source=source)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ISO times, lists of floats rounded for people and diffs."""

        def r(a: np.ndarray, nd: int = 1) -> list[float]:
            return [round(float(x), nd) for x in a]

        return {
            "site": self.site,
            "source": self.source,
            "issuedAt": self.issued_at.isoformat(),
            "start": self.grid.start.isoformat(),
            "slotSeconds": self.grid.slot_seconds,
            "slots": self.grid.slots,
            "times": [str(t) + "Z" for t in self.grid.times],
            "capacityKW": dict(self.capacity_kw),
            "greenKW": {k: r(v) for k, v in self.green_kw.items()},
            "greenTotalKW": r(self.green_total_kw),
            "greenP10KW": r(self.green_p10_kw),
            "greenP90KW": r(self.green_p90_kw),
            "storageKW": r(self.storage_kw),
            "carbonGPerKWh": r(self.carbon_g_per_kwh),
            "carbonP10": r(self.carbon_p10),
            "carbonP90": r(self.carbon_p90),
            "price": None if self.price is None else r(self.price, 4),
            "summary": self.summary(),
        }

    def status_summary(self) -> dict[str, Any]:
        """``PowerSite.status.greenForecast`` (wire keys): means over the next 6 and 24 h,
        the peak and when it comes. Green here includes what storage can add."""
        supply = self.green_supply_kw
        per_hour = 1.0 / self.grid.slot_hours
        peak = int(np.argmax(supply))
        return {
            "next6hAverageKW": round(float(supply[: max(int(6 * per_hour), 1)].mean()), 1),
            "next24hAverageKW": round(float(supply[: max(int(24 * per_hour), 1)].mean()), 1),
            "peakKW": round(float(supply[peak]), 1),
            "peakAt": self.grid.time_at(peak).isoformat(),
        }

    def summary(self) -> dict[str, Any]:
        """Energy and means over the horizon, for tables and status."""
        h = self.grid.slot_hours
        total = self.green_total_kw
        peak = int(np.argmax(total)) if total.size else 0
        return {
            "greenEnergyKWh": round(float(total.sum() * h), 1),
            "greenEnergyBySourceKWh": {
                k: round(float(v.sum() * h), 1) for k, v in self.green_kw.items()
            },
            "storageEnergyKWh": round(float(self.storage_kw.sum() * h), 1),
            "meanGreenKW": round(float(total.mean()), 1),
            "peakGreenKW": round(float(total[peak]), 1),
            "peakAt": self.grid.time_at(peak).isoformat(),
            "meanCarbonGPerKWh": round(float(self.carbon_g_per_kwh.mean()), 1),
        }


def _site_forecast(values: dict[str, Any]) -> SiteForecast:
    return SiteForecast(**values)


def conservative_forecast(site: PowerSite, grid: TimeGrid, issued_at: datetime) -> SiteForecast:
    """All grid, no green, no storage, grid intensity from ``spec.grid.carbonIntensity``.

    What the planner gets when nothing trustworthy is known: it never over-promises green
    power, so no deadline is risked waiting for sun that may not come.
    """
    zeros = np.zeros(grid.slots)
    carbon = np.full(grid.slots, site.spec.grid.carbon_intensity)
    return SiteForecast(
        site=site.metadata.name or "",
        grid=grid,
        green_kw={s.type.value: zeros for s in site.spec.supply},
        green_total_kw=zeros,
        green_p10_kw=zeros,
        green_p90_kw=zeros,
        storage_kw=zeros,
        carbon_g_per_kwh=carbon,
        carbon_p10=carbon,
        carbon_p90=carbon,
        price=None,
        source="conservative",
        issued_at=issued_at,
        capacity_kw=capacity_by_type(site),
    )


def capacity_by_type(site: PowerSite) -> dict[str, float]:
    """Nameplate kW per source type (several sources of a type add up)."""
    out: dict[str, float] = {}
    for s in site.spec.supply:
        out[s.type.value] = out.get(s.type.value, 0.0) + s.capacity_kw
    return out


def age(forecast: SiteForecast, now: datetime) -> timedelta:
    return now - forecast.issued_at

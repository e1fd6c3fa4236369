"""The built-in physical models as a provider (supply by source and grid intensity)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from suandian.api.powersite import PowerSite
from suandian.forecast.builtin import builtin_forecasts
from suandian.forecast.grid import TimeGrid
from suandian.forecast.providers.base import Signals

__all__ = ["BuiltinProvider"]


@dataclass
class BuiltinProvider:
    site: PowerSite
    seed: int = 0
    name: str = "builtin"

    async def fetch(self, grid: TimeGrid, now: datetime) -> Signals:
        return self.read(grid, now)

    def read(self, grid: TimeGrid, now: datetime) -> Signals:
        fc = next(iter(builtin_forecasts([self.site], grid, self.seed, issued_at=now).values()))
        values = dict(fc.green_kw)
        values["carbonIntensity"] = fc.carbon_g_per_kwh
        return Signals(self.name, grid, values, p10={"carbonIntensity": fc.carbon_p10},
                       p90={"carbonIntensity": fc.carbon_p90}, generated_at=now)

"""Scripted forecast providers: known green supply and carbon, and an off switch.

The real :class:`~suandian.forecast.ForecastKeeper` runs on top (assembly, checks,
fallback to last good and conservative), so scenarios test the operator with the real
degradation chain, on forecasts whose best window the test knows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from suandian.api.powersite import PowerSite
from suandian.errors import ProviderError
from suandian.forecast import ForecastKeeper, SiteInputs, TimeGrid
from suandian.forecast.providers.base import Signals

__all__ = ["ScriptedProvider", "keeper_factory", "powersite"]

GreenFn = Callable[[datetime], float]


@dataclass
class ScriptedProvider:
    """Wind kW and grid intensity as functions of time; ``down`` makes every fetch fail."""

    green_kw: GreenFn
    carbon: float = 600.0
    name: str = "scripted"
    down: bool = False
    fetches: int = field(default=0)
    delay: float = 0.0  # loop seconds each fetch takes (a slow provider)

    async def fetch(self, grid: TimeGrid, now: datetime) -> Signals:
        self.fetches += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise ProviderError(self.name, "ServerError", "scripted outage: HTTP 503")
        times = [grid.time_at(i) for i in range(grid.slots)]
        wind = np.array([self.green_kw(t) for t in times], dtype=float)
        carbon = np.full(grid.slots, self.carbon)
        return Signals(provider=self.name, grid=grid,
                       values={"wind": wind, "carbonIntensity": carbon},
                       p10={"wind": wind}, p90={"wind": wind}, generated_at=now)


def keeper_factory(providers: dict[str, ScriptedProvider]
                   ) -> Callable[[PowerSite, SiteInputs], ForecastKeeper]:
    """Keepers whose supply and carbon come from the named scripted providers (they read
    nothing from the cluster: ``inputs`` stays empty)."""

    def make(site: PowerSite, inputs: SiteInputs) -> ForecastKeeper:
        del inputs
        provider = providers[site.metadata.name or ""]
        return ForecastKeeper(site, provider, provider)

    return make


def powersite(name: str, region: str, *, wind_kw: float = 1000.0, carbon: float = 600.0,
              labels: dict[str, str] | None = None) -> dict[str, object]:
    """A PowerSite manifest with one wind farm and a grid connection."""
    return {
        "apiVersion": "suandian.io/v1alpha1", "kind": "PowerSite",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "nodeSelector": {"topology.kubernetes.io/region": region},
            "location": {"latitude": 38.0, "longitude": 106.0},
            "supply": [{"type": "wind", "name": f"{name}-wind", "capacityKW": wind_kw}],
            "grid": {"importLimitKW": 100000, "carbonIntensity": carbon},
            "pue": 1.2,
            "forecast": {"refreshInterval": "15m", "maxStaleness": "6h"},
        },
    }

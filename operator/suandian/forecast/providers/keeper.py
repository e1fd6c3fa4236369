"""Per-site degradation: last good forecast for ``maxStaleness``, then conservative.

It lives with the providers because it awaits them (the one async corner below the
controllers); the checks it applies are the pure :mod:`suandian.forecast.assemble`.

``ForecastKeeper.refresh(now)`` never raises for a provider's failure: every
:class:`~suandian.errors.ForecastError` (HTTP faults, timeouts, malformed, stale, gappy or
out-of-range data) is caught, recorded as the site's health, and answered with

1. the last good forecast, moved onto the current grid, while it is younger than
   ``maxStaleness`` (``source="lastGood"``, ``Degraded=True`` with the failure's reason);
2. after that, the conservative forecast: all grid, no green, the spec's grid carbon
   intensity (``source="conservative"``, ``ForecastReady=False``).

Slots the last good forecast does not reach are filled conservatively too. Programming
errors (anything not a ``ForecastError``) still propagate: hiding a bug as "degraded"
would be a silent failure of another kind.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from suandian.api.powersite import PowerSite
from suandian.errors import ForecastError, ProviderError
from suandian.forecast.assemble import GapPolicy, assemble
from suandian.forecast.grid import DEFAULT_SLOT, DEFAULT_SLOTS, TimeGrid
from suandian.forecast.providers import Credentials, Provider, RetryPolicy, make_provider
from suandian.forecast.providers.base import Signals, SiteInputs
from suandian.forecast.series import SiteForecast, conservative_forecast

__all__ = ["ForecastKeeper", "SiteHealth"]


@dataclass(frozen=True)
class SiteHealth:
    """What the operator writes as the ``ForecastReady`` and ``Degraded`` conditions."""

    ready: bool
    degraded: bool
    reason: str
    message: str
    age: timedelta | None
    source: str

    def conditions(self) -> list[dict[str, str]]:
        """The two conditions as wire dicts (without transition times)."""
        return [
            {"type": "ForecastReady", "status": "True" if self.ready else "False",
             "reason": self.reason, "message": self.message},
            {"type": "Degraded", "status": "True" if self.degraded else "False",
             "reason": self.reason, "message": self.message},
        ]


def _failure_reason(exc: ForecastError) -> str:
    return exc.reason if isinstance(exc, ProviderError) else "ForecastError"


class ForecastKeeper:
    """The fallback chain for one site: provider -> last good -> conservative."""

    def __init__(self, site: PowerSite, supply: Provider, carbon: Provider, *,
                 max_staleness: timedelta | None = None, slot: timedelta = DEFAULT_SLOT,
                 slots: int = DEFAULT_SLOTS, gap_policy: GapPolicy | None = None) -> None:
        self.site = site
        self.supply = supply
        self.carbon = carbon
        self.max_staleness = max_staleness or site.spec.forecast.max_staleness
        self.slot, self.slots = slot, slots
        self.gap_policy = gap_policy
        self._good: SiteForecast | None = None
        self._error: ForecastError | None = None
        self._attempted = False

    @classmethod
    def for_site(cls, site: PowerSite, *, credentials: Credentials | None = None,
                 policy: RetryPolicy | None = None, csv_texts: dict[str, str] | None = None,
                 seed: int = 0, http: dict[str, Any] | None = None,
                 slot: timedelta = DEFAULT_SLOT, slots: int = DEFAULT_SLOTS) -> ForecastKeeper:
        """A keeper with the providers the site's ``spec.forecast`` names."""
        fs = site.spec.forecast
        kw: dict[str, Any] = {"credentials": credentials, "policy": policy,
                              "csv_texts": csv_texts, "seed": seed, "http": http}
        supply = make_provider(fs.supply, site, **kw)
        carbon = supply if fs.carbon == fs.supply else make_provider(fs.carbon, site, **kw)
        return cls(site, supply, carbon, slot=slot, slots=slots)

    @classmethod
    def from_inputs(cls, site: PowerSite, inputs: SiteInputs) -> ForecastKeeper:
        """The operator's keeper: the providers the site's spec names, reading the CSV
        texts and Secrets that the PowerSite controller keeps in ``inputs``."""
        return cls.for_site(site, credentials=inputs.credentials, csv_texts=inputs.csv_texts)

    async def _fetch(self, grid: TimeGrid, now: datetime) -> tuple[Signals, Signals]:
        if self.carbon is self.supply:
            s = await self.supply.fetch(grid, now)
            return s, s
        got = await asyncio.gather(self.supply.fetch(grid, now), self.carbon.fetch(grid, now),
                                   return_exceptions=True)
        for item in got:
            if isinstance(item, BaseException):
                raise item
        return got[0], got[1]  # type: ignore[return-value]

    async def refresh(self, now: datetime, *, draw_kw: float | None = None,
                      soc0: float | None = None) -> SiteForecast:
        """Fetch, check and keep a new forecast; on failure, the best fallback."""
        self._attempted = True
        grid = TimeGrid.covering(now, slot=self.slot, slots=self.slots)
        try:
            supply, carbon = await self._fetch(grid, now)
            fc = assemble(self.site, grid, now, supply, carbon, draw_kw=draw_kw, soc0=soc0,
                          policy=self.gap_policy)
        except ForecastError as exc:
            self._error = exc
            return self.forecast(now)
        self._good, self._error = fc, None
        return fc

    @property
    def last_error(self) -> ForecastError | None:
        """Why the last refresh failed (None: it succeeded, or none was attempted yet)."""
        return self._error

    def _usable(self, now: datetime) -> bool:
        return self._good is not None and now - self._good.issued_at <= self.max_staleness

    def forecast(self, now: datetime) -> SiteForecast:
        """The best forecast for the grid holding ``now``; never raises, never empty."""
        grid = TimeGrid.covering(now, slot=self.slot, slots=self.slots)
        if self._good is None or not self._usable(now):
            return conservative_forecast(self.site, grid, now)
        moved = _move(self._good, grid, self.site, now)
        return moved if self._error is None else moved.with_source("lastGood")

    def health(self, now: datetime) -> SiteHealth:
        """Ready/degraded, reason, message and age of the forecast in use."""
        age = None if self._good is None else now - self._good.issued_at
        limit = f"{self.max_staleness}"
        if not self._attempted:
            return SiteHealth(False, False, "NotYetFetched", "no forecast fetched yet", None,
                              "conservative")
        if self._error is None and self._usable(now):
            assert self._good is not None
            return SiteHealth(True, False, "ForecastFresh",
                              f"forecast from {self._good.source}", age, self._good.source)
        reason = "Stale" if self._error is None else _failure_reason(self._error)
        what = str(self._error) if self._error else "no refresh since the last forecast"
        if self._usable(now):
            return SiteHealth(True, True, reason,
                              f"{what}; using the last good forecast ({age} old, kept up to "
                              f"{limit})", age, "lastGood")
        kept = "never had a good forecast" if self._good is None else (
            f"last good forecast is {age} old, beyond {limit}")
        return SiteHealth(False, True, reason,
                          f"{what}; {kept}: planning as all-grid, no green", age,
                          "conservative")


def _move(fc: SiteForecast, grid: TimeGrid, site: PowerSite, now: datetime) -> SiteForecast:
    """``fc`` on ``grid``: its overlap kept, the rest conservative (no green, spec intensity)."""
    if fc.grid == grid:
        return fc
    offset = fc.grid.index_of(grid.start)
    cons = conservative_forecast(site, grid, now)
    if offset < 0 or fc.grid.slot != grid.slot:
        return cons.with_source(fc.source)
    n = max(min(fc.grid.slots - offset, grid.slots), 0)

    def shift(a: np.ndarray | None, fill: np.ndarray) -> np.ndarray:
        out = np.array(fill, dtype=np.float64)
        if a is not None and n > 0:
            out[:n] = a[offset:offset + n]
        return out

    green = {k: shift(v, cons.green_total_kw) for k, v in fc.green_kw.items()}
    return replace(
        fc, grid=grid, green_kw=green,
        green_total_kw=shift(fc.green_total_kw, cons.green_total_kw),
        green_p10_kw=shift(fc.green_p10_kw, cons.green_p10_kw),
        green_p90_kw=shift(fc.green_p90_kw, cons.green_p90_kw),
        storage_kw=shift(fc.storage_kw, cons.storage_kw),
        carbon_g_per_kwh=shift(fc.carbon_g_per_kwh, cons.carbon_g_per_kwh),
        carbon_p10=shift(fc.carbon_p10, cons.carbon_p10),
        carbon_p90=shift(fc.carbon_p90, cons.carbon_p90),
        price=None if fc.price is None else shift(fc.price, np.zeros(grid.slots)),
    )

"""Gap policy, range checks and the fallback chain with scripted providers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from suandian.api.powersite import PowerSite
from suandian.errors import ProviderError, ProviderResponseError
from suandian.forecast import ForecastKeeper, TimeGrid, assemble
from suandian.forecast.providers import BuiltinProvider, Signals

NOW = datetime(2026, 6, 1, 3, 5, tzinfo=UTC)


@dataclass
class Scripted:
    """Answers with the builtin signals, or raises what it is told to."""

    inner: BuiltinProvider
    fail: ProviderError | None = None
    edit: dict[str, object] = field(default_factory=dict)
    name: str = "scripted"
    calls: int = 0

    async def fetch(self, grid: TimeGrid, now: datetime) -> Signals:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        s = self.inner.read(grid, now)
        values = {k: np.array(v) for k, v in s.values.items()}
        for k, fn in self.edit.items():
            values[k] = fn(values[k])  # type: ignore[operator]
        return Signals(self.name, grid, values, generated_at=now)


def _signals(site: PowerSite, grid: TimeGrid, **edit: object) -> Signals:
    s = BuiltinProvider(site).read(grid, NOW)
    values = {k: np.array(v) for k, v in s.values.items()}
    for k, fn in edit.items():
        values[k] = fn(values[k])  # type: ignore[operator]
    return Signals("test", grid, values, generated_at=NOW)


def _holes(a: np.ndarray, lo: int, hi: int) -> np.ndarray:
    a[lo:hi] = np.nan
    return a


def test_gap_policy(sites: dict[str, PowerSite]) -> None:
    site = sites["gansu"]
    grid = TimeGrid.covering(NOW)
    ok = assemble(site, grid, NOW, _signals(site, grid, wind=lambda a: _holes(a, 10, 13)),
                  _signals(site, grid))
    assert np.all(np.isfinite(ok.green_kw["wind"]))
    with pytest.raises(ProviderResponseError) as e:
        assemble(site, grid, NOW, _signals(site, grid, wind=lambda a: _holes(a, 10, 30)),
                 _signals(site, grid))
    assert e.value.reason == "Gaps"
    short = assemble(site, grid, NOW, _signals(site, grid, solar=lambda a: _holes(a, 100, 192)),
                     _signals(site, grid, carbonIntensity=lambda a: _holes(a, 120, 192)))
    assert np.all(short.green_kw["solar"][100:] == 0.0)  # never invent green
    np.testing.assert_array_equal(short.carbon_g_per_kwh[120:],
                                  short.carbon_g_per_kwh[120 - 96:192 - 96])
    s = _signals(site, grid)
    with pytest.raises(ProviderResponseError, match="no wind"):
        assemble(site, grid, NOW, Signals("x", grid, {"solar": s.values["solar"]}),
                 _signals(site, grid))


def test_out_of_range_values_are_refused(sites: dict[str, PowerSite]) -> None:
    site = sites["gansu"]
    grid = TimeGrid.covering(NOW)
    with pytest.raises(ProviderResponseError) as e:
        assemble(site, grid, NOW, _signals(site, grid, solar=lambda a: a * 1000),
                 _signals(site, grid))
    assert e.value.reason == "OutOfRange"
    with pytest.raises(ProviderResponseError, match=r"0\.\.2000"):
        assemble(site, grid, NOW, _signals(site, grid),
                 _signals(site, grid, carbonIntensity=lambda a: a + 5000))


async def test_fallback_chain(sites: dict[str, PowerSite]) -> None:
    site = sites["ningxia"]  # maxStaleness 6h
    supply = Scripted(BuiltinProvider(site))
    keeper = ForecastKeeper(site, supply, supply)
    assert keeper.health(NOW).reason == "NotYetFetched"
    fresh = await keeper.refresh(NOW)
    assert fresh.source == "scripted"
    assert keeper.health(NOW).ready and not keeper.health(NOW).degraded

    supply.fail = ProviderError("scripted", "ServerError", "HTTP 503")
    later = NOW + timedelta(hours=2)
    kept = await keeper.refresh(later)
    h = keeper.health(later)
    assert kept.source == "lastGood" and h.ready and h.degraded and h.reason == "ServerError"
    assert kept.grid.start == TimeGrid.covering(later).start
    np.testing.assert_array_equal(kept.green_total_kw[:184], fresh.green_total_kw[8:])
    assert np.all(kept.green_total_kw[184:] == 0.0)  # beyond the old horizon: no green

    much_later = NOW + timedelta(hours=7)
    cons = await keeper.refresh(much_later)
    h = keeper.health(much_later)
    assert cons.source == "conservative" and not h.ready and h.degraded
    assert "all-grid" in h.message
    assert np.all(cons.carbon_g_per_kwh == site.spec.grid.carbon_intensity)

    supply.fail = None
    back = await keeper.refresh(much_later)
    assert back.source == "scripted" and keeper.health(much_later).reason == "ForecastFresh"


async def test_first_failure_goes_straight_to_conservative(sites: dict[str, PowerSite]) -> None:
    site = sites["gansu"]
    bad = Scripted(BuiltinProvider(site), edit={"wind": lambda a: a * np.nan})
    keeper = ForecastKeeper(site, bad, bad)
    fc = await keeper.refresh(NOW)
    assert fc.source == "conservative"
    h = keeper.health(NOW)
    assert (h.ready, h.degraded, h.reason) == (False, True, "Gaps")
    conds = {c["type"]: c for c in h.conditions()}
    assert conds["ForecastReady"]["status"] == "False" and conds["Degraded"]["status"] == "True"


async def test_an_unrefreshed_forecast_turns_stale(sites: dict[str, PowerSite]) -> None:
    site = sites["gansu"]
    keeper = ForecastKeeper(site, BuiltinProvider(site), BuiltinProvider(site))
    await keeper.refresh(NOW)
    late = NOW + timedelta(hours=6, minutes=1)
    assert keeper.forecast(late).source == "conservative"
    assert keeper.health(late).reason == "Stale"


async def test_grid_only_site(sites: dict[str, PowerSite]) -> None:
    doc = sites["guangdong"].model_dump(by_alias=True)
    doc["metadata"]["name"] = "grid-only"
    doc["spec"]["supply"] = []
    site = PowerSite.model_validate(doc)
    keeper = ForecastKeeper(site, BuiltinProvider(site), BuiltinProvider(site))
    fc = await keeper.refresh(NOW)
    assert fc.source == "builtin" and dict(fc.green_kw) == {}
    assert fc.green_supply_kw.sum() == 0.0 and fc.carbon_g_per_kwh.mean() > 300

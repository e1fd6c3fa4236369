from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from suandian.api.powersite import PowerSite
from suandian.errors import ForecastError
from suandian.forecast import SiteForecast, TimeGrid, builtin_forecasts, conservative_forecast


def test_grid_alignment_times_and_index() -> None:
    g = TimeGrid(datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8))))
    assert g.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert g.end - g.start == timedelta(hours=48)
    assert g.slot_hours == 0.25
    assert g.times[1] == np.datetime64("2026-01-01T00:15:00")
    assert g.index_of(datetime(2026, 1, 1, 0, 29, tzinfo=UTC)) == 1
    assert g.index_of(datetime(2025, 12, 31, 23, 59, tzinfo=UTC)) == -1
    assert g.index_of(g.end) == g.slots
    with pytest.raises(ValueError, match="aligned"):
        TimeGrid(datetime(2026, 1, 1, 0, 7, tzinfo=UTC))
    with pytest.raises(ValueError, match=r"time zone|timezone"):
        TimeGrid(datetime(2026, 1, 1))
    assert TimeGrid.covering(datetime(2026, 1, 1, 0, 7, tzinfo=UTC)).start.minute == 0


def _fc(grid: TimeGrid, **over: object) -> SiteForecast:
    n = grid.slots
    base: dict[str, object] = {
        "site": "s", "grid": grid, "green_kw": {"solar": np.ones(n)},
        "green_total_kw": np.ones(n), "green_p10_kw": np.zeros(n),
        "green_p90_kw": np.full(n, 2.0), "storage_kw": np.zeros(n),
        "carbon_g_per_kwh": np.full(n, 500.0), "carbon_p10": np.full(n, 400.0),
        "carbon_p90": np.full(n, 600.0), "price": None, "source": "builtin",
        "issued_at": grid.start}
    base.update(over)
    return SiteForecast(**base)  # type: ignore[arg-type]


def test_site_forecast_refuses_nan_wrong_shape_and_disordered_bands(grid: TimeGrid) -> None:
    n = grid.slots
    fc = _fc(grid)
    assert not fc.green_total_kw.flags.writeable
    bad = np.ones(n)
    bad[3] = np.nan
    with pytest.raises(ForecastError, match="non-finite"):
        _fc(grid, green_kw={"solar": bad}, green_total_kw=bad)
    with pytest.raises(ForecastError, match="shape"):
        _fc(grid, storage_kw=np.zeros(n - 1))
    with pytest.raises(ForecastError, match="ordered"):
        _fc(grid, green_p10_kw=np.full(n, 1.5))
    with pytest.raises(ForecastError, match="sum"):
        _fc(grid, green_total_kw=np.full(n, 3.0), green_p90_kw=np.full(n, 3.0))


def test_window_and_json(sites: dict[str, PowerSite], grid: TimeGrid) -> None:
    fc = builtin_forecasts([sites["gansu"]], grid)["gansu"]
    w = fc.window(8, 16)
    assert w.grid.start == grid.start + timedelta(hours=2)
    np.testing.assert_array_equal(w.green_kw["wind"], fc.green_kw["wind"][8:24])
    doc = fc.to_json()
    assert len(doc["times"]) == len(doc["greenTotalKW"]) == grid.slots
    assert set(doc["greenKW"]) == {"solar", "wind", "directGreen"}
    with pytest.raises(ForecastError):
        fc.window(190, 5)


def test_conservative_is_all_grid_at_the_spec_intensity(sites: dict[str, PowerSite],
                                                        grid: TimeGrid) -> None:
    fc = conservative_forecast(sites["ningxia"], grid, grid.start)
    assert fc.source == "conservative"
    assert fc.green_supply_kw.sum() == 0.0
    assert np.all(fc.carbon_g_per_kwh == 642.3)


def test_status_summary_fits_the_powersite_status(sites: dict[str, PowerSite],
                                                  grid: TimeGrid) -> None:
    from suandian.api.powersite import GreenForecastSummary

    fc = builtin_forecasts([sites["gansu"]], grid)["gansu"]
    wire = fc.status_summary()
    summary = GreenForecastSummary.model_validate(wire)
    assert summary.next_6h_average_kw == round(float(fc.green_supply_kw[:24].mean()), 1)
    assert summary.peak_kw == round(float(fc.green_supply_kw.max()), 1)

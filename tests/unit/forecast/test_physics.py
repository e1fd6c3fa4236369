"""Physics checks of the built-in models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from suandian.api.powersite import PowerSite
from suandian.forecast import TimeGrid, builtin_forecasts
from suandian.forecast.builtin import run_models
from suandian.forecast.regions import REGIONS
from suandian.forecast.solar import (
    clear_sky_ghi,
    cos_zenith,
    declination,
    equation_of_time_minutes,
    solar_noon_utc_hours,
)
from suandian.forecast.wind import CUT_IN, CUT_OUT, RATED, power_curve


def _epoch(*args: int) -> np.ndarray:
    return np.array([datetime(*args, tzinfo=UTC).timestamp()])


def test_declination_at_solstices_and_equinox() -> None:
    assert np.degrees(declination(_epoch(2026, 6, 21, 12)))[0] == pytest.approx(23.44, abs=0.3)
    assert np.degrees(declination(_epoch(2026, 12, 21, 12)))[0] == pytest.approx(-23.44, abs=0.3)
    assert np.degrees(declination(_epoch(2026, 3, 20, 12)))[0] == pytest.approx(0.0, abs=0.7)


def test_equation_of_time_extremes() -> None:
    # NOAA tables: about -14.2 min around 11 Feb, +16.4 min around 3 Nov
    assert equation_of_time_minutes(_epoch(2026, 2, 11, 12))[0] == pytest.approx(-14.2, abs=0.6)
    assert equation_of_time_minutes(_epoch(2026, 11, 3, 12))[0] == pytest.approx(16.4, abs=0.6)


def test_noon_sun_height_matches_latitude_and_declination() -> None:
    lat, lon = 40.0, 116.4
    noon = solar_noon_utc_hours(_epoch(2026, 6, 21, 0), lon)[0]
    t = datetime(2026, 6, 21, tzinfo=UTC).timestamp() + noon * 3600
    cz = cos_zenith(np.array([t]), np.array([lat]), np.array([lon]))[0, 0]
    assert np.degrees(np.arccos(cz)) == pytest.approx(40.0 - 23.44, abs=0.3)
    assert clear_sky_ghi(np.array([cz]))[0] == pytest.approx(
        1098 * cz * np.exp(-0.057 / cz), rel=1e-9)


def test_no_solar_at_night(sites: dict[str, PowerSite]) -> None:
    grid = TimeGrid(datetime(2026, 1, 1, tzinfo=UTC), slots=96 * 30)
    run = run_models(list(sites.values()), grid, seed=3)
    epoch = grid.epoch_seconds + grid.slot_seconds / 2
    for i, site in enumerate(sites.values()):
        loc = site.spec.location
        cz = cos_zenith(epoch, np.array([loc.latitude]), np.array([loc.longitude]))[0]
        assert np.all(run.pv_cf[i][cz <= 0] == 0.0), site.metadata.name
        assert run.pv_cf[i][cz > 0.5].max() > 0.3


def test_daily_peak_is_near_local_solar_noon(sites: dict[str, PowerSite]) -> None:
    gansu = sites["gansu"]
    grid = TimeGrid(datetime(2026, 3, 1, tzinfo=UTC), slots=96 * 60)
    pv = run_models([gansu], grid, seed=1).pv_cf[0].reshape(60, 96).mean(axis=0)
    peak_utc_h = (np.argmax(pv) + 0.5) * 0.25
    noon = solar_noon_utc_hours(grid.epoch_seconds[::96], gansu.spec.location.longitude).mean()
    assert abs(peak_utc_h - noon) <= 0.5
    # Beijing time is UTC+8 but Gansu's sun peaks ~50 minutes after 12:00 local
    assert 12.3 <= (peak_utc_h + 8) <= 13.4


def test_more_winter_sun_in_gansu_than_guizhou(sites: dict[str, PowerSite]) -> None:
    grid = TimeGrid(datetime(2025, 12, 1, tzinfo=UTC), slot=timedelta(hours=1), slots=24 * 90)
    run = run_models([sites["gansu"], sites["guizhou"]], grid, seed=0)
    gansu, guizhou = run.pv_cf.mean(axis=1)
    assert gansu > 1.5 * guizhou


@pytest.mark.parametrize("seed", [0, 7])
def test_annual_capacity_factors_within_regional_ranges(sites: dict[str, PowerSite],
                                                        seed: int) -> None:
    grid = TimeGrid(datetime(2025, 1, 1, tzinfo=UTC), slot=timedelta(hours=1), slots=8760)
    run = run_models(list(sites.values()), grid, seed=seed)
    for i, name in enumerate(sites):
        region = REGIONS[name]
        lo, hi = region.solar_cf_range
        assert lo <= run.pv_cf[i].mean() <= hi, (name, "solar", run.pv_cf[i].mean())
        lo, hi = region.wind_cf_range
        # one simulated year of a single farm scatters ~+-0.015 around the regional mean
        assert lo - 0.02 <= run.wind_cf[i].mean() <= hi + 0.02, (name, "wind")
        assert run.carbon[i].mean() == pytest.approx(region.carbon_g_per_kwh, rel=0.06)


def test_hydro_is_slow_and_seasonal(sites: dict[str, PowerSite]) -> None:
    grid = TimeGrid(datetime(2025, 1, 1, tzinfo=UTC), slot=timedelta(hours=1), slots=8760)
    hydro = run_models([sites["guizhou"]], grid, seed=0).hydro_cf[0]
    assert hydro[24 * 180:24 * 210].mean() > 1.5 * hydro[:24 * 30].mean()  # July vs January
    assert np.max(np.abs(np.diff(hydro))) < 0.01  # no jumps from hour to hour
    assert hydro.mean() == pytest.approx(0.42, rel=0.1)


def test_power_curve_shape() -> None:
    v = np.array([0.0, CUT_IN - 0.1, (CUT_IN + RATED) / 2, RATED, 20.0, CUT_OUT + 0.1])
    p = power_curve(v)
    assert p[0] == p[1] == 0.0
    assert 0 < p[2] < p[3]
    assert p[3] == p[4] == pytest.approx(0.88)
    assert p[5] == 0.0
    assert np.all(np.diff(power_curve(np.linspace(0, RATED, 50))) >= 0)


def test_deterministic_for_a_seed_and_different_across_seeds(sites: dict[str, PowerSite],
                                                             grid: TimeGrid) -> None:
    a = builtin_forecasts(list(sites.values()), grid, seed=5)
    b = builtin_forecasts(list(sites.values()), grid, seed=5)
    c = builtin_forecasts(list(sites.values()), grid, seed=6)
    for name in sites:
        np.testing.assert_array_equal(a[name].green_total_kw, b[name].green_total_kw)
        np.testing.assert_array_equal(a[name].carbon_g_per_kwh, b[name].carbon_g_per_kwh)
    assert not np.array_equal(a["gansu"].green_kw["wind"], c["gansu"].green_kw["wind"])


def test_overlapping_grids_see_the_same_weather(sites: dict[str, PowerSite]) -> None:
    first = TimeGrid(datetime(2026, 6, 1, tzinfo=UTC))
    later = first.window(40, 192)  # 10 hours later, as a refresh would ask
    a = run_models([sites["inner-mongolia"]], first, seed=2)
    b = run_models([sites["inner-mongolia"]], later, seed=2)
    np.testing.assert_allclose(a.wind_cf[0][40:], b.wind_cf[0][:152], atol=0.02)
    np.testing.assert_allclose(a.pv_cf[0][40:], b.pv_cf[0][:152], atol=0.02)


def test_direct_green_follows_contract_in_local_time(sites: dict[str, PowerSite]) -> None:
    site = sites["yangtze-delta"]
    profile = next(s.hourly_profile for s in site.spec.supply if s.hourly_profile)
    assert profile is not None
    grid = TimeGrid(datetime(2026, 6, 1, 16, tzinfo=UTC), slot=timedelta(hours=1), slots=24)
    fc = builtin_forecasts([site], grid)["yangtze-delta"]
    # 16:00 UTC is 00:00 in Asia/Shanghai: the slots follow the local-hour profile
    np.testing.assert_allclose(fc.green_kw["directGreen"], 10000 * np.array(profile))


def test_carbon_intensity_falls_when_the_sun_shines(sites: dict[str, PowerSite]) -> None:
    grid = TimeGrid(datetime(2026, 5, 1, tzinfo=UTC), slot=timedelta(hours=1), slots=24 * 30)
    run = run_models([sites["ningxia"]], grid, seed=0)
    sunny = run.pv_cf[0] > 0.5
    assert run.carbon[0][sunny].mean() < 0.85 * run.carbon[0][run.pv_cf[0] == 0].mean()


def test_vectorised_models_equal_the_plain_python_reference(sites: dict[str, PowerSite]) -> None:
    """hack/bench_forecast.py's slot-by-slot ``math`` version is the formulas as written in
    the docstrings; the numpy path must agree with it (here over a DST-free day)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "hack" / "bench_forecast.py"
    spec = importlib.util.spec_from_file_location("bench_forecast", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    chosen = [sites["gansu"], sites["guizhou"], sites["yangtze-delta"]]
    grid = TimeGrid(datetime(2026, 3, 20, tzinfo=UTC), slots=96)
    slow = bench.pure_python(chosen, grid)
    fast = builtin_forecasts(chosen, grid)
    for name, fc in fast.items():
        np.testing.assert_allclose(
            np.concatenate([fc.green_supply_kw, fc.carbon_g_per_kwh]), slow[name],
            rtol=1e-9, atol=1e-6)


def test_local_hours_follow_dst() -> None:
    from suandian.forecast.supply import local_hours

    # Europe/Berlin springs forward at 01:00 UTC on 29 March 2026
    grid = TimeGrid(datetime(2026, 3, 28, 22, tzinfo=UTC), slot=timedelta(hours=1), slots=6)
    hours = local_hours(grid.epoch_seconds, ["Europe/Berlin", "Asia/Shanghai"])
    assert hours[0].tolist() == [23, 0, 1, 3, 4, 5]
    assert hours[1].tolist() == [6, 7, 8, 9, 10, 11]

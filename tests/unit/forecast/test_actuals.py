from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from suandian.api.powersite import PowerSite
from suandian.forecast import TimeGrid, forecast_from_actuals, simulate_actuals

WEEK = TimeGrid(datetime(2026, 6, 1, tzinfo=UTC), slots=96 * 7)


@pytest.fixture(scope="module")
def truth(sites: dict[str, PowerSite]) -> dict:
    return simulate_actuals(list(sites.values()), WEEK, seed=11)


def test_actuals_have_collapsed_bands_and_are_deterministic(sites: dict[str, PowerSite],
                                                            truth: dict) -> None:
    a = truth["gansu"]
    np.testing.assert_array_equal(a.green_p10_kw, a.green_total_kw)
    np.testing.assert_array_equal(a.carbon_p90, a.carbon_g_per_kwh)
    again = simulate_actuals(list(sites.values()), WEEK, seed=11)["gansu"]
    np.testing.assert_array_equal(again.green_total_kw, a.green_total_kw)
    alone = simulate_actuals([sites["gansu"]], WEEK, seed=11)["gansu"]  # batch-independent
    np.testing.assert_allclose(alone.green_total_kw, a.green_total_kw, rtol=1e-12)


def test_zero_error_returns_the_truth_window(truth: dict) -> None:
    at = datetime(2026, 6, 2, 5, 7, tzinfo=UTC)
    fc = forecast_from_actuals(truth["gansu"], at, 192, 0.0, np.random.default_rng(0))
    i = WEEK.index_of(at)
    np.testing.assert_array_equal(fc.green_total_kw, truth["gansu"].green_total_kw[i:i + 192])
    assert fc.issued_at == at and fc.grid.slots == 192


def test_error_grows_with_lead_and_bands_cover_the_truth(truth: dict) -> None:
    a = truth["inner-mongolia"]
    rng = np.random.default_rng(4)
    near, far, inside, count = [], [], 0, 0
    for day in range(40):
        at = WEEK.start + timedelta(hours=day * 2)
        fc = forecast_from_actuals(a, at, 192, 0.2, rng)
        i = WEEK.index_of(at)
        real = a.green_total_kw[i:i + 192]
        rel = np.abs(fc.green_total_kw - real) / np.maximum(real, 1.0)
        near.append(rel[:8].mean())
        far.append(rel[150:].mean())
        inside += int(np.sum((fc.green_p10_kw <= real) & (real <= fc.green_p90_kw)))
        count += real.size
        assert np.all(fc.green_p10_kw <= fc.green_total_kw)
        assert not np.any(np.isnan(fc.carbon_g_per_kwh))
    assert np.mean(far) > 2 * np.mean(near)
    assert 0.6 <= inside / count <= 0.97  # nominal 80%


def test_window_is_cut_at_the_end_of_the_truth(truth: dict) -> None:
    at = WEEK.end - timedelta(hours=3)
    fc = forecast_from_actuals(truth["guizhou"], at, 192, 0.1, np.random.default_rng(1))
    assert fc.grid.slots == 12

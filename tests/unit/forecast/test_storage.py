from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suandian.api.powersite import PowerSite
from suandian.forecast import Battery, TimeGrid, builtin_forecasts, run_batteries
from suandian.forecast.storage import battery_loop_reference

BAT = Battery(capacity_kwh=100.0, max_power_kw=40.0, round_trip_efficiency=0.9,
              min_soc=0.1, initial_soc=0.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 200), min_size=1, max_size=60), st.floats(0, 150))
def test_vectorised_battery_equals_the_plain_loop(green: list[float], draw: float) -> None:
    run = run_batteries(np.array([green]), np.array([draw]), [BAT], 0.25)
    np.testing.assert_allclose(run.discharge_kw[0], battery_loop_reference(green, draw, BAT, 0.25),
                               atol=1e-9)
    assert np.all((run.soc >= 0.1 - 1e-9) & (run.soc <= 1.0 + 1e-9))
    assert np.all(run.discharge_kw <= 40 + 1e-9) and np.all(run.charge_kw <= 40 + 1e-9)
    # energy: out <= in x efficiency + what was above the floor at the start
    out = run.discharge_kw.sum() * 0.25
    assert out <= run.charge_kw.sum() * 0.25 * 0.9 + (0.5 - 0.1) * 100 + 1e-6


def test_surplus_is_stored_and_offered_later() -> None:
    green = np.array([[100.0] * 8 + [0.0] * 8])
    run = run_batteries(green, np.array([50.0]), [BAT], 1.0)
    assert run.charge_kw[0, 0] > 0 and run.discharge_kw[0, :8].sum() == 0
    assert run.discharge_kw[0, 8] == pytest.approx(40.0)  # limited by max power
    # full (100 kWh) minus the 10 kWh floor comes back out
    assert run.discharge_kw[0].sum() == pytest.approx(90.0)


def test_sites_without_battery_offer_nothing(sites: dict[str, PowerSite],
                                             grid: TimeGrid) -> None:
    fcs = builtin_forecasts([sites["guizhou"], sites["gansu"]], grid)
    assert fcs["guizhou"].storage_kw.sum() == 0.0
    assert fcs["gansu"].storage_kw.max() <= 10000.0 + 1e-6
    assert fcs["gansu"].storage_kw.sum() > 0.0

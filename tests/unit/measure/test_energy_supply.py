"""A job's energy slot by slot (measured, partial, modelled) and its split over supply."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suandian import metrics
from suandian.measure.energy import job_energy
from suandian.measure.series import Pieces, Series, pieces_of
from suandian.measure.supply import GREEN_SOURCES, LEDGER_SOURCES, account, slot_supply

T0 = 1_781_999_100.0  # a quarter-hour boundary (divisible by 900)


@dataclass(frozen=True)
class Obs:
    at: datetime
    green_share: float
    carbon_g_per_kwh: float
    green_by_source_kw: Mapping[str, float] = field(default_factory=dict)


def flat(watts: float, start: float, end: float, step: float = 30.0) -> Pieces:
    times = np.arange(start, end + step / 2, step)
    return pieces_of(Series(("x",), times, (times - start) * watts), (T0, T0 + 3600), 90)


def test_an_exporter_gone_mid_run_leaves_that_half_to_the_model() -> None:
    kepler = flat(200, T0, T0 + 3600)
    dcgm = flat(1000, T0, T0 + 1800)
    e = job_energy({"kepler": kepler, "dcgm": dcgm}, (T0, T0 + 3600), 3600, 1500, 900)
    assert list(e.edges - T0) == [0, 900, 1800, 2700, 3600]
    assert e.measured_j == pytest.approx([1.08e6, 1.08e6, 0, 0])  # (200 + 1000) W x 900 s
    assert e.modelled_j == pytest.approx([0, 0, 1.35e6, 1.35e6])  # 1500 W x 900 s
    assert e.provenance == "partial" and e.exporters == ("dcgm", "kepler")
    assert e.measured_share == pytest.approx(2.16 / 4.86)
    assert "dcgm covered 50%" in e.why
    assert e.measured_watts == pytest.approx(1200.0)


def test_fully_covered_is_measured_and_no_series_is_modelled() -> None:
    e = job_energy({"kepler": flat(300, T0, T0 + 3600), "dcgm": Pieces.empty()},
                   (T0, T0 + 3600), 3600, 999, 900)
    assert e.provenance == "measured" and e.exporters == ("kepler",)
    assert e.it_kwh == pytest.approx(0.3)
    none = job_energy({"kepler": Pieces.empty()}, (T0, T0 + 3600), 3600, 500, 900)
    assert none.provenance == "modelled" and none.measured_share == 0.0
    assert none.it_kwh == pytest.approx(0.5) and none.measured_watts is None


def test_an_interruptible_run_is_modelled_only_for_its_run_time() -> None:
    # ran 30 min of a 60 min span (suspended between), pods measured for 15 of them
    e = job_energy({"kepler": flat(400, T0, T0 + 900)}, (T0, T0 + 3600), 1800, 800, 900)
    assert e.measured_j.sum() == pytest.approx(400 * 900)
    assert e.modelled_j.sum() == pytest.approx(800 * 900)  # 30 - 15 minutes at the model


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


def test_hand_computed_account_green_first_then_grid_slot_by_slot() -> None:
    e = job_energy({"kepler": flat(2000, T0, T0 + 3600)}, (T0, T0 + 3600), 3600, 0, 900)
    samples = [Obs(at(100), 1.0, 500, {"solar": 300, "wind": 100}),
               Obs(at(1000), 0.5, 600, {"wind": 50}),
               Obs(at(2800), 0.0, 800)]
    supply = slot_supply(e.edges, samples, max_age_s=60, planned_share=0.25,
                         configured_carbon=400, fallback_mix={"hydro": 10})
    assert list(supply.observed) == [True, True, False, True]
    a = account(e, supply, pue=1.5)
    # each slot: 2 kW x 0.25 h x 1.5 = 0.75 kWh facility
    assert a.it_kwh == pytest.approx(2.0) and a.energy_kwh == pytest.approx(3.0)
    assert a.kwh_by_source["solar"] == pytest.approx(0.75 * 0.75)
    assert a.kwh_by_source["wind"] == pytest.approx(0.75 * 0.25 + 0.375)
    assert a.kwh_by_source["hydro"] == pytest.approx(0.75 * 0.25)  # planned, configured mix
    assert a.kwh_by_source["grid"] == pytest.approx(0.375 + 0.5625 + 0.75)
    assert a.emissions_g == pytest.approx(0.375 * 600 + 0.5625 * 400 + 0.75 * 800)
    assert a.green_share == pytest.approx((0.75 + 0.375 + 0.1875) / 3.0)
    assert a.observed_share == 0.75


def test_green_with_no_source_to_name_is_not_claimed() -> None:
    e = job_energy({}, (T0, T0 + 900), 900, 4000, 900)
    supply = slot_supply(e.edges, [], max_age_s=0, planned_share=1.0,
                         configured_carbon=500, fallback_mix={})
    a = account(e, supply, pue=1.0)
    assert a.kwh_by_source["grid"] == pytest.approx(1.0) and a.green_share == 0.0


def test_the_ledger_sources_are_the_metrics_ones() -> None:
    assert LEDGER_SOURCES == metrics.LEDGER_SOURCES
    assert set(GREEN_SOURCES) | {"grid"} == set(metrics.LEDGER_SOURCES)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(0, 5000), min_size=1, max_size=12),
       st.lists(st.tuples(st.floats(0, 1), st.floats(0, 900),
                          st.dictionaries(st.sampled_from(GREEN_SOURCES), st.floats(0, 500),
                                          max_size=3)), max_size=12),
       st.floats(1.0, 2.0))
def test_kwh_by_source_always_sum_to_the_facility_energy(
        watts: list[float], obs: list[tuple[float, float, dict[str, float]]], pue: float
) -> None:
    end = T0 + 900 * len(watts)
    pieces = Pieces(np.array([T0 + 900 * i for i in range(len(watts))], dtype=float),
                    np.array([T0 + 900 * (i + 1) for i in range(len(watts))], dtype=float),
                    np.array(watts), [(T0, end)])
    e = job_energy({"dcgm": pieces}, (T0, end), end - T0, 100, 900)
    samples = [Obs(at(900 * i + 10), share, carbon, mix)
               for i, (share, carbon, mix) in enumerate(obs)]
    a = account(e, slot_supply(e.edges, samples, max_age_s=900, planned_share=0.3,
                               configured_carbon=300, fallback_mix={"solar": 1}), pue)
    assert sum(a.kwh_by_source.values()) == pytest.approx(a.energy_kwh, rel=1e-9, abs=1e-12)
    assert a.energy_kwh == pytest.approx(sum(watts) * 0.25 / 1000 * pue)
    assert 0 <= a.green_share <= 1 and a.emissions_g >= 0

"""What answering costs, job by job (suandian.planner.grid_effects): grams and money,
each moved job counted once across the requests that moved it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from suandian.planner.grid import GridAsk, answer
from suandian.planner.grid_effects import job_cost, tariffs_per_kwh
from unit.planner.synthetic import NOW, SLOT, job, site, snapshot

GRID = np.zeros(24)  # no green at all: every kWh is imported
FLAT = np.full(24, 500.0)


def tou(peak: float = 1.2, valley: float = 0.3, currency: str = "CNY",
        key: str = "tou") -> GridAsk:
    """Peak price for slots 0-11, valley for 12-23."""
    return GridAsk(key=key, site=0, start=NOW, end=NOW + SLOT * 24, currency=currency,
                   tariff=((NOW, NOW + SLOT * 12, peak),
                           (NOW + SLOT * 12, NOW + SLOT * 24, valley)))


def test_a_tariff_that_moves_a_job_to_the_valley_says_what_it_saves_in_money() -> None:
    """100 kW for 2 h, all of it imported: from the peak (1.2) to the valley (0.3) saves
    0.9 per kWh of the job's energy."""
    snap = snapshot([site("a", GRID, FLAT)], [job("etl", kw=100, hours=2, slack=22)])
    result = answer(snap, [tou()])
    (a,) = result.answers
    energy = result.plan.by_key["etl"].energy_kwh
    assert energy == pytest.approx(200.0)
    assert a.currency == "CNY"
    assert a.moved_cost == {"etl": pytest.approx(-0.9 * energy)}
    assert a.moved_g == {"etl": pytest.approx(0.0)}  # flat carbon: no grams either way


def test_a_job_moved_by_two_requests_counts_once_between_them() -> None:
    """A shed over the valley's first hours and the tariff both move the job: each
    carries half, and the halves add up to the job's whole effect."""
    snap = snapshot([site("a", GRID, FLAT)], [job("etl", kw=100, hours=2, slack=22)])
    peak = GridAsk(key="peak", site=0, start=NOW, end=NOW + SLOT * 14, ceiling_kw=0.0,
                   mandatory=True)
    result = answer(snap, [tou(), peak])
    priced, shed = result.answers
    assert shed.shortfall_kw == 0.0 and priced.jobs == shed.jobs == ("etl",)
    whole = (job_cost(result.plan, result.plan.by_key["etl"], tariffs_per_kwh(snap, [tou()]))
             - job_cost(result.baseline, result.baseline.by_key["etl"],
                        tariffs_per_kwh(snap, [tou()])))
    assert whole < 0
    assert priced.moved_cost["etl"] == pytest.approx(whole / 2)
    assert shed.moved_cost["etl"] == pytest.approx(whole / 2)
    assert priced.moved_g["etl"] + shed.moved_g["etl"] == pytest.approx(
        result.plan.by_key["etl"].expected_emissions_g
        - result.baseline.by_key["etl"].expected_emissions_g)


def test_tariffs_in_two_currencies_give_no_bill() -> None:
    snap = snapshot([site("a", GRID, FLAT)], [job("etl", kw=100, hours=2, slack=22)])
    result = answer(snap, [tou(), tou(1.0, 0.5, currency="EUR", key="eu")])
    assert all(a.currency is None and a.moved_cost == {} for a in result.answers)
    assert all(a.moved_g for a in result.answers)  # the grams are still there


def test_a_job_pays_for_the_share_of_its_site_load_that_is_imported() -> None:
    """Green covers half the load: half of each kWh is paid for."""
    snap = snapshot([site("a", np.full(24, 50.0), FLAT)],
                    [job("etl", kw=100, hours=2, slack=0)])
    result = answer(snap, [tou()])
    d = result.plan.by_key["etl"]
    load = result.plan.load_kw[0, d.slots[0]]
    imported = load - result.plan.green_used_kw[0, d.slots[0]]
    assert 0 < imported < load
    assert job_cost(result.plan, d, tariffs_per_kwh(snap, [tou()])) == pytest.approx(
        d.energy_kwh * 1.2 * imported / load)
    assert job_cost(result.plan, replace(d, site_index=None), {0: np.ones(24)}) == 0.0


def test_a_request_whose_jobs_touch_no_tariff_has_no_cost_figures() -> None:
    """A shed at a (no tariff) moves a job that may run only there, while b has a tariff
    in the same round: the shed has grams, and no bill (not 0.00 in b's currency)."""
    snap = snapshot([site("a", GRID, FLAT), site("b", GRID, FLAT)],
                    [job("etl", kw=100, hours=2, slack=4, allowed_sites=(0,))])
    shed = GridAsk(key="peak@a", site=0, start=NOW, end=NOW + SLOT * 8, ceiling_kw=0.0,
                   mandatory=True)
    result = answer(snap, [shed, replace(tou(), key="tou@b", site=1)])
    answered = {a.ask.key: a for a in result.answers}
    assert answered["peak@a"].shortfall_kw == 0.0
    assert set(answered["peak@a"].moved_g) == {"etl"}
    assert answered["peak@a"].moved_cost == {} and answered["peak@a"].currency is None

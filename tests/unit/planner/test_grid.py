"""Grid requests in the plan: a shed is a ceiling on import, a surplus is green supply,
deadlines win, voluntary requests that cannot be met whole are declined."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from suandian.errors import PlanningError
from suandian.planner import PlanParams
from suandian.planner.grid import GridAsk, answer, import_kw
from unit.planner.synthetic import NOW, SLOT, job, site, snapshot

GRID = np.zeros(24)
EVENING = np.full(24, 600.0)
EVENING[18:22] = 200.0  # the cleanest hours are the evening peak's


def at(first: int, last: int) -> dict[str, object]:
    return {"start": NOW + SLOT * first, "end": NOW + SLOT * last}


def shed(key: str = "peak", *, first: int = 18, last: int = 22, **kw: object) -> GridAsk:
    return GridAsk(key=key, site=0, **at(first, last), **kw)  # type: ignore[arg-type]


def test_a_ceiling_moves_deferred_work_out_of_the_window() -> None:
    snap = snapshot([site("a", GRID, EVENING)], [job("etl", kw=100, hours=2, slack=22)])
    result = answer(snap, [shed(ceiling_kw=0.0, mandatory=True)])
    assert result.baseline.by_key["etl"].start_slot in range(18, 21)  # where it would go
    moved = result.plan.by_key["etl"]
    assert not set(moved.slots) & set(range(18, 22))
    (a,) = result.answers
    assert a.accepted and a.shortfall_kw == 0.0 and a.jobs == ("etl",)
    assert a.committed_kw == pytest.approx(a.asked_kw)  # what it would import there, shed
    assert a.asked_kw.max() == pytest.approx(100.0)
    assert import_kw(result.plan)[0, 18:22] == pytest.approx(np.zeros(4))


def test_each_moved_job_carries_what_answering_costs_it_in_carbon() -> None:
    """The shed moves the job out of its cleanest hours (200 g/kWh) to 600 g/kWh: the
    answer carries the difference, 200 kWh × 400 g; a surplus the other way saves."""
    snap = snapshot([site("a", GRID, EVENING)], [job("etl", kw=100, hours=2, slack=22)])
    result = answer(snap, [shed(ceiling_kw=0.0, mandatory=True)])
    (a,) = result.answers
    before, after = (p.by_key["etl"].expected_emissions_g for p in (result.baseline,
                                                                     result.plan))
    assert a.moved_g == {"etl": pytest.approx(after - before)}
    assert a.moved_g["etl"] == pytest.approx(200 * 400.0)
    wind = answer(snapshot([site("a", GRID, np.full(24, 500.0))],
                           [job("etl", kw=100, hours=2, slack=22, start=0)]),
                  [GridAsk(key="wind", site=0, absorb_kw=100.0, **at(3, 6))])
    assert wind.answers[0].moved_g["etl"] < 0


def test_a_decision_the_grid_shapes_says_so_in_its_reason() -> None:
    """Waiting past a shed, paused over one, running in a surplus: each reason ends with
    the event and its window; a job the event does not touch keeps its reason."""
    clean = np.full(24, 600.0)
    clean[17:22] = 200.0
    late = job("late", kw=100, hours=2, slack=4, start=18)  # 18:00 to 24:00
    pausing = job("pausing", kw=50, hours=3, slack=3, start=17, interruptible=True)
    snap = snapshot([site("a", GRID, clean)], [late, pausing])
    result = answer(snap, [shed(ceiling_kw=0.0, first=18, last=20, mandatory=True)])
    assert result.plan.by_key["pausing"].slots == (17, 20, 21)
    window = f"peak ({NOW + SLOT * 18:%m-%d %H:%M}–{NOW + SLOT * 20:%H:%M} UTC)"
    assert result.plan.by_key["late"].reason.endswith(f"; waits past grid shed {window}")
    assert result.plan.by_key["pausing"].reason.endswith(f"; paused for grid shed {window}")
    assert "grid shed" not in result.baseline.by_key["late"].reason
    free = job("free", kw=100, hours=2, slack=22)
    wind = answer(snapshot([site("a", GRID, np.full(24, 500.0))], [free]),
                  [GridAsk(key="wind", site=0, absorb_kw=100.0, **at(3, 6))])
    assert "; runs in grid surplus wind (" in wind.plan.by_key["free"].reason
    cheap = job("cheap", kw=100, hours=2, slack=22)  # flat carbon: the tariff alone
    tou = GridAsk(key="tou@a", site=0, start=NOW, end=NOW + SLOT * 24, currency="CNY",
                  tariff=((NOW, NOW + SLOT * 12, 1.2), (NOW + SLOT * 12, NOW + SLOT * 24, 0.3)))
    priced = answer(snapshot([site("a", GRID, np.full(24, 500.0))], [cheap]), [tou])
    assert priced.plan.by_key["cheap"].slots[0] >= 12
    assert priced.plan.by_key["cheap"].reason.endswith(
        "; runs at 0.30 CNY/kWh under grid tariff tou, 1.20 from its earliest start")
    assert "tariff" not in priced.baseline.by_key["cheap"].reason
    due = job("urgent", kw=80, hours=2, slack=0, start=0)
    waiting = job("waiting", kw=10, hours=2, slack=20)  # to the clean hours, past 04:00
    declined = answer(snapshot([site("a", GRID, clean)], [due, waiting]),
                      [shed(first=0, last=4, ceiling_kw=50.0)])
    assert not declined.answers[0].accepted
    assert all("grid shed" not in d.reason for d in declined.plan.decisions)


def test_a_job_due_now_still_starts_and_the_shortfall_names_it() -> None:
    due = job("urgent", kw=80, hours=2, slack=0, start=0)
    snap = snapshot([site("a", GRID, EVENING)], [due, job("etl", kw=100, hours=2, slack=22)])
    result = answer(snap, [shed(first=0, last=4, ceiling_kw=50.0, mandatory=True)])
    assert result.plan.by_key["urgent"].start_now  # the deadline wins
    (a,) = result.answers
    assert a.accepted  # mandatory: kept, short
    assert a.shortfall_kw == pytest.approx(30.0)  # 80 kW over a ceiling of 50
    assert a.jobs == ("urgent",)
    assert "short by 30 kW" in a.reason


def test_a_voluntary_shed_that_cannot_be_met_whole_is_declined() -> None:
    due = job("urgent", kw=80, hours=2, slack=0, start=0)
    snap = snapshot([site("a", GRID, EVENING)], [due])
    result = answer(snap, [shed(first=0, last=4, ceiling_kw=50.0)])
    (a,) = result.answers
    assert not a.accepted and a.moved_g == {}  # declined: it moved nothing
    assert a.reason.startswith("declined: the plan can shed only")
    assert result.plan is result.baseline  # planned without it


def test_a_running_job_is_not_stopped_for_a_shed() -> None:
    running = job("train", kw=120, hours=6, slack=0, running_site=0)
    snap = snapshot([site("a", GRID, EVENING)], [running])
    result = answer(snap, [shed(first=1, last=3, ceiling_kw=0.0, mandatory=True)])
    (a,) = result.answers
    assert a.shortfall_kw == pytest.approx(120.0) and a.jobs == ("train",)
    assert import_kw(result.plan)[0, 1:3] == pytest.approx([120.0, 120.0])


def test_a_reduction_is_measured_against_the_plan_without_it() -> None:
    jobs = [job(k, kw=100, hours=2, slack=22) for k in ("a1", "a2")]
    snap = snapshot([site("a", GRID, EVENING, cpu=2.0)], jobs)
    result = answer(snap, [shed(reduction_kw=100.0, mandatory=True)])
    (a,) = result.answers
    base = import_kw(result.baseline)[0, 18:22]
    assert base.max() == pytest.approx(200.0)  # both in the evening without the request
    assert a.asked_kw == pytest.approx(np.minimum(base, 100.0))  # nothing under zero
    assert a.shortfall_kw == 0.0
    assert (import_kw(result.plan)[0, 18:22] <= np.maximum(base - 100.0, 0) + 1e-9).all()
    assert len(a.jobs) == 1  # one of the two left the window


def test_a_share_reduction_cuts_the_import_to_that_share_of_the_baseline() -> None:
    jobs = [job(k, kw=100, hours=2, slack=22) for k in ("a1", "a2", "a3", "a4")]
    snap = snapshot([site("a", GRID, EVENING, cpu=4.0)], jobs)
    result = answer(snap, [shed(reduction_share=0.75, mandatory=True)])
    (a,) = result.answers
    base = import_kw(result.baseline)[0, 18:22]
    assert base.max() == pytest.approx(400.0)
    assert a.asked_kw == pytest.approx(0.75 * base)
    assert a.shortfall_kw == 0.0
    assert (import_kw(result.plan)[0, 18:22] <= 0.25 * base + 1e-9).all()
    assert len(a.jobs) == 3  # a quarter of the evening's work stays


@pytest.mark.parametrize("share", [0.0, 1.5, float("nan")])
def test_a_share_reduction_is_within_zero_and_one(share: float) -> None:
    with pytest.raises(PlanningError, match="reduction share"):
        shed(reduction_share=share)


def test_a_frozen_baseline_is_the_one_a_reduction_keeps() -> None:
    snap = snapshot([site("a", GRID, EVENING)], [job("etl", kw=100, hours=2, slack=22)])
    frozen = (150.0, 150.0, 150.0, 150.0)  # what it imported when first accepted
    (a,) = answer(snap, [shed(reduction_kw=100.0, baseline_kw=frozen)]).answers
    assert a.baseline_kw == pytest.approx(np.array(frozen))
    assert a.asked_kw == pytest.approx(np.full(4, 100.0))


def test_a_surplus_pulls_deferred_work_into_its_window() -> None:
    flat = np.full(24, 500.0)
    snap = snapshot([site("a", GRID, flat)], [job("etl", kw=100, hours=2, slack=22)])
    result = answer(snap, [GridAsk(key="wind", site=0, absorb_kw=100.0, **at(3, 6))])
    d = result.plan.by_key["etl"]
    assert set(d.slots) <= {3, 4, 5} and d.expected_emissions_g == pytest.approx(0.0)
    (a,) = result.answers
    assert a.accepted and a.shortfall_kw == 0.0
    assert a.committed_kw.max() == pytest.approx(100.0)
    assert "absorbs up to 100 kW" in a.reason


def test_the_lower_priority_voluntary_request_goes_first() -> None:
    due = job("urgent", kw=80, hours=2, slack=0, start=0)
    snap = snapshot([site("a", GRID, EVENING)], [due])
    low = shed("low", first=0, last=2, ceiling_kw=50.0, priority=1)
    high = shed("high", first=0, last=2, ceiling_kw=60.0, priority=9)
    result = answer(snap, [low, high])
    assert [x.ask.key for x in result.answers] == ["low", "high"]  # in the order given
    assert [x.accepted for x in result.answers] == [False, False]  # neither can hold
    assert result.answers[0].reason.startswith("declined")


def test_a_request_beyond_the_horizon_waits() -> None:
    snap = snapshot([site("a", GRID, EVENING)], [job("etl", kw=100, hours=2, slack=22)])
    late = GridAsk(key="tomorrow", site=0, ceiling_kw=0.0, start=NOW + timedelta(days=2),
                   end=NOW + timedelta(days=2, hours=3))
    result = answer(snap, [late])
    assert result.plan is result.baseline
    assert "outside the plan's horizon" in result.answers[0].reason


def test_the_plan_answers_the_same_twice() -> None:
    snap = snapshot([site("a", GRID, EVENING)], [job(k, kw=60, hours=2, slack=22)
                                                 for k in ("x", "y", "z")])
    asks = [shed(ceiling_kw=60.0, mandatory=True)]
    one, two = answer(snap, asks, PlanParams()), answer(snap, asks, PlanParams())
    assert [d.slots for d in one.plan.decisions] == [d.slots for d in two.plan.decisions]


@pytest.mark.parametrize("bad", [{}, {"ceiling_kw": 1.0, "absorb_kw": 1.0},
                                 {"ceiling_kw": -1.0}, {"reduction_kw": float("nan")}])
def test_an_ask_is_one_power(bad: dict[str, float]) -> None:
    with pytest.raises(PlanningError):
        GridAsk(key="x", site=0, **at(0, 1), **bad)  # type: ignore[arg-type]


def test_an_ask_at_no_site_of_the_snapshot_is_refused() -> None:
    snap = snapshot([site("a", GRID, EVENING)], [])
    with pytest.raises(PlanningError, match="site index 3"):
        answer(snap, [GridAsk(key="x", site=3, ceiling_kw=0.0, **at(0, 1))])


FLAT = np.full(24, 500.0)


def tariff(peak: float, valley: float) -> GridAsk:
    """Peak price for slots 0-11, valley for 12-23."""
    return GridAsk(key="tou", site=0, **at(0, 24),  # type: ignore[arg-type]
                   tariff=((NOW, NOW + SLOT * 12, peak), (NOW + SLOT * 12, NOW + SLOT * 24,
                                                          valley)))


def test_a_tariff_moves_work_to_the_valley_and_the_grams_stay_carbons() -> None:
    """Carbon is flat: only the price tells the hours apart. The reported emissions are
    the carbon's alone (the tariff is a cost of choice, never counted as grams)."""
    snap = snapshot([site("a", GRID, FLAT)], [job("etl", kw=100, hours=2, slack=22)])
    result = answer(snap, [tariff(1.2, 0.3)])
    assert result.baseline.by_key["etl"].start_slot == 0  # no reason to wait
    priced = result.plan.by_key["etl"]
    assert priced.start_slot >= 12
    assert priced.expected_emissions_g == pytest.approx(
        result.baseline.by_key["etl"].expected_emissions_g)  # 100 kW x 2 h x 500 g
    (a,) = result.answers
    assert a.accepted and a.jobs == ("etl",) and a.reason.startswith("priced in: 1 job")


def test_a_tariff_weighs_against_carbon_by_its_weight() -> None:
    """A valley 0.1 cheaper but 50 g/kWh dirtier: at 10,000 g per unit the price wins
    (1,000 g > 50 g), at 100 g per unit carbon does (10 g < 50 g)."""
    carbon = np.full(24, 500.0)
    carbon[12:] = 550.0
    snap = snapshot([site("a", GRID, carbon)], [job("etl", kw=100, hours=2, slack=22)])
    heavy = answer(snap, [tariff(0.4, 0.3)])
    light = answer(snap, [tariff(0.4, 0.3)], PlanParams(tariff_weight_g_per_unit=100.0))
    assert heavy.plan.by_key["etl"].start_slot >= 12
    assert light.plan.by_key["etl"].start_slot < 12


def test_a_tariff_needs_finite_prices() -> None:
    with pytest.raises(PlanningError, match="finite"):
        GridAsk(key="x", site=0, **at(0, 2), tariff=((NOW, NOW + SLOT, float("nan")),))  # type: ignore[arg-type]

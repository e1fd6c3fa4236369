"""The planner's behaviours, each on a snapshot small enough to reason about by hand."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pytest

from suandian.errors import PlanningError
from suandian.planner import NodeInfo, PlanParams, plan
from unit.planner.synthetic import NOW, SLOT, job, site, snapshot, sun

GRID = np.zeros(24)


def test_waits_for_sun_and_explains_why() -> None:
    snap = snapshot([site("a", sun(), 600.0)], [job("j", kw=50, hours=2, slack=20)])
    d = plan(snap).by_key["j"]
    assert d.site == "a"
    assert d.start_slot == 6  # first sunny hour: delay penalty prefers the earliest window
    assert d.expected_green_fraction == pytest.approx(1.0)
    assert d.expected_emissions_g == pytest.approx(0.0)
    assert d.run_now_emissions_g == pytest.approx(50 * 2 * 600.0)
    assert d.reason.startswith("waiting 6h for sun in a: 100% green vs 0% now, saves 60 kgCO2")
    assert not d.start_now
    assert d.planned_start == NOW + 6 * SLOT


def test_shared_supply_is_not_offered_twice() -> None:
    # 100 kW of sun from 06:00 to 08:00 only; two 100 kW jobs cannot both have it.
    green = sun(peak=100.0, start=6, end=8)
    snap = snapshot([site("a", green, 500.0)], [job("x", kw=100, hours=2, slack=20),
                                                job("y", kw=100, hours=2, slack=20)])
    result = plan(snap)
    fractions = sorted(d.expected_green_fraction for d in result.decisions)
    assert fractions == pytest.approx([0.0, 1.0])
    assert np.all(result.green_used_kw <= green[None, :] + 1e-9)


def test_second_job_goes_to_the_other_site_when_the_first_takes_the_sun() -> None:
    snap = snapshot(
        [site("east", sun(peak=100.0), 700.0), site("west", sun(peak=100.0), 700.0)],
        [job("x", kw=100, hours=2, slack=20), job("y", kw=100, hours=2, slack=20)])
    result = plan(snap)
    x, y = result.by_key["x"], result.by_key["y"]
    # both fully green: they share sun in time or across sites, never the same kW twice
    assert x.expected_green_fraction == pytest.approx(1.0)
    assert y.expected_green_fraction == pytest.approx(1.0)
    assert (x.site, x.start_slot) != (y.site, y.start_slot)


def test_deadline_guarantee_starts_now_whatever_the_forecast() -> None:
    # latest start is now: the job starts now although the sun comes in 6 h
    snap = snapshot([site("a", sun(), 600.0)], [job("j", hours=2, slack=0)])
    d = plan(snap).by_key["j"]
    assert d.start_now and d.forced
    assert d.latest_start <= NOW
    assert "latest start reached" in d.reason


def test_safety_margin_moves_the_latest_start() -> None:
    snap = snapshot([site("a", sun(start=3, end=5), 600.0)], [job("j", hours=2, slack=3)])
    d = plan(snap, PlanParams(safety_margin=timedelta(hours=3))).by_key["j"]
    assert d.start_now and d.forced
    d = plan(snap, PlanParams(safety_margin=timedelta(0))).by_key["j"]
    assert d.start_slot == 3 and not d.forced  # the sun comes just in time
    d = plan(snap, PlanParams(safety_margin=timedelta(hours=1))).by_key["j"]
    assert d.start_slot == 2 and d.expected_green_fraction == pytest.approx(0.5)


def test_run_now_policy_does_not_shift_and_place_only_moves_in_space_only() -> None:
    sites = [site("home", GRID, 700.0), site("green", sun(), 100.0)]
    snap = snapshot(sites, [job("r", policy="RunNow"), job("p", policy="PlaceOnly")])
    result = plan(snap)
    r, p = result.by_key["r"], result.by_key["p"]
    assert (r.site, r.start_slot) == ("home", 0)
    assert "policy RunNow" in r.reason
    assert (p.site, p.start_slot) == ("green", 0)  # no sun yet: grid at 100 beats 700
    assert "policy PlaceOnly" in p.reason


def test_place_only_names_its_policy_even_at_its_latest_start() -> None:
    snap = snapshot([site("a", sun(), 600.0)], [job("p", slack=0, policy="PlaceOnly")])
    d = plan(snap).by_key["p"]
    assert d.start_now and d.forced
    assert d.reason.startswith("policy PlaceOnly")


def test_min_green_fraction_waits_to_latest_start_when_unreachable() -> None:
    green = sun(peak=50.0)  # half of the job's power at best
    snap = snapshot([site("a", green, 600.0)],
                    [job("j", kw=100, hours=2, slack=10, min_green_fraction=0.8)])
    d = plan(snap, PlanParams(safety_margin=timedelta(0))).by_key["j"]
    assert d.start_slot == 10  # its latest start
    assert "waiting for 80% green" in d.reason


def test_min_green_fraction_is_met_when_possible() -> None:
    green = sun(peak=100.0, start=8, end=12)
    snap = snapshot([site("a", green, 600.0)],
                    [job("j", kw=100, hours=2, slack=20, min_green_fraction=0.9)])
    d = plan(snap).by_key["j"]
    assert d.expected_green_fraction >= 0.9


def test_interruptible_job_takes_the_cheapest_slots() -> None:
    green = np.zeros(24)
    green[[3, 7, 11]] = 100.0
    snap = snapshot([site("a", green, 600.0)],
                    [job("j", kw=100, hours=3, slack=15, interruptible=True)])
    d = plan(snap).by_key["j"]
    assert d.slots == (3, 7, 11)
    assert len(d.windows) == 3
    assert d.windows[0] == (NOW + 3 * SLOT, NOW + 4 * SLOT)
    assert d.expected_green_fraction == pytest.approx(1.0)
    assert "in 3 windows" in d.reason


def test_capacity_is_respected_and_a_full_site_is_skipped() -> None:
    full = site("full", sun(), 100.0, cpu=0.5)
    snap = snapshot([full, site("other", GRID, 500.0)], [job("j", cpu=1.0)])
    d = plan(snap).by_key["j"]
    assert d.site == "other"


def test_import_limit_is_respected() -> None:
    snap = snapshot([site("weak", GRID, 100.0, import_kw=50.0),
                     site("strong", GRID, 900.0)], [job("j", kw=100)])
    assert plan(snap).by_key["j"].site == "strong"


def test_no_allowed_site_leaves_the_job_undecided() -> None:
    snap = snapshot([site("a", sun(), 600.0)], [job("j", allowed_sites=())])
    d = plan(snap).by_key["j"]
    assert d.site is None and d.slots == ()
    assert "no site matches" in d.reason


def test_running_jobs_take_their_green_first() -> None:
    green = np.full(24, 100.0)
    running = job("run", kw=100, hours=24, running_site=0)
    snap = snapshot([site("a", green, 600.0)], [running, job("new", kw=100, hours=2)])
    result = plan(snap)
    assert "run" not in result.by_key
    assert result.by_key["new"].expected_green_fraction == pytest.approx(0.0)


def test_risk_aversion_prefers_the_window_whose_p10_holds() -> None:
    # same P50 at 06:00 and 12:00; the 06:00 P10 collapses
    g = np.zeros(24)
    g[[6, 12]] = 100.0
    p10 = g.copy()
    p10[6] = 0.0
    snap = snapshot([site("a", g, 600.0, p10=p10)], [job("j", kw=100, hours=1, slack=20)])
    assert plan(snap, PlanParams(risk_aversion=0.5)).by_key["j"].start_slot == 12
    assert plan(snap, PlanParams(risk_aversion=0.0)).by_key["j"].start_slot == 6


def test_pue_scales_energy_and_emissions() -> None:
    snap = snapshot([site("a", GRID, 500.0, pue=1.5)], [job("j", kw=100, hours=2, slack=0)])
    d = plan(snap).by_key["j"]
    assert d.energy_kwh == pytest.approx(300.0)
    assert d.expected_emissions_g == pytest.approx(300.0 * 500.0)


def test_node_preferences_rank_fit_and_gpu_efficiency() -> None:
    nodes = (
        NodeInfo("t4", 0, np.array([64.0, 256.0, 8.0]), {"nvidia.com/gpu.product": "Tesla-T4"}),
        NodeInfo("h100", 0, np.array([64.0, 256.0, 8.0]),
                 {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}),
        NodeInfo("tiny", 0, np.array([4.0, 16.0, 0.0])),
    )
    j = job("j", cpu=8.0)
    j = dataclasses.replace(j, resources=np.array([8.0, 32.0, 4.0]))
    snap = snapshot([site("a", sun(), 600.0)], [j], nodes)
    prefs = plan(snap).by_key["j"].node_preferences
    assert [n for n, _ in prefs] == ["h100", "t4"]  # tiny does not fit
    assert prefs[0][1] == 100 and 1 <= prefs[1][1] < 100


def test_nothing_to_plan_is_an_empty_plan_even_with_nodes() -> None:
    nodes = (NodeInfo("n", 0, np.array([64.0, 256.0, 0.0])),)
    result = plan(snapshot([site("a", sun(), 600.0)], [], nodes))
    assert result.decisions == () and not result.load_kw.any()


def test_same_snapshot_same_plan() -> None:
    sites = [site("a", sun(), 600.0), site("b", sun(start=9, end=15), 300.0)]
    jobs = [job(f"j{i}", kw=30 + i, hours=1 + i % 3, slack=5 + i, interruptible=i % 2 == 0)
            for i in range(12)]
    one, two = plan(snapshot(sites, jobs)), plan(snapshot(sites, jobs))
    assert [d.to_dict() for d in one.decisions] == [d.to_dict() for d in two.decisions]


def test_inconsistent_snapshots_are_refused() -> None:
    with pytest.raises(PlanningError, match="shape"):
        snapshot([site("a", sun(), 600.0), site("b", sun(slots=12), 600.0)], [])
    with pytest.raises(PlanningError, match="policy"):
        snapshot([site("a", sun(), 600.0)], [job("j", policy="Sometimes")])
    with pytest.raises(PlanningError, match="out of range"):
        snapshot([site("a", sun(), 600.0)], [job("j", allowed_sites=(3,))])
    with pytest.raises(PlanningError, match="risk_aversion"):
        PlanParams(risk_aversion=2.0)


def test_a_job_that_cannot_start_yet_says_when_it_will() -> None:
    snap = snapshot([site("a", np.full(24, 100.0), 600.0)], [job("j", kw=50, start=3)])
    d = plan(snap).by_key["j"]
    assert d.start_slot == 3 and not d.start_now
    assert d.reason.startswith("starting at its earliest start 06-01 03:00 UTC in a: 100% green")


@pytest.mark.parametrize("blocked", [1, 3, 6, 20])
def test_a_full_cheapest_window_gives_way_to_the_cheapest_that_fits(blocked: int) -> None:
    """The cheapest windows are checked lazily (a few one by one, then all masked): the
    choice must still be the cheapest window that fits, whichever way it was found."""
    rng = np.random.default_rng(blocked)
    green = rng.uniform(0.0, 120.0, 30)
    carbon = rng.uniform(200.0, 800.0, 30)
    base = site("a", green, carbon, cpu=1.0)
    order = np.argsort(-green[:29] - green[1:])  # 2-slot windows, greenest first
    cap = base.capacity.copy()
    for k in order[:blocked]:  # the greenest windows have no CPU left in their first slot
        cap[0, k] = 0.0
    snap = snapshot([dataclasses.replace(base, capacity=cap)],
                    [job("j", kw=100.0, hours=2, slack=28, cpu=1.0)])
    params = PlanParams(safety_margin=timedelta(0), risk_aversion=0.0,
                        delay_penalty_g_per_kwh_h=0.0, delay_penalty_share_h=0.0)
    d = plan(snap, params).by_key["j"]
    costs = [float(((100.0 - np.minimum(100.0, green[k:k + 2])) * carbon[k:k + 2]).sum())
             if cap[0, k] >= 1.0 and cap[0, k + 1] >= 1.0 else np.inf for k in range(29)]
    assert d.start_slot == int(np.argmin(costs))
    assert d.expected_emissions_g == pytest.approx(min(costs))


def test_one_rounding_rule_for_slots_and_one_mean_power() -> None:
    """``n = ceil(d/Δ)`` (at least 1; float error under a nanosecond a slot is not a
    slot) and ``P·d/(n·Δ)``: the energy ``P·d`` is kept whatever the rounding."""
    from suandian.planner.terms import mean_kw, slots_for

    q = timedelta(minutes=15)
    assert [slots_for(d, q) for d in (timedelta(0), timedelta(seconds=1), q, q * 2,
                                      q + timedelta(seconds=1), timedelta(minutes=20))] == [
        1, 1, 1, 2, 2, 2]
    assert slots_for(q * 3 + timedelta(microseconds=0.5), q) == 3  # float noise
    for minutes in (1, 14, 15, 20, 95, 600):
        d = timedelta(minutes=minutes)
        n = slots_for(d, q)
        kw = mean_kw(2000.0, d, n, q)
        assert kw * n * 0.25 == pytest.approx(2.0 * minutes / 60.0)  # kWh = P·d
        assert kw <= 2.0 + 1e-12


def test_on_a_grid_only_site_the_reason_names_the_grid_not_green_power() -> None:
    """No green supply anywhere: a job waits for a cleaner grid (the intensity falls
    after six hours here), and says so rather than 'for green power, 0% green'."""
    carbon = np.where(np.arange(24) < 6, 800.0, 200.0)
    snap = snapshot([site("a", GRID, carbon)], [job("j", kw=50, hours=2, slack=20)])
    d = plan(snap).by_key["j"]
    assert d.start_slot == 6
    assert d.reason.startswith("waiting 6h for a cleaner grid in a: no green supply, saves "
                               "60 kgCO2"), d.reason

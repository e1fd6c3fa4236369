"""Exchange moves: a job into a cheaper place that is full, the jobs in its way elsewhere,
kept only when the plan's cost falls (by more than the thresholds of held decisions)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pytest

from suandian.planner import Incumbent, PlanParams, plan
from suandian.planner.exchange import plan_cost
from suandian.planner.ledger import Ledger
from unit.planner.synthetic import NOW, SLOT, job, site, snapshot

PARAMS = PlanParams(safety_margin=timedelta(0), risk_aversion=0.0,
                    delay_penalty_share_h=0.0, delay_penalty_g_per_kwh_h=0.0)
"""Emissions only: every figure below is grams of grid power, worked out by hand."""

# one job at a time; the clean hours are at the end, and slot 0 is nearly as clean
CARBON = [102.0, 300.0, 300.0, 105.0, 103.0, 100.0, 900.0, 900.0]


def night(short_slack: float = 5.0) -> list:
    """A short job of 200 kW (free over slots 0-5) and a long one of 150 kW over 3 h
    (free over slots 1-5), on one site with room for one of them at a time."""
    return [site("grid", np.zeros(len(CARBON)), CARBON, cpu=1.0)], [
        job("short", kw=200, hours=1, slack=short_slack, start=0),
        job("long", kw=150, hours=3, slack=2, start=1)]


def schedule(params: PlanParams, slack: float = 5.0,
             incumbents: dict[str, Incumbent] | None = None) -> dict[str, tuple[int, ...]]:
    sites, jobs = night(slack)
    if incumbents:
        jobs = [dataclasses.replace(j, incumbent=incumbents.get(j.key)) for j in jobs]
    result = plan(snapshot(sites, jobs), params)
    return {d.key: d.slots for d in result.decisions}


def test_the_long_job_gets_the_clean_window_the_short_one_held() -> None:
    # largest first: short takes slot 5 (200 x 100 = 20,000 g), long the best window
    # left, 2-4 (150 x 508 = 76,200 g): 96,200 g, and no single job can do better.
    # The exchange puts long at 3-5 (150 x 308 = 46,200 g) and short, taken out of its
    # way, at slot 0 (200 x 102 = 20,400 g): 66,600 g
    assert schedule(PARAMS) == {"short": (0,), "long": (3, 4, 5)}
    assert schedule(dataclasses.replace(PARAMS, exchange_work=0)) == {
        "short": (5,), "long": (2, 3, 4)}


def test_no_exchange_leaves_the_job_taken_out_without_room() -> None:
    # short may only run in slot 5: taken out for long, it would find no room again,
    # so the plan stays as the greedy pass made it
    sites = [site("grid", np.zeros(len(CARBON)), CARBON, cpu=1.0)]
    jobs = [job("short", kw=200, hours=1, slack=0, start=5),
            job("long", kw=150, hours=3, slack=2, start=1)]
    result = plan(snapshot(sites, jobs), PARAMS)
    assert {d.key: d.slots for d in result.decisions} == {"short": (5,), "long": (2, 3, 4)}
    assert not any(d.oversubscribed for d in result.decisions)


@pytest.mark.parametrize(("threshold", "moved"),
                         [(0.0, True), (14_000.0, True), (15_000.0, False)])
def test_held_decisions_move_only_when_the_trade_saves_more_than_their_thresholds(
        threshold: float, moved: bool) -> None:
    # the trade saves 29,600 g; both jobs hold the greedy plan's places, so it must
    # save more than their two thresholds together: 2 x 14,000 g yes, 2 x 15,000 g no
    held = {"short": Incumbent(0, ((NOW + SLOT * 5, NOW + SLOT * 6),)),
            "long": Incumbent(0, ((NOW + SLOT * 2, NOW + SLOT * 5),))}
    params = dataclasses.replace(PARAMS, move_threshold_g=threshold, move_threshold_share=0.0)
    got = schedule(params, incumbents=held)
    assert got == ({"short": (0,), "long": (3, 4, 5)} if moved
                   else {"short": (5,), "long": (2, 3, 4)})


def test_plan_cost_is_the_grid_share_of_the_load_priced_at_each_slot() -> None:
    sites, _ = night()
    ledger = Ledger.from_snapshot(snapshot(sites, []), pad=1)
    ledger.commit(0, np.array([3, 4, 5]), 150.0, None)
    ledger.commit(0, np.array([0]), 200.0, None)
    assert plan_cost(ledger, 0.0) == pytest.approx(150 * 308 + 200 * 102)


def test_a_place_saving_the_job_less_than_the_gram_threshold_is_not_tried() -> None:
    # long would save 30,000 g of its own at 3-5: under a 31,000 g bar the trade is not
    # worth the work, even with nothing held
    params = dataclasses.replace(PARAMS, move_threshold_g=31_000.0, move_threshold_share=0.0)
    assert schedule(params) == {"short": (5,), "long": (2, 3, 4)}
    params = dataclasses.replace(params, move_threshold_g=29_000.0)
    assert schedule(params) == {"short": (0,), "long": (3, 4, 5)}

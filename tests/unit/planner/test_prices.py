"""The priced construction: the round's limits turned into prices, each job at its
cheapest place at those prices, fixed where nothing clashes; a second start that the
plan keeps only when it is cheaper and leaves the room the greedy plan left."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suandian.planner import Incumbent, PlanParams, plan
from suandian.planner import prices as priced
from suandian.planner.core import _later
from suandian.planner.ledger import Ledger
from suandian.planner.terms import all_terms
from unit.planner.synthetic import NOW, SLOT, job, site, snapshot

PARAMS = PlanParams(safety_margin=timedelta(0), risk_aversion=0.0,
                    delay_penalty_share_h=0.0, delay_penalty_g_per_kwh_h=0.0,
                    exchange_work=0, price_iterations=1200)
"""Emissions only, no exchange moves: what is found here is the prices' doing."""

CARBON = [102.0, 300.0, 300.0, 105.0, 103.0, 100.0, 900.0, 900.0]


def night() -> tuple[list, list]:
    """A short job of 200 kW (free over slots 0-5) and a long one of 150 kW over 3 h
    (free over slots 1-5), on one site with room for one of them at a time."""
    return [site("grid", np.zeros(len(CARBON)), CARBON, cpu=1.0)], [
        job("short", kw=200, hours=1, slack=5, start=0),
        job("long", kw=150, hours=3, slack=2, start=1)]


def slots_of(params: PlanParams, jobs: list | None = None) -> dict[str, tuple[int, ...]]:
    sites, default = night()
    result = plan(snapshot(sites, default if jobs is None else jobs), params)
    return {d.key: d.slots for d in result.decisions}


def test_the_prices_give_the_clean_window_to_the_long_job() -> None:
    # largest first: short takes slot 5 (20,000 g), long 2-4 (76,200 g): 96,200 g, and
    # no single move does better. At the prices, slots 3-5 cost long less than short
    # can pay for slot 5 alone: long 3-5 (46,200 g), short slot 0 (20,400 g): 66,600 g
    assert slots_of(PARAMS) == {"short": (0,), "long": (3, 4, 5)}
    assert slots_of(dataclasses.replace(PARAMS, price_iterations=0)) == {
        "short": (5,), "long": (2, 3, 4)}


def test_held_decisions_are_not_priced() -> None:
    # both hold the greedy plan's places: the prices place only the jobs holding
    # nothing, so with nothing else changed the plan stays, even with no threshold (the
    # exchange moves, off here, are what trades held places for a cheaper plan)
    _, jobs = night()
    held = {"short": Incumbent(0, ((NOW + SLOT * 5, NOW + SLOT * 6),)),
            "long": Incumbent(0, ((NOW + SLOT * 2, NOW + SLOT * 5),))}
    jobs = [dataclasses.replace(j, incumbent=held[j.key]) for j in jobs]
    free = dataclasses.replace(PARAMS, move_threshold_g=0.0, move_threshold_share=0.0)
    assert slots_of(free, jobs) == {"short": (5,), "long": (2, 3, 4)}
    # one of them new: the prices place it around the held one
    assert slots_of(free, [jobs[0], night()[1][1]]) == {"short": (5,), "long": (2, 3, 4)}


def test_same_round_same_prices() -> None:
    sites, jobs = night()
    snap = snapshot(sites, jobs)
    first, second = plan(snap, PARAMS), plan(snap, PARAMS)
    assert [(d.key, d.site_index, d.slots) for d in first.decisions] == [
        (d.key, d.site_index, d.slots) for d in second.decisions]


def _with_long_expected(complete: bool) -> dict[str, tuple[int, ...]]:
    """The night's short job submitted, the long one forecast (:attr:`Snapshot.expected`)."""
    sites, (short, long) = night()
    snap = dataclasses.replace(snapshot(sites, [short]), expected=(long,),
                               arrivals_complete=complete)
    return {d.key: d.slots for d in plan(snap, PARAMS).decisions}


def test_the_priced_plan_counts_what_the_expected_arrivals_emit() -> None:
    # the greedy plan gives the short job slot 5 (20,000 g) and leaves the forecast long
    # one 2-4 (76,200 g); the prices give long 3-5 (46,200 g) and short slot 0 (20,400
    # g): dearer for the job that exists, 29,600 g less for the night. Counted without
    # the forecast's grams, the greedy plan would win
    assert _with_long_expected(complete=True) == {"short": (0,)}


def test_no_prices_while_the_arrival_forecast_is_not_whole() -> None:
    # a log younger than a day: work may come that nothing forecasts, so the plan keeps
    # the greedy start, which runs more of the work early
    assert _with_long_expected(complete=False) == {"short": (5,)}


def _ledger_and_terms(carbon: list[float], cpu: float, jobs: list) -> tuple[Ledger, list]:
    snap = snapshot([site("grid", np.zeros(len(carbon)), carbon, cpu=cpu)], jobs)
    terms = all_terms(snap, PARAMS)
    return Ledger.from_snapshot(snap, max(t.n for t in terms)), terms


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_priced_places_are_within_every_window_and_limit(data: st.DataObject) -> None:
    slots = data.draw(st.integers(6, 16))
    carbon = data.draw(st.lists(st.floats(50, 900), min_size=slots, max_size=slots))
    room = data.draw(st.integers(1, 3))
    jobs = []
    for i in range(data.draw(st.integers(1, 8))):
        hours = data.draw(st.integers(1, 3))
        start = data.draw(st.integers(0, slots - hours))
        slack = data.draw(st.integers(0, slots - hours - start))
        jobs.append(job(f"j{i}", kw=data.draw(st.floats(10, 500)), hours=hours,
                        slack=slack, start=start, interruptible=data.draw(st.booleans())))
    ledger, terms = _ledger_and_terms(carbon, float(room), jobs)
    placed = priced.priced_start(ledger, PARAMS, terms, np.arange(1), 1e9)
    use = np.zeros(ledger.width)
    assert len({t.index for t, _, _ in placed}) == len(placed)
    for t, s, cells in placed:
        assert s == 0
        assert cells.size == t.n
        assert len(set(cells.tolist())) == t.n
        assert t.earliest <= int(cells.min()) and int(cells.max()) < t.end
        if not t.demand.interruptible:
            assert int(cells[-1]) - int(cells[0]) == t.n - 1
            assert int(cells[0]) <= t.latest
        use[cells] += 1.0
    assert (use <= room + 1e-9).all()


def test_a_plan_that_leaves_less_room_at_the_end_than_the_greedy_one_is_refused() -> None:
    greedy, later = (Ledger.from_snapshot(snapshot(
        [site("grid", np.zeros(8), [100.0] * 8, cpu=10.0)], []), 1) for _ in range(2))
    full = greedy.capacity.copy()
    greedy.capacity[0, 0, 0:5] -= 9.0  # the greedy plan runs early
    later.capacity[0, 0, 4:9] -= 9.0  # the other as much work, at the end (and the pad)
    assert _later(later, greedy, full, keep=0.2)
    assert not _later(greedy, later, full, keep=0.2)  # earlier: more room at the end
    # when the tail keeps at least the share asked, deferring is allowed
    assert not _later(later, greedy, full, keep=0.05)


def test_no_prices_above_the_cell_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, terms = _ledger_and_terms(CARBON, 1.0, night()[1])
    assert priced.priced_start(ledger, PARAMS, terms, np.arange(1), 1e9)
    monkeypatch.setattr(priced, "MAX_CELLS", len(terms) * ledger.width - 1)
    assert priced.priced_start(ledger, PARAMS, terms, np.arange(1), 1e9) == []


def test_off_by_default() -> None:
    assert PlanParams().price_iterations == 0
    off = dataclasses.replace(PARAMS, price_iterations=0)
    assert slots_of(off) == {"short": (5,), "long": (2, 3, 4)}  # the greedy plan

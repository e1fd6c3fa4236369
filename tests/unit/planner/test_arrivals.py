"""Expected arrivals: the forecast of work (:mod:`suandian.planner.arrivals`) and how the
planner keeps room for it without ever costing a real job its place."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given

from suandian.planner import Incumbent, PlanParams, plan
from suandian.planner.arrivals import DAY, EXPECTED_PREFIX, Arrival, expected_arrivals
from suandian.planner.model import JobDecision, JobDemand, Snapshot
from unit.planner.synthetic import NOW, SLOT, job, site, snapshot
from unit.planner.test_properties import SETTINGS, instances

FREE = PlanParams(safety_margin=timedelta(0), risk_aversion=0.0, delay_penalty_share_h=0.0)


def test_what_arrived_a_day_ago_is_expected_a_day_later_with_its_window_and_shape() -> None:
    seen = job("night-1", kw=250.0, hours=3, slack=5.0, interruptible=True, priority=7,
               allowed_sites=(0,), min_green_fraction=0.2,
               incumbent=Incumbent(0, ((NOW, NOW + SLOT),)))
    history = [Arrival(NOW - DAY + 2 * SLOT, replace(seen, earliest_start=NOW - DAY + 2 * SLOT,
                                                     deadline=NOW - DAY + 10 * SLOT))]
    (expected,) = expected_arrivals(history, NOW, NOW + 24 * SLOT)
    assert expected.key == EXPECTED_PREFIX + "night-1"
    assert expected.earliest_start == NOW + 2 * SLOT
    assert expected.deadline == NOW + 10 * SLOT
    assert (expected.duration, expected.power_w, expected.priority) == (
        seen.duration, seen.power_w, 7)
    assert expected.interruptible and expected.allowed_sites == (0,)
    assert expected.min_green_fraction == 0.2
    assert expected.incumbent is None and expected.running_site is None
    np.testing.assert_array_equal(expected.resources, seen.resources)


def test_only_arrivals_due_after_now_and_by_until_are_expected_earliest_first() -> None:
    def seen(key: str, hours_ago: float) -> Arrival:
        at = NOW - timedelta(hours=hours_ago)
        return Arrival(at, replace(job(key), earliest_start=at, deadline=at + 12 * SLOT))

    history = [seen("due-now", 24), seen("late", 1), seen("soon", 23), seen("later", 20),
               seen("too-old", 30)]
    keys = [j.key for j in expected_arrivals(history, NOW, NOW + 6 * SLOT)]
    assert keys == [EXPECTED_PREFIX + "soon", EXPECTED_PREFIX + "later"]
    assert [j.key for j in expected_arrivals(history, NOW, NOW + 6 * SLOT, limit=1)] == [
        EXPECTED_PREFIX + "soon"]
    with pytest.raises(ValueError, match="period"):
        expected_arrivals(history, NOW, NOW + SLOT, period=timedelta(0))


def _night(expected: bool) -> Snapshot:
    """One slot of room; the grid is clean from 20:00 to 24:00. A job of 2 h due at
    24:00 is here now; a job of 6 h due at 24:00 is expected at 18:00."""
    carbon = np.full(24, 500.0)
    carbon[20:24] = 100.0
    grid = site("grid", np.zeros(24), carbon, cpu=1.0)
    early = job("early", hours=2, slack=22.0)
    late = replace(job("late", hours=6, start=18, slack=0.0))
    return replace(snapshot([grid], [early]), expected=(late,) if expected else ())


def test_a_job_keeps_out_of_the_room_that_work_expected_later_needs() -> None:
    blind = plan(_night(expected=False), FREE)
    seeing = plan(_night(expected=True), FREE)
    (before,) = blind.decisions
    (after,) = seeing.decisions  # no decision for the expected job
    assert before.slots == (20, 21)  # the clean hours, which the late job needs too
    assert max(after.slots) < 18  # out of the hours the late job will need
    assert seeing.load_kw[0].sum() == 200.0  # its own load: 100 kW over 2 h
    assert seeing.load_kw[0, 18:].sum() == 0  # the expected job draws no planned load
    ignoring = plan(_night(expected=True), replace(FREE, expected_arrivals=False))
    assert ignoring.decisions[0].slots == before.slots


def test_expected_work_gives_way_when_a_real_job_needs_its_room() -> None:
    snap = _night(expected=True)
    urgent = job("urgent", hours=6, start=18, slack=0.0)  # the same room, and real
    result = plan(replace(snap, jobs=(*snap.jobs, urgent)), FREE)
    places = {d.key: d.slots for d in result.decisions}
    assert places["urgent"] == tuple(range(18, 24))
    assert places["early"] and max(places["early"]) < 18


@SETTINGS
@given(instances())
def test_expected_arrivals_never_unplace_a_real_job_nor_use_its_green(snap: Snapshot
                                                                         ) -> None:
    """The jobs of the snapshot come again as expected arrivals (a day like the last):
    every job placed without them is placed with them, and no plan uses more green
    supply at a site and slot than exists (an expected job draws none)."""
    forecast = tuple(replace(j, key=EXPECTED_PREFIX + j.key, incumbent=None)
                     for j in snap.jobs)
    blind = plan(snap)
    seeing = plan(replace(snap, expected=forecast))
    placed = {d.key for d in blind.decisions if d.site_index is not None}
    assert placed <= {d.key for d in seeing.decisions if d.site_index is not None}
    assert {d.key for d in seeing.decisions} == {j.key for j in snap.jobs}
    supply = snap.stacked("green_p50_kw")
    assert (seeing.green_used_kw <= supply + 1e-6).all()
    assert (seeing.green_used_kw <= seeing.load_kw + 1e-6).all()


def test_a_forecast_as_large_as_a_real_job_does_not_give_its_place_to_another() -> None:
    """Found by the property above: ``j0`` (195 kW at the site) fits only where the sun
    is (slots 4-5, 120 kW of green over a 100 kW import limit). Its expected twin, as
    large, was planned before it and held that import; ``j0`` found no room, ``j5`` took
    slot 5, and the repair could not undo it. The plan without the forecast placed
    ``j0``, so the plan with it must too."""
    green = np.zeros(11)
    green[4:6] = 120.0
    s0 = site("s0", green, 100.0, p10=green / 2, import_kw=100.0, pue=1.3, cpu=2.0)
    jobs = [job("j0", kw=150, hours=2, slack=5),
            *(job(f"j{i}", kw=10, hours=1, slack=0) for i in range(1, 5)),
            job("j5", kw=100, hours=1, slack=6)]
    snap = snapshot([s0], jobs)
    forecast = tuple(replace(j, key=EXPECTED_PREFIX + j.key) for j in jobs)
    for seen in (snap, replace(snap, expected=forecast)):
        assert plan(seen).by_key["j0"].slots == (4, 5)


def _blind_and_seeing(snap: Snapshot, forecast: JobDemand) -> tuple[JobDecision, ...]:
    """The first decision planned without and with ``forecast`` expected."""
    return tuple(plan(s, FREE).decisions[0]
                 for s in (snap, replace(snap, expected=(forecast,))))


def test_a_forecast_moves_no_run_now_job_and_hides_no_oversubscription() -> None:
    """Only flexible jobs make room for expected work (review of issue 15): a RunNow job
    stays at its home, and one started where there is no room still says so."""
    home, away = (site(n, np.zeros(12), 500.0, cpu=1.0) for n in ("home", "away"))
    at_once = job("now", hours=3, slack=0.0, policy="RunNow")
    blind, seeing = _blind_and_seeing(snapshot([home, away], [at_once]), replace(
        job("expected:x", kw=50.0, hours=2, start=1, slack=0.0), allowed_sites=(0,)))
    assert blind.site == seeing.site == "home"
    too_big = job("big", hours=2, slack=0.0, cpu=3.0, policy="RunNow")
    blind, seeing = _blind_and_seeing(
        snapshot([site("s", np.zeros(12), 500.0, cpu=2.0)], [too_big]),
        job("expected:x", kw=50.0, hours=2, start=1, slack=0.0))
    assert blind.oversubscribed and seeing.oversubscribed
    assert "no allowed site has room" in seeing.reason


def test_a_forecast_never_takes_the_window_that_meets_a_real_jobs_green_floor() -> None:
    green = np.zeros(24)
    green[4:6] = 300.0
    floor = job("floor", hours=2, slack=10.0, min_green_fraction=0.9)
    blind, seeing = _blind_and_seeing(
        snapshot([site("s", green, 500.0, cpu=1.0)], [floor]),
        job("expected:big", kw=200.0, hours=2, start=4, slack=0.0))
    assert blind.slots == seeing.slots == (4, 5)
    assert seeing.expected_green_fraction == 1.0


def test_expected_arrivals_are_not_planned_where_no_limit_could_bind(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Room to spare (every job in every slot of its window at once would still fit):
    expected work could not change a decision, so it is not planned at all (it would
    double the round's work); where one job at a time fits, it is."""
    import suandian.planner.core as core

    made: list[str] = []
    real_expected = core._expected
    monkeypatch.setattr(core, "_expected", lambda t: made.append(t.demand.key)
                        or real_expected(t))
    roomy = replace(_night(expected=True), sites=(site("grid", np.zeros(24), 300.0, cpu=9.0),))
    assert plan(roomy, FREE).decisions == plan(replace(roomy, expected=()), FREE).decisions
    assert made == []
    plan(_night(expected=True), FREE)
    assert made == ["late"]

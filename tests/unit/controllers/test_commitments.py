"""Arrival rounds plan only the new jobs, against what earlier decisions take."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from tests.support.forecasts import powersite
from tests.support.objects import computejob

from suandian.api.validation import parse_computejob, parse_powersite
from suandian.config import Settings
from suandian.controllers.planning import Demand, PlanningService, SiteEntry
from suandian.controllers.view import ClusterView, NodeRecord
from suandian.errors import PlanningError
from suandian.forecast import SiteForecast, TimeGrid
from suandian.planner import Incumbent, JobTerms, PlanParams, Snapshot
from suandian.planning import rounds
from suandian.planning.commitments import Commitment, Commitments, absolute_slot

T0 = datetime(2026, 6, 21, tzinfo=UTC)
SLOT = timedelta(minutes=15)


def test_commit_and_release_are_exact_and_windows_slice_the_absolute_axis():
    c = Commitments(resources=2)
    c.commit("a", Commitment("s", np.array([10, 11]), 5.0, np.array([1.0, 2.0])))
    c.commit("b", Commitment("s", np.array([8, 11]), 3.0, None))  # earlier: axis grows back
    kw, held = c.window("s", 9, 4)
    assert list(kw) == [0.0, 5.0, 8.0, 0.0]
    assert held[:, 1].tolist() == [1.0, 2.0] and held[:, 0].tolist() == [0.0, 0.0]
    c.commit("a", Commitment("s", np.array([12]), 4.0, None))  # a re-plan replaces its take
    kw, held = c.window("s", 9, 4)
    assert list(kw) == [0.0, 0.0, 3.0, 4.0] and not held.any()
    c.release("b")
    c.release("a")
    assert not c.window("s", 0, 20)[0].any()
    assert not c.window("other", 0, 3)[0].any()


def test_the_past_is_forgotten_and_a_late_release_takes_back_only_what_is_left():
    c = Commitments(resources=1)
    c.commit("a", Commitment("s", np.arange(5, 10), 2.0, np.array([1.0])))
    assert list(c.window("s", 7, 4)[0]) == [2.0, 2.0, 2.0, 0.0]  # slots 5, 6 forgotten
    c.release("a")
    kw, held = c.window("s", 7, 4)
    assert not kw.any() and not held.any()


def test_absolute_slots_agree_whatever_now_is():
    assert absolute_slot(T0 + timedelta(minutes=14), SLOT) == absolute_slot(T0, SLOT)
    assert absolute_slot(T0 + SLOT, SLOT) == absolute_slot(T0, SLOT) + 1


class FixedClock:
    def now(self) -> datetime:
        return T0

    async def sleep_until(self, when: datetime) -> None:
        raise AssertionError("not used")


def service(green: np.ndarray | None = None, import_limit_kw: float | None = None,
            settings: Settings | None = None, full_rounds: str = "thread") -> PlanningService:
    """One site (PUE 1.2, one node) over 8 slots; by default 60 kW green in slots 2-3 and
    50 kW in slots 5-6, nothing otherwise. Full rounds in a thread of this process (the
    tests look into them), unless ``full_rounds="process"``."""
    if green is None:
        green = np.zeros(8)
        green[2:4], green[5:7] = 60.0, 50.0
    forecast = SiteForecast(
        site="s", grid=TimeGrid(T0, SLOT, 8), green_kw={"wind": green},
        green_total_kw=green, green_p10_kw=green, green_p90_kw=green,
        storage_kw=np.zeros(8), carbon_g_per_kwh=np.full(8, 500.0),
        carbon_p10=np.full(8, 500.0), carbon_p90=np.full(8, 500.0), price=None,
        source="t", issued_at=T0)
    site = parse_powersite(powersite("s", "r"))
    if import_limit_kw is not None:
        site.spec.grid.import_limit_kw = import_limit_kw
    node = NodeRecord("n1", {"topology.kubernetes.io/region": "r"},
                      {"cpu": 64.0, "memory": 256.0, "pods": 110.0}, True)
    view = ClusterView({"n1": [node]}, {})
    settings = dataclasses.replace(settings or Settings(), full_rounds=full_rounds)
    return PlanningService(settings, FixedClock(),
                           lambda: {"s": SiteEntry(site, forecast)}, lambda: view)


def demand(key: str) -> Demand:
    """50 kW IT (60 kW at the site) for 30 minutes, within two hours."""
    job = parse_computejob(computejob(key, duration="30m", max_delay="2h"), created=T0)
    return Demand(key, JobTerms.from_computejob(job), T0)


async def test_an_arrival_round_plans_only_the_new_job_around_what_others_take():
    planning = service()
    planning.upsert(demand("a"))
    await planning.run_round()  # the first round is a full one
    first = planning.current("a")
    assert first is not None and first.planned_start == T0 + 2 * SLOT
    planning.upsert(demand("b"))
    await planning.run_round()  # arrivals only: "a" keeps its decision, untouched
    assert planning.current("a") is first
    second = planning.current("b")
    assert second is not None
    # slots 2-3 are all taken by "a": without its commitment "b" would land there too
    assert second.planned_start == T0 + 5 * SLOT


async def test_a_failed_arrival_round_keeps_its_arrivals_for_the_next(monkeypatch):
    planning = service()
    planning.upsert(demand("a"))
    await planning.run_round()
    planning.upsert(demand("b"))

    def broken(*args: object, **kwargs: object) -> None:
        raise PlanningError("boom")

    with monkeypatch.context() as patched:
        patched.setattr(rounds, "snapshot_of", broken)
        with pytest.raises(PlanningError):
            await planning.run_round()
        assert planning.pending("b")
    await planning.run_round()
    decided = planning.current("b")
    assert decided is not None and decided.planned_start == T0 + 5 * SLOT


async def test_a_changed_demand_is_told_its_decision_even_when_it_is_the_same():
    planning = service()
    told: list[str] = []
    planning.upsert(demand("a"), lambda d: told.append(d.key))
    assert planning.pending("a")
    await planning.run_round()
    assert told == ["a"] and not planning.pending("a")  # the first decision
    await planning.run_round()
    assert told == ["a"]  # nothing changed: not told again
    changed = Demand("a", demand("a").terms, T0 + timedelta(seconds=1))  # same plan
    planning.upsert(changed, lambda d: told.append(d.key))
    assert planning.pending("a")
    await planning.run_round()
    assert told == ["a", "a"]  # its step waits for this answer: it is told


async def test_an_arrival_round_keeps_to_the_grid_import_the_others_leave():
    """A 150 kW import limit, no green at all: at most two 60 kW (facility) jobs at once."""
    planning = service(green=np.zeros(8), import_limit_kw=150.0)
    planning.upsert(demand("a"))
    planning.upsert(demand("b"))
    await planning.run_round()  # full: 120 kW of 150 in the first slots
    planning.upsert(demand("c"))
    await planning.run_round()  # arrivals: c must not add 60 kW where a and b draw 120
    starts = {k: planning.current(k).planned_start for k in "abc"}  # type: ignore[union-attr]
    overlapping = [k for k in "ab" if abs(starts[k] - starts["c"]) < timedelta(minutes=30)]
    assert len(overlapping) < 2, starts


async def test_full_rounds_pass_each_waiting_decision_as_its_incumbent(monkeypatch):
    planning = service(settings=Settings(move_threshold_g=7.0, move_threshold_share=0.01))
    seen: list[Snapshot] = []
    real = rounds.plan

    def spy(snapshot: Snapshot, params: PlanParams) -> object:
        seen.append(snapshot)
        assert (params.move_threshold_g, params.move_threshold_share) == (7.0, 0.01)
        return real(snapshot, params)

    monkeypatch.setattr(rounds, "plan", spy)
    planning.upsert(demand("a"))
    await planning.run_round()
    first = planning.current("a")
    assert first is not None and seen[-1].jobs[0].incumbent is None  # nothing held yet
    planning.replan()
    await planning.run_round()
    assert seen[-1].jobs[0].incumbent == Incumbent(0, first.windows)
    changed = Demand("a", demand("a").terms, T0 + timedelta(seconds=1))
    planning.upsert(changed)
    planning.replan()
    await planning.run_round()
    assert seen[-1].jobs[0].incumbent is None  # its spec changed: planned afresh

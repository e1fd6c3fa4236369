"""The operator's memory of arrivals (:mod:`suandian.planning.arrival_log`) and the rounds
that plan yesterday's work as today's expected arrivals, in a thread and in the planner
process alike."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from tests.support.objects import computejob
from tests.unit.controllers.test_commitments import SLOT, T0, service
from tests.unit.controllers.test_planner_process import ask, serve_in_thread

from suandian.api.validation import parse_computejob
from suandian.config import Settings
from suandian.controllers.planning import Demand, PlanningService
from suandian.planner import JobTerms
from suandian.planner.arrivals import DAY, EXPECTED_PREFIX
from suandian.planning import process as worker
from suandian.planning import rounds
from suandian.planning.arrival_log import ArrivalLog


def whole_node(key: str, created: datetime, max_delay: str) -> Demand:
    """30 minutes on all 64 CPUs of the service's one node, 50 kW IT."""
    job = parse_computejob(computejob(key, duration="30m", max_delay=max_delay, cpu="64"),
                           created=created)
    return Demand(key, JobTerms.from_computejob(job), created)


def test_the_log_keeps_first_sightings_in_time_order_and_forgets_the_old() -> None:
    log = ArrivalLog(keep=2 * DAY, limit=3)
    a = whole_node("a", T0 - timedelta(hours=20), "2h")
    log.add(a)
    log.add(dataclasses.replace(a, created=T0))  # an update of "a": not an arrival
    log.add(whole_node("b", T0 - timedelta(hours=23), "2h"))
    log.add(whole_node(EXPECTED_PREFIX + "x", T0, "2h"))  # never logs a forecast
    assert [d.key for d in log.due(T0, T0 + timedelta(hours=6))] == ["b", "a"]
    assert [d.key for d in log.due(T0, T0 + timedelta(hours=2))] == ["b"]
    log.forget(T0 + timedelta(hours=26))  # "b" is more than two days old by then
    assert [d.key for d in log.due(T0 - 2 * DAY, T0 + DAY)] == ["a"]
    for key in "cde":
        log.add(whole_node(key, T0, "2h"))
    assert len(log) == 3  # bounded: the oldest ("a") dropped first
    assert [d.key for d in log.due(T0 - 2 * DAY, T0 + DAY)] == ["c", "d", "e"]


def test_a_repeated_arrival_moves_its_absolute_times_by_the_period() -> None:
    """A job of yesterday with a completeBy and a notBefore, logged while it ran, is
    expected today with both a day later, its own key prefixed, running nowhere."""
    yesterday = T0 - DAY + timedelta(minutes=1)
    job = parse_computejob(computejob("fixed", duration="1h", deadline={"completeBy": (
        T0 - DAY + timedelta(hours=6)).isoformat()}, notBefore=(T0 - DAY + SLOT).isoformat()),
        created=yesterday)
    planning = service()
    planning.upsert(Demand("fixed", JobTerms.from_computejob(job), yesterday,
                           running_site="s", remaining=SLOT))
    planning.remove("fixed")
    planning.upsert(whole_node("today", T0, "2h"))
    snap = rounds.snapshot_of(planning._take(full=True), ())
    assert snap is not None and [j.key for j in snap.jobs] == ["today"]
    (again,) = snap.expected
    assert again.key == EXPECTED_PREFIX + "fixed"
    assert (again.earliest_start, again.deadline) == (T0 + SLOT, T0 + timedelta(hours=6))
    assert again.running_site is None and again.incumbent is None


@pytest.mark.parametrize("full_rounds", ["thread", "process"])
@pytest.mark.parametrize("expected", [True, False])
async def test_yesterdays_late_job_keeps_todays_early_one_out_of_its_hours(
        full_rounds: str, expected: bool) -> None:
    """Green in slots 2-3 and 5-6. Yesterday a whole-node job arrived at slot 2, due 45
    minutes later; today's early job, free for two hours, would take slots 2-3: with the
    memory of yesterday it leaves them to the one expected, and takes 5-6."""
    settings = dataclasses.replace(Settings(), expected_arrivals=expected)
    planning: PlanningService = service(settings=settings, full_rounds=full_rounds)
    try:
        late = whole_node("late", T0 - DAY + 2 * SLOT, "15m")
        planning.upsert(late)
        await planning.run_round()  # the planner process sees a demand at a full round
        planning.remove("late")  # it ran and finished; it stays remembered
        planning.upsert(whole_node("early", T0, "2h"))
        planning.replan()
        await planning.run_round()
        decided = planning.current("early")
        assert decided is not None
        assert decided.planned_start == T0 + (5 if expected else 2) * SLOT
        assert planning.current(EXPECTED_PREFIX + "late") is None  # never a decision
    finally:
        if planning._planner is not None:
            planning._planner.close()


@pytest.mark.parametrize("restart", [False, True])
async def test_the_planner_process_plans_the_operators_log_even_after_a_restart(
        restart: bool) -> None:
    """Full rounds in the planner process plan the arrivals the operator's log names,
    sent over the pipe: a process started again (after a crash) has them too, and a full
    round there keeps today's early job out of yesterday's late one's hours, as the
    arrival round did (it once kept a log of its own, empty after a restart)."""
    planning: PlanningService = service(full_rounds="process")
    try:
        planning.upsert(whole_node("late", T0 - DAY + 2 * SLOT, "15m"))
        await planning.run_round()
        planning.remove("late")
        if restart:
            assert planning._planner is not None
            planning._planner.close()
        planning.upsert(whole_node("early", T0, "2h"))
        planning.replan()
        await planning.run_round()  # the arrival round decides the new job
        planning.replan()
        await planning.run_round()  # a full round, in the planner process
        decided = planning.current("early")
        assert decided is not None and decided.planned_start == T0 + 5 * SLOT
    finally:
        if planning._planner is not None:
            planning._planner.close()


def test_the_log_is_whole_a_day_after_it_is_first_read() -> None:
    """What finished before the operator started is not read back: until the log has
    been kept a day, the work it repeats is not all the work there will be."""
    log = ArrivalLog()
    assert not log.complete(T0)  # never read
    log.forget(T0)
    assert not log.complete(T0 + DAY - SLOT)
    assert log.complete(T0 + DAY)
    log.forget(T0 + DAY)  # reading again does not start it afresh
    assert log.complete(T0 + DAY)


def test_a_round_tells_the_planner_whether_the_forecast_is_whole() -> None:
    planning = service()
    planning.upsert(whole_node("today", T0, "2h"))
    snap = rounds.snapshot_of(planning._take(full=True), ())
    assert snap is not None and not snap.arrivals_complete  # the log began just now
    planning._arrival_log.since = T0 - DAY
    snap = rounds.snapshot_of(planning._take(full=True), ())
    assert snap is not None and snap.arrivals_complete


@pytest.mark.parametrize("complete", [False, True])
def test_the_planner_process_is_told_whether_the_forecast_is_whole(
        monkeypatch: pytest.MonkeyPatch, complete: bool) -> None:
    """``serve`` as the process runs it (here in a thread): the round it computes has
    the flag the operator's ask carries."""
    seen: list[bool] = []

    def compute(inputs: rounds.RoundInputs, *args: object, **kwargs: object) -> None:
        seen.append(inputs.arrivals_complete)

    monkeypatch.setattr(worker, "compute", compute)
    (done,) = serve_in_thread(worker.Sync((whole_node("a", T0, "2h"),), ()),
                              ask(arrivals_complete=complete))
    assert isinstance(done, worker.Done) and seen == [complete]


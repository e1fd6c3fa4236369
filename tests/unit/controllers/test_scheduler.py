"""The one scheduler: steps on wake-ups and when due, never one key twice at once,
retries failures, forgets, and does nothing while paused."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from suandian import metrics
from suandian.controllers.clock import LoopClock
from suandian.controllers.scheduler import Scheduler
from suandian.errors import KubeApiError

pytestmark = pytest.mark.looptime

T0 = datetime(2026, 6, 21, tzinfo=UTC)


class Recorder:
    """A step that records (key, loop-time second) and answers from a script."""

    def __init__(self, clock: LoopClock, answers: dict[str, list[timedelta | None]]) -> None:
        self.clock = clock
        self.answers = answers
        self.calls: list[tuple[str, float]] = []
        self.active: set[str] = set()
        self.overlaps = 0

    async def __call__(self, key: str) -> datetime | None:
        if key in self.active:
            self.overlaps += 1
        self.active.add(key)
        self.calls.append((key, (self.clock.now() - T0).total_seconds()))
        await asyncio.sleep(0.5)  # a step waits for the API
        self.active.discard(key)
        script = self.answers.get(key) or [None]
        answer = script.pop(0) if len(script) > 1 else script[0]
        return None if answer is None else self.clock.now() + answer


async def test_a_woken_key_is_stepped_and_stepped_again_when_due() -> None:
    clock = LoopClock(T0)
    step = Recorder(clock, {"a": [timedelta(hours=6), None]})
    scheduler = Scheduler(clock, step)
    scheduler.start()
    scheduler.wake("a")
    await asyncio.sleep(7 * 3600)
    assert [k for k, _ in step.calls] == ["a", "a"]
    assert step.calls[1][1] == pytest.approx(6 * 3600 + 0.5, abs=0.1)  # on time
    assert scheduler.due("a") is None
    await scheduler.stop()


async def test_a_wake_during_a_step_runs_it_once_more_after_never_concurrently() -> None:
    clock = LoopClock(T0)
    step = Recorder(clock, {})
    scheduler = Scheduler(clock, step)
    scheduler.start()
    scheduler.wake("a")
    await asyncio.sleep(0.1)
    scheduler.wake("a")
    scheduler.wake("a")
    await asyncio.sleep(5)
    assert [k for k, _ in step.calls] == ["a", "a"] and step.overlaps == 0
    await scheduler.stop()


async def test_keys_step_concurrently_up_to_the_limit() -> None:
    clock = LoopClock(T0)
    step = Recorder(clock, {})
    scheduler = Scheduler(clock, step, concurrency=2)
    scheduler.start()
    for key in "abcd":
        scheduler.wake(key)
    await asyncio.sleep(5)
    starts = sorted(t for _, t in step.calls)
    assert starts == pytest.approx([0, 0, 0.5, 0.5], abs=0.05)  # two at a time


async def test_later_keys_wait_for_ready_ones_and_take_an_eighth_of_the_slots() -> None:
    """Ten moves woken first, then two arrivals: the arrivals step at once (in the slots
    the moves may not take), the moves three at a time (an eighth of 24); a later key
    woken again without ``later`` becomes ready."""
    clock = LoopClock(T0)
    step = Recorder(clock, {})
    scheduler = Scheduler(clock, step, concurrency=24)
    scheduler.start()
    for i in range(10):
        scheduler.wake(f"move-{i}", later=True)
    scheduler.wake("move-9")  # due after all (its start came near): no longer later
    await asyncio.sleep(0.1)
    for key in ("new-a", "new-b"):
        scheduler.wake(key)
    await asyncio.sleep(10)
    first = dict(reversed(step.calls))  # each key's first step
    assert first["new-a"] == pytest.approx(0.1, abs=0.05)  # not behind the moves
    assert first["new-b"] == pytest.approx(0.1, abs=0.05)
    assert first["move-9"] == pytest.approx(0.0, abs=0.05)
    moves = sorted(t for k, t in first.items() if k.startswith("move-") and k != "move-9")
    assert moves == pytest.approx([0, 0, 0, 0.5, 0.5, 0.5, 1, 1, 1], abs=0.05)
    assert step.overlaps == 0
    await scheduler.stop()


async def test_later_steps_start_at_most_later_rate_a_second() -> None:
    """Thirty moves, room for eight at once, four a second: a second's worth at once,
    then one every quarter second; an arrival meanwhile is not held up."""
    clock = LoopClock(T0)
    step = Recorder(clock, {})
    scheduler = Scheduler(clock, step, concurrency=64, later_rate=4.0)
    scheduler.start()
    for i in range(30):
        scheduler.wake(f"move-{i}", later=True)
    await asyncio.sleep(1.1)
    scheduler.wake("new")
    await asyncio.sleep(20)
    starts = sorted(t for k, t in step.calls if k.startswith("move-"))
    assert starts[:4] == pytest.approx([0, 0, 0, 0], abs=0.02)
    assert starts[4:8] == pytest.approx([0.25, 0.5, 0.75, 1.0], abs=0.02)
    assert len(starts) == 30 and starts[-1] == pytest.approx(6.5, abs=0.05)
    assert dict(step.calls)["new"] == pytest.approx(1.1, abs=0.02)
    await scheduler.stop()


async def test_transient_errors_are_retried_after_a_doubling_delay() -> None:
    clock = LoopClock(T0)
    calls: list[float] = []

    async def flaky(key: str) -> datetime | None:
        calls.append((clock.now() - T0).total_seconds())
        if len(calls) < 3:
            raise KubeApiError(503, "Unavailable", "try later")
        return None

    scheduler = Scheduler(clock, flaky, retry_delay=7.0)
    scheduler.start()
    scheduler.wake("a")
    await asyncio.sleep(60)
    assert calls == pytest.approx([0, 7, 21], abs=0.1)  # 7 s, then 14 s
    assert scheduler.failures("a") == 0  # the third step succeeded
    await scheduler.stop()


async def test_a_failing_step_backs_off_to_a_minute_counts_and_logs_its_trace_once(
        caplog: pytest.LogCaptureFixture) -> None:
    metrics.reset()
    clock = LoopClock(T0)
    calls: list[float] = []

    async def broken(key: str) -> datetime | None:
        calls.append((clock.now() - T0).total_seconds())
        raise IndexError("list index out of range")

    scheduler = Scheduler(clock, broken, retry_delay=5.0)
    scheduler.start()
    scheduler.wake("a")
    await asyncio.sleep(400)
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps == pytest.approx([5, 10, 20, 40, 60, 60, 60, 60, 60], abs=0.1)
    assert scheduler.failures("a") == len(calls) == 10
    bugs = metrics.registry().get_sample_value("suandian_step_failures_total",
                                               {"reason": "Bug"})
    assert bugs == 10
    assert caplog.text.count("Traceback") == 1
    assert "failed again (10 in a row)" in caplog.text
    scheduler.forget("a")
    assert scheduler.failures("a") == 0
    await scheduler.stop()


async def test_a_bug_in_one_step_is_logged_and_retried_not_fatal(caplog) -> None:
    clock = LoopClock(T0)
    calls: list[str] = []

    async def buggy(key: str) -> datetime | None:
        calls.append(key)
        if key == "bad" and calls.count("bad") == 1:
            raise ZeroDivisionError("oops")
        return None

    scheduler = Scheduler(clock, buggy, retry_delay=1.0)
    scheduler.start()
    scheduler.wake("bad")
    scheduler.wake("good")
    await asyncio.sleep(10)
    assert calls.count("bad") == 2 and calls.count("good") == 1
    assert "the step failed" in caplog.text
    await scheduler.stop()


async def test_forgotten_keys_are_not_stepped_even_when_due() -> None:
    clock = LoopClock(T0)
    step = Recorder(clock, {"a": [timedelta(hours=1)]})
    scheduler = Scheduler(clock, step)
    scheduler.start()
    scheduler.wake("a")
    await asyncio.sleep(0.1)
    scheduler.forget("a")  # while its step runs: its answer is dropped
    await asyncio.sleep(3 * 3600)
    assert [k for k, _ in step.calls] == ["a"]
    await scheduler.stop()


async def test_a_paused_scheduler_steps_nothing_until_resumed() -> None:
    clock = LoopClock(T0)
    step = Recorder(clock, {"a": [timedelta(minutes=10)]})
    scheduler = Scheduler(clock, step)
    scheduler.start()
    scheduler.wake("a")
    await asyncio.sleep(1)
    scheduler.pause()  # a standby replica: its due times are forgotten too
    scheduler.wake("b")
    await asyncio.sleep(3600)
    assert [k for k, _ in step.calls] == ["a"] and scheduler.paused
    scheduler.resume()
    await asyncio.sleep(1)
    assert [k for k, _ in step.calls] == ["a", "b"]  # what the re-listing woke
    await scheduler.stop()


async def test_superseded_due_times_do_not_pile_up() -> None:
    clock = LoopClock(T0)
    answers: dict[str, list[timedelta | None]] = {"a": [timedelta(days=30)]}
    step = Recorder(clock, answers)
    scheduler = Scheduler(clock, step)
    scheduler.start()
    for _ in range(300):  # a far-deferred job re-stepped by many re-plans
        scheduler.wake("a")
        await asyncio.sleep(1)
    assert len(scheduler._heap) <= 2 * len(scheduler._due) + 64
    assert scheduler.due("a") is not None
    await scheduler.stop()


async def test_a_paused_context_resumes_on_a_listing_not_on_queued_events() -> None:
    from suandian.config import Settings
    from suandian.controllers.context import Context

    ctx = Context(settings=Settings(), clock=LoopClock(T0), api=None)  # type: ignore[arg-type]
    ctx.handling(listed=True)
    ctx.pause()  # kopf stopped a PowerSite daemon to pause this replica
    ctx.handling(listed=False)  # an event queued before the pause: still paused
    assert ctx.scheduler.paused
    ctx.handling(listed=True)  # kopf lists again when it resumes the replica
    assert not ctx.scheduler.paused
    await ctx.scheduler.stop()

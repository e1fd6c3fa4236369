"""The planning loop cannot die: a planner that raises is retried with backoff, counted,
logged once, and the liveness endpoint fails only when a restart is the cure."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, JOBS, PSITES, computejob, eventually
from tests.support.operator import free_port, running_operator

from suandian import metrics
from suandian.config import Settings
from suandian.controllers.context import memo_context
from suandian.errors import PlanningError
from suandian.planning import rounds

pytestmark = pytest.mark.looptime

REGION = "topology.kubernetes.io/region"


def failing_planner(monkeypatch: pytest.MonkeyPatch, error: Callable[[], Exception],
                    times: int | None = None) -> list[int]:
    """Make the first ``times`` (None: every) calls of the planner raise ``error()``;
    the list returned counts the calls."""
    real, calls = rounds.plan, [0]

    def plan(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if times is None or calls[0] <= times:
            raise error()
        return real(*args, **kwargs)

    monkeypatch.setattr(rounds, "plan", plan)
    return calls


def site(api, cluster, green):  # type: ignore[no-untyped-def]
    cluster.add_node("ningxia-1", {REGION: "ningxia"})
    api.create(PSITES, powersite("ningxia", "ningxia"))
    return keeper_factory({"ningxia": ScriptedProvider(green)})


def failures(reason: str) -> float:
    return metrics.registry().get_sample_value(
        "suandian_planning_failures_total", {"reason": reason}) or 0.0


async def liveness(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_a_planner_bug_is_retried_with_backoff_and_the_job_still_waits_for_green(
        api, cluster, clock, monkeypatch, caplog):  # type: ignore[no-untyped-def]
    metrics.reset()
    three = clock.start + timedelta(hours=3)
    factory = site(api, cluster, lambda t: 1000.0 if t >= three else 0.0)
    calls = failing_planner(monkeypatch, lambda: IndexError("index 7 is out of bounds"),
                            times=4)
    async with running_operator(api, clock, factory) as op:
        api.create(CJ, computejob("etl", max_delay="20h"))
        child = await eventually(lambda: api.read(JOBS, "batch", "etl"), timeout=120,
                                 what="the child Job once planning recovers")
        ctx = memo_context(op.parts.memo)
        assert ctx.planning.health(clock.now()) == "ok"
    assert calls[0] >= 5 and failures("Bug") == 4 and failures("Planning") == 0
    assert child["spec"]["suspend"] is True  # deferred to the green hours, not started
    assert api.read(CJ, "batch", "etl")["status"]["plannedStart"] >= "2026-06-21T03:00:00Z"
    assert caplog.text.count("Traceback") == 1  # then one line per repeat
    assert "planning round failed again (4 in a row), retrying in 0:00:08" in caplog.text


async def test_liveness_fails_when_every_round_hits_a_bug(
        api, cluster, clock, monkeypatch):  # type: ignore[no-untyped-def]
    metrics.reset()
    factory = site(api, cluster, lambda t: 1000.0)
    failing_planner(monkeypatch, lambda: KeyError("gansu"))
    port = free_port()
    settings = Settings(plan_batch_window=0.02, replan_interval=timedelta(minutes=5),
                        full_rounds="thread")
    async with running_operator(api, clock, factory, settings=settings,
                                liveness_endpoint=f"http://127.0.0.1:{port}/healthz") as op:
        api.create(CJ, computejob("etl"))
        ctx = memo_context(op.parts.memo)
        await asyncio.sleep(14 * 60)
        assert ctx.planning.health(clock.now()) == "KeyError: 'gansu'"  # not yet 15 min
        await asyncio.sleep(2 * 60)
        with pytest.raises(PlanningError, match=r"no planning round ended soundly for "
                                                r"0:1\d:\d\d \(limit 0:15:00\)"):
            ctx.planning.health(clock.now())
        status, body = await liveness(f"http://127.0.0.1:{port}/healthz")
    assert status == 500, body
    assert failures("Bug") >= 14  # backoff capped at a minute: about one per minute


async def test_liveness_holds_while_rounds_fail_for_a_reason_a_restart_cannot_mend(
        api, cluster, clock, monkeypatch):  # type: ignore[no-untyped-def]
    metrics.reset()
    factory = site(api, cluster, lambda t: 1000.0)
    failing_planner(monkeypatch, lambda: PlanningError("every forecast ends before now"))
    port = free_port()
    async with running_operator(api, clock, factory,
                                liveness_endpoint=f"http://127.0.0.1:{port}/healthz"):
        api.create(CJ, computejob("etl"))
        await asyncio.sleep(40 * 60)
        status, body = await liveness(f"http://127.0.0.1:{port}/healthz")
    assert status == 200 and "every forecast ends before now" in body
    assert failures("Planning") >= 30 and failures("Bug") == 0


async def test_liveness_fails_when_the_planning_loop_has_ended(
        api, cluster, clock, caplog):  # type: ignore[no-untyped-def]
    factory = site(api, cluster, lambda t: 1000.0)
    port = free_port()
    async with running_operator(api, clock, factory,
                                liveness_endpoint=f"http://127.0.0.1:{port}/healthz") as op:
        ctx = memo_context(op.parts.memo)
        await eventually(lambda: ctx.planning._task, what="the planning loop")
        ctx.planning._task.cancel()  # as if it had ended: nothing in it does on purpose
        await asyncio.sleep(1)
        status, body = await liveness(f"http://127.0.0.1:{port}/healthz")
    assert status == 500, body
    assert "the planning loop ended (cancelled)" in caplog.text  # kopf logs the reason

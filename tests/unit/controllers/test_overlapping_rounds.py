"""Arrivals never wait for a full round: the service's loop decides them while a full
round is computed in its worker thread, then reconciles the two."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

import numpy as np
import pytest
from tests.unit.controllers.test_commitments import demand, service

from suandian.controllers import planning as planning_module
from suandian.controllers.planning import PlanningService, SiteEntry
from suandian.planner import Snapshot
from suandian.planning import rounds


class HeldPlanner:
    """The real planner, except that a full round (more than ``small`` jobs) waits in its
    worker thread until :meth:`release`: a full round that takes as long as we like."""

    def __init__(self, small: int) -> None:
        self.real = rounds.plan
        self.small = small
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.rounds: list[int] = []

    def __call__(self, snapshot: Snapshot, params: Any) -> Any:
        self.rounds.append(len(snapshot.jobs))
        if len(snapshot.jobs) > self.small:
            self.entered.set()
            assert self.gate.wait(timeout=30), "the test never released the full round"
        return self.real(snapshot, params)

    def release(self) -> None:
        self.gate.set()


async def until(condition: Any, what: str, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)
    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


@pytest.mark.looptime(False)
async def test_arrivals_are_decided_while_a_full_round_computes_and_reconciled_after(
        monkeypatch: pytest.MonkeyPatch) -> None:
    planning = service()
    told: list[str] = []
    for i in range(12):
        planning.upsert(demand(f"old-{i}"), lambda d: told.append(d.key))
    planning.start()
    try:
        await until(lambda: len(told) == 12, "the first full round")
        held = HeldPlanner(small=3)
        monkeypatch.setattr(rounds, "plan", held)
        planning.replan()
        await until(held.entered.is_set, "the full round to start computing")
        assert planning.computing
        for key in ("new-a", "new-b"):
            planning.upsert(demand(key), lambda d: told.append(d.key))
        # decided by an arrival round while the full one is still held in its thread
        await until(lambda: {"new-a", "new-b"} <= set(told), "the arrivals' decisions")
        assert planning.computing and not held.gate.is_set()
        assert planning.current("new-a") is not None and not planning.pending("new-a")
        decided_meanwhile = {k: planning.current(k) for k in ("new-a", "new-b")}

        held.release()
        await until(lambda: not planning.computing, "the full round to be handed out")
        # the arrivals were not part of it: checked again against what it decided, in an
        # arrival round of their own, holding their decisions
        await until(lambda: held.rounds[-1] == 2 and not planning._recheck,
                    "the arrivals checked again")
        for key, before in decided_meanwhile.items():
            after = planning.current(key)
            assert after is not None and before is not None
            assert (after.site, after.windows) == (before.site, before.windows)
        assert len(planning._commitments) == 14  # every decision's take, once
        assert all(not planning.pending(f"old-{i}") for i in range(12))
    finally:
        held.release()
        await planning.stop()


@pytest.mark.looptime(False)
async def test_a_demand_changed_while_the_full_round_computes_keeps_its_own_decision(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The full round planned the old spec: its answer for that job is dropped, the
    arrival round's answer for the new spec stands."""
    planning = service()
    for i in range(10):
        planning.upsert(demand(f"job-{i}"))
    planning.start()
    try:
        await until(lambda: all(planning.current(f"job-{i}") for i in range(10)),
                    "the first full round")
        held = HeldPlanner(small=3)
        monkeypatch.setattr(rounds, "plan", held)
        planning.replan()
        await until(held.entered.is_set, "the full round to start computing")
        changed = demand("job-0")
        changed = type(changed)(changed.key, changed.terms, changed.created.replace(second=9))
        planning.upsert(changed)
        await until(lambda: not planning.pending("job-0"), "the changed job's decision")
        own = planning.current("job-0")
        held.release()
        await until(lambda: not planning.computing and not planning._recheck,
                    "the full round handed out and the job checked again")
        after = planning.current("job-0")
        assert own is not None and after is not None
        assert (after.site, after.windows) == (own.site, own.windows)
        assert planning.stale("job-0", changed) is False
    finally:
        held.release()
        await planning.stop()


def windy_service(import_limit_kw: float) -> tuple[PlanningService, dict[str, SiteEntry]]:
    """``service()``'s one site with no green, whose forecast the test can replace."""
    planning = service(green=np.zeros(8), import_limit_kw=import_limit_kw)
    sites = dict(planning._sites())
    planning._sites = lambda: sites
    return planning, sites


def with_green(entry: SiteEntry, green: np.ndarray) -> SiteEntry:
    f = entry.forecast
    return SiteEntry(entry.site, dataclasses.replace(
        f, green_kw={"wind": green}, green_total_kw=green, green_p10_kw=green,
        green_p90_kw=green))


@pytest.mark.looptime(False)
async def test_an_arrival_the_full_round_did_not_know_is_moved_off_what_it_decided(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """60 kW of grid import: one 60 kW job at a time, ``a`` in slots 0-1, ``b`` in 2-3.
    The forecast then brings 100 kW of wind in slots 4-5; the full round moves ``a`` and
    ``b`` there (120 kW: 100 green, 20 grid). ``c`` arrives while it computes and, against
    the ledger before it, takes the wind too. After it, ``c`` no longer fits (180 kW,
    80 from the grid): checked again, it moves; no slot ever draws more than the limit."""
    planning, sites = windy_service(import_limit_kw=60.0)
    for key in "ab":
        planning.upsert(demand(key))
    planning.start()
    try:
        await until(lambda: all(planning.current(k) for k in "ab"), "the first full round")
        assert [planning.current(k).slots for k in "ab"] == [(0, 1), (2, 3)]  # type: ignore[union-attr]
        held = HeldPlanner(small=1)
        monkeypatch.setattr(rounds, "plan", held)
        monkeypatch.setattr(planning_module, "INLINE_DEMANDS", 0)  # in a thread
        wind = np.zeros(8)
        wind[4:6] = 100.0
        sites["s"] = with_green(sites["s"], wind)
        planning.replan()  # a forecast refresh
        await until(held.entered.is_set, "the full round to start computing")
        planning.upsert(demand("c"))
        await until(lambda: not planning.pending("c"), "c's arrival decision")
        first = planning.current("c")
        assert first is not None and first.slots == (4, 5)
        held.release()
        # c's second decision handed out (the recheck round's plan() call is counted
        # when it starts, before its decision is handed out: waiting on it raced)
        await until(lambda: not planning.computing and not planning._recheck
                    and held.rounds[-1] == 1 and planning.current("c") is not first,
                    "c checked again after the full round")
        slots = {k: planning.current(k).slots for k in "abc"}  # type: ignore[union-attr]
        assert slots["a"] == slots["b"] == (4, 5) and slots["c"] != (4, 5), slots
        load = np.zeros(8)
        for taken in slots.values():
            load[list(taken)] += 60.0
        assert (np.maximum(load - wind, 0.0) <= 60.0).all(), slots
    finally:
        held.release()
        await planning.stop()


async def test_a_move_that_does_not_start_now_goes_to_the_moved_hook() -> None:
    """First decisions and starts go to the job's listener at once; a deferred job a full
    round moves to a later start goes to ``moved`` (the operator steps it after the
    arrivals)."""
    planning, sites = windy_service(import_limit_kw=1000.0)
    told: list[tuple[str, tuple[int, ...]]] = []
    moved: list[tuple[str, tuple[int, ...]]] = []
    planning.moved = lambda d: moved.append((d.key, d.slots))
    wind = np.zeros(8)
    wind[4:6] = 100.0
    sites["s"] = with_green(sites["s"], wind)
    planning.upsert(demand("a"), lambda d: told.append((d.key, d.slots)))
    await planning.run_round()
    assert told == [("a", (4, 5))] and moved == []  # its first decision: the listener
    later = np.zeros(8)
    later[6:8] = 100.0
    sites["s"] = with_green(sites["s"], later)
    planning.replan()
    await planning.run_round()
    assert moved == [("a", (6, 7))] and len(told) == 1  # moved, not due: the hook
    now = np.zeros(8)
    now[0:2] = 100.0  # the wind comes at once, and no longer later
    sites["s"] = with_green(sites["s"], now)
    planning.replan()
    await planning.run_round()
    assert told[-1] == ("a", (0, 1)) and len(moved) == 1  # now due: the listener

"""What a waiting job's planning costs the operator: its decision and its take, as kept
after a round (``deep_size``: bytes by ``sys.getsizeof``, deterministic, not a timing).

Ten thousand jobs waiting for the same wind hold a few distinct run windows, slot lists,
reasons and requests between them; the planner makes each afresh for every decision,
some 350 bytes a job by ``sys.getsizeof`` (more in the heap) that
:data:`suandian.planning.rounds.SHARED` keeps once. Measured on
1,000 jobs whose decisions all find room, with full rounds in a thread and in the
planner process (whose decisions arrive as copies, and are shared here again)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta, timezone
from typing import Any

import numpy as np
import pytest
from tests.support.memory import deep_size
from tests.unit.controllers.test_commitments import SLOT, T0, FixedClock, demand, service

from suandian.config import Settings
from suandian.controllers.planning import PlanningService
from suandian.controllers.view import ClusterView, NodeRecord
from suandian.planner import JobDecision
from suandian.planning import rounds
from suandian.planning.commitments import Commitment
from suandian.planning.rounds import Shared

JOBS = 1000


def roomy(full_rounds: str) -> PlanningService:
    """:func:`service`'s site with nodes enough for every job and green supply for all."""
    base = service(green=np.full(8, 1e6), import_limit_kw=1e7)
    node = NodeRecord("n1", {"topology.kubernetes.io/region": "r"},
                      {"cpu": 1e6, "memory": 1e6, "pods": 1e6}, True)
    view = ClusterView({"n1": [node]}, {})
    sites = base._sites()
    return PlanningService(dataclasses.replace(Settings(), full_rounds=full_rounds),
                           FixedClock(), lambda: sites, lambda: view)


def per_job(full_rounds: str) -> tuple[float, float]:
    """Bytes a job of its decision and of its take, beyond its demand (its key)."""
    planning = roomy(full_rounds)
    try:
        for i in range(JOBS):
            planning.upsert(demand(f"job-{i}"))
        asyncio.run(planning.run_round())
        decided = planning._decisions
        assert len(decided) == JOBS and all(d.site == "s" for d in decided.values())
        assert len(planning._commitments) == JOBS
        seen: set[int] = set()
        deep_size(planning._demands, seen)  # keys are the demands'
        return (deep_size(decided, seen) / JOBS,
                deep_size(planning._commitments._by_key, seen) / JOBS)
    finally:
        if planning._planner is not None:
            planning._planner.close()


@pytest.mark.parametrize("full_rounds", ["thread", "process"])
def test_a_waiting_jobs_decision_and_take_cost_under_530_bytes(full_rounds: str) -> None:
    decision, take = per_job(full_rounds)
    # unshared: 574 and 154 bytes; shared: 259 (307 from the process) and 114, of which
    # the decision object itself is 200 and the take's 72
    assert decision < 400 and take < 130, f"{decision:.0f} + {take:.0f} bytes a job"


def decision(**changes: Any) -> JobDecision:
    base = JobDecision(
        key="k", site="s", site_index=0, start_slot=2, planned_start=T0 + 2 * SLOT,
        latest_start=T0 + 6 * SLOT, slots=(2, 3), windows=((T0 + 2 * SLOT, T0 + 4 * SLOT),),
        start_now=False, node_preferences=(("n1", 100),), expected_emissions_g=1.0,
        run_now_emissions_g=2.0, expected_green_fraction=1.0, energy_kwh=3.0,
        reason="waiting 30m for wind in s")
    return dataclasses.replace(base, **changes)


def copy(d: JobDecision) -> JobDecision:
    """An equal decision with parts of its own (as the planner makes them)."""
    return dataclasses.replace(
        d, key="".join(d.key), slots=tuple(s for s in d.slots),
        windows=tuple((a + timedelta(0), b + timedelta(0)) for a, b in d.windows),
        reason="".join(d.reason), latest_start=d.latest_start + timedelta(0),
        node_preferences=tuple(tuple(p) for p in d.node_preferences))


def test_equal_decisions_share_their_parts_and_stay_equal() -> None:
    table = Shared()
    first = table.decision(decision())
    again = copy(decision(key="other"))
    second = table.decision(again)
    assert second == again and second is not again
    for name in ("slots", "windows", "reason", "latest_start", "node_preferences"):
        assert getattr(second, name) is getattr(first, name), name
    assert table.decision(first) is first  # nothing to share: the same object
    key = "".join(["oth", "er"])
    assert table.decision(again, key=key).key is key  # the caller's own string
    assert table.decision(again, key="different").key == "other"  # only an equal key


def test_times_of_other_zones_and_slots_of_other_types_are_kept_apart() -> None:
    table = Shared()
    table.decision(decision())
    plus8 = timezone(timedelta(hours=8))
    there = decision(latest_start=(T0 + 6 * SLOT).astimezone(plus8),
                     windows=tuple((a.astimezone(plus8), b.astimezone(plus8))
                                   for a, b in decision().windows))
    shared = table.decision(there)
    assert shared.latest_start.tzinfo is plus8 and shared.windows[0][0].tzinfo is plus8
    floats = table.decision(decision(slots=(2.0, 3.0)))
    assert all(type(s) is float for s in floats.slots)


def test_takes_share_read_only_arrays_and_the_callers_stay_writeable() -> None:
    table = Shared()
    mine = np.array([10, 11])
    a = table.commitment(Commitment("s", mine, 5.0, np.array([1.0, 2.0])))
    b = table.commitment(Commitment("s", np.array([10, 11]), 7.0, np.array([1.0, 2.0])))
    assert a.slots is b.slots and a.request is b.request and b.kw == 7.0
    assert not a.slots.flags.writeable and mine.flags.writeable
    assert np.array_equal(a.slots, mine) and a.slots is not mine
    c = table.commitment(Commitment("s", np.array([10, 11], dtype=np.int32), 5.0, None))
    assert c.slots.dtype == np.int32 and c.request is None  # another dtype: apart


def test_a_full_table_starts_afresh() -> None:
    table = Shared(limit=3)
    for i in range(10):
        table.one(("reason", str(i)), str(i))
    assert len(table) <= 3


def test_the_rounds_share_through_the_process_table() -> None:
    assert isinstance(rounds.SHARED, Shared) and rounds.SHARED.limit >= 10_000

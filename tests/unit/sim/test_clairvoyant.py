"""The clairvoyant planner (the oracle's problem planned in one round), plain and from
the round's prices (:mod:`suandian.planner.prices`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from suandian.sim.oracle_policy import clairvoyant, replay_emissions
from suandian.sim.run import build_world
from suandian.sim.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[3] / "hack" / "scenarios" / (
    "contended-continental.yaml")


def test_the_priced_plan_places_every_job_within_its_window_and_the_room_and_emits_less(
        ) -> None:
    # two nights of the contended grid-only week (80 jobs, room for 10 at once): planned
    # from the prices, 33.54 t against 33.66 t for the greedy start
    world = build_world(load_scenario(str(SCENARIO)), days=2)
    plain, _ = clairvoyant(world)
    priced, schedule = clairvoyant(world, priced=True)
    assert priced < plain - 50_000.0
    assert replay_emissions(world, schedule) == priced
    assert sorted(int(k) for k in schedule) == [j.index for j in world.jobs]
    use = np.zeros((len(world.names), world.slots, len(world.resources)))
    for key, (site, slots) in schedule.items():
        job = world.jobs[int(key)]
        assert len(slots) == job.n and job.submit <= min(slots) and max(slots) < job.deadline
        if not job.interruptible:
            assert list(slots) == list(range(slots[0], slots[0] + job.n))
        use[site, list(slots)] += job.resources
    assert (use <= world.capacity[:, None, :] + 1e-9).all()

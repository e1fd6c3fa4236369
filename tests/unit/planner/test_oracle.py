"""The oracle against brute force, its MIP start, and its limits."""

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import pytest

from suandian.errors import PlanningError
from suandian.planner import Snapshot
from suandian.planner.oracle import solve_oracle
from unit.planner.synthetic import job, site, snapshot


def _emissions(snap: Snapshot, choice: dict[str, tuple[int, tuple[int, ...]]]) -> float:
    green = snap.stacked("green_p50_kw")
    carbon = snap.stacked("carbon_g_per_kwh")
    load = np.zeros_like(green)
    for j in snap.jobs:
        s, slots = choice[j.key]
        load[s, list(slots)] += j.power_w / 1000.0 * snap.sites[s].pue
    return float(((load - np.minimum(load, green)) * carbon).sum())


def _brute_force(snap: Snapshot) -> float:
    options = []
    for j in snap.jobs:
        n = int(j.duration / timedelta(hours=1))
        last = int((j.deadline - j.earliest_start) / timedelta(hours=1)) - n
        options.append([(j.key, (s, tuple(range(k, k + n))))
                        for s in range(len(snap.sites)) for k in range(last + 1)])
    return min(_emissions(snap, dict(combo)) for combo in itertools.product(*options))


def test_matches_brute_force_on_a_tiny_instance() -> None:
    rng = np.random.default_rng(5)
    sites = [site("a", rng.choice([0.0, 60.0, 120.0], 8), rng.uniform(200, 800, 8)),
             site("b", rng.choice([0.0, 80.0], 8), rng.uniform(200, 800, 8))]
    jobs = [job("x", kw=100, hours=2, slack=4), job("y", kw=60, hours=3, slack=3),
            job("z", kw=40, hours=1, slack=5)]
    snap = snapshot(sites, jobs)
    result = solve_oracle(snap)
    assert result.optimal
    assert result.emissions_g == pytest.approx(_brute_force(snap), rel=1e-6, abs=1e-3)
    assert result.emissions_g == pytest.approx(_emissions(snap, result.schedule), rel=1e-6)
    assert result.bound_g <= result.emissions_g + 1e-6


def test_interruptible_jobs_may_split_and_the_start_is_used() -> None:
    g = np.zeros(12)
    g[[2, 5, 9]] = 100.0
    snap = snapshot([site("a", g, 500.0)], [job("j", kw=100, hours=3, slack=9,
                                               interruptible=True)])
    start = {"j": (0, (0, 1, 2))}
    result = solve_oracle(snap, start=start)
    assert result.schedule["j"] == (0, (2, 5, 9))
    assert result.emissions_g == pytest.approx(0.0, abs=1e-6)


def test_too_large_or_impossible_instances_are_refused() -> None:
    snap = snapshot([site("a", np.zeros(6), 500.0)], [job("j", hours=2, slack=10, start=5)])
    with pytest.raises(PlanningError, match="does not fit"):
        solve_oracle(snap)
    snap = snapshot([site("a", np.zeros(24), 500.0)], [job("j", hours=2, slack=20)])
    with pytest.raises(PlanningError, match="too large"):
        solve_oracle(snap, max_variables=5)

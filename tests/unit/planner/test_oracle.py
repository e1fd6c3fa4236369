"""The oracle against brute force, its MIP start, and its limits."""

from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suandian.errors import PlanningError
from suandian.planner import JobDemand, Snapshot
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


# --- cold starts against brute force and an independent LP bound ---------------------

def _options(snap: Snapshot, j: JobDemand) -> list[tuple[int, tuple[int, ...]]]:
    """Every (site, slots) a job may take: windows, or any n slots if interruptible."""
    n = int(j.duration / timedelta(hours=1))
    first = int((j.earliest_start - snap.now) / timedelta(hours=1))
    end = min(snap.slots, int((j.deadline - snap.now) / timedelta(hours=1)))
    sites = j.allowed_sites if j.allowed_sites is not None else range(len(snap.sites))
    if j.interruptible:
        sets = list(itertools.combinations(range(first, end), n))
    else:
        sets = [tuple(range(k, k + n)) for k in range(first, end - n + 1)]
    return [(s, slots) for s in sites for slots in sets]


def _exhaustive(snap: Snapshot) -> float:
    """The least emissions over every combination of every job's options."""
    options = [[(j.key, o) for o in _options(snap, j)] for j in snap.jobs]
    return min(_emissions(snap, dict(combo)) for combo in itertools.product(*options))


def _fluid_bound(snap: Snapshot) -> float:
    """An LP written independently of the oracle, solved with scipy's ``linprog``: each
    job may spread over its allowed sites and slots, ``f[j,s,t] ∈ [0, 1]`` of its power in
    each slot, ``Σ f = n_j``; green ``g ≤ G`` and ``g ≤ load``. Every schedule is a point
    of it, so its optimum is a lower bound on the true optimum."""
    from scipy.optimize import linprog

    S, T = len(snap.sites), snap.slots  # noqa: N806
    green = snap.stacked("green_p50_kw")
    carbon = snap.stacked("carbon_g_per_kwh")
    cols: list[tuple[int, int, int]] = []
    for ji, j in enumerate(snap.jobs):
        first = int((j.earliest_start - snap.now) / timedelta(hours=1))
        end = min(T, int((j.deadline - snap.now) / timedelta(hours=1)))
        for s in j.allowed_sites if j.allowed_sites is not None else range(S):
            cols += [(ji, s, t) for t in range(first, end)]
    nf, ng = len(cols), S * T
    q = np.array([snap.jobs[ji].power_w / 1000.0 * snap.sites[s].pue for ji, s, _ in cols])
    cell = np.array([s * T + t for _, s, t in cols])
    cost = np.concatenate([q * carbon.ravel()[cell], -carbon.ravel()])
    a_eq = np.zeros((len(snap.jobs), nf + ng))
    for c, (ji, _, _) in enumerate(cols):
        a_eq[ji, c] = 1.0
    b_eq = [int(j.duration / timedelta(hours=1)) for j in snap.jobs]
    a_ub = np.zeros((ng, nf + ng))  # g - load ≤ 0
    a_ub[cell, np.arange(nf)] = -q
    a_ub[np.arange(ng), nf + np.arange(ng)] = 1.0
    bounds = [(0.0, 1.0)] * nf + [(0.0, float(g)) for g in green.ravel()]
    res = linprog(cost, A_ub=a_ub, b_ub=np.zeros(ng), A_eq=a_eq, b_eq=b_eq, bounds=bounds)
    assert res.status == 0, res.message
    return float(res.fun)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_cold_oracle_matches_exhaustive_search_and_an_independent_lp_bound(
        data: st.DataObject) -> None:
    """No MIP start: the oracle alone must find the optimum that trying every schedule
    finds, interruptible jobs included, and its proven bound must lie between an
    independent LP relaxation and that optimum."""
    slots = data.draw(st.integers(5, 7))
    nsites = data.draw(st.integers(1, 2))
    sites = [site(f"s{s}", data.draw(st.lists(st.sampled_from([0.0, 40.0, 90.0, 150.0]),
                                              min_size=slots, max_size=slots)),
                  data.draw(st.lists(st.floats(100, 800), min_size=slots, max_size=slots)),
                  pue=data.draw(st.sampled_from([1.0, 1.2])))
             for s in range(nsites)]
    jobs = []
    for i in range(data.draw(st.integers(1, 3))):
        hours = data.draw(st.integers(1, 2))
        start = data.draw(st.integers(0, 2))
        slack = data.draw(st.integers(0, slots - start - hours))
        jobs.append(job(f"j{i}", kw=data.draw(st.sampled_from([30.0, 80.0, 120.0])),
                        hours=hours, start=start, slack=slack,
                        interruptible=data.draw(st.booleans()),
                        allowed_sites=tuple(sorted(data.draw(st.sets(
                            st.integers(0, nsites - 1), min_size=1))))))
    snap = snapshot(sites, jobs)
    best = _exhaustive(snap)
    cold = solve_oracle(snap, mip_rel_gap=0.0)
    tol = 1e-6 * max(1.0, best) + 1e-3
    assert cold.optimal and cold.start_g is None and not cold.returned_start
    assert cold.emissions_g == pytest.approx(best, rel=1e-6, abs=1e-3)
    assert cold.emissions_g == pytest.approx(_emissions(snap, cold.schedule), rel=1e-6,
                                             abs=1e-3)
    fluid = _fluid_bound(snap)
    relaxed = solve_oracle(snap, relax=True).bound_g
    loose = solve_oracle(snap, relax=True, tighten=False).bound_g
    assert fluid <= relaxed + tol  # the oracle's LP is at least as tight as the fluid one
    assert loose <= relaxed + tol  # the tightened green row only tightens
    assert relaxed <= best + tol
    assert fluid <= cold.bound_g + tol and cold.bound_g <= best + tol


def test_a_start_the_solver_cannot_improve_is_reported_as_such() -> None:
    g = np.zeros(6)
    g[[1, 2]] = 100.0
    snap = snapshot([site("a", g, 500.0)], [job("j", kw=100, hours=2, slack=4)])
    best = solve_oracle(snap, start={"j": (0, (1, 2))})
    assert best.start_g == pytest.approx(0.0, abs=1e-6) and best.returned_start
    worse = solve_oracle(snap, start={"j": (0, (0, 1))})
    assert worse.start_g == pytest.approx(100 * 500.0, rel=1e-9)  # 1 h of grid at 500 g/kWh
    assert not worse.returned_start and worse.emissions_g == pytest.approx(0.0, abs=1e-6)


def test_the_neighbourhood_search_improves_a_poor_start_and_stays_feasible() -> None:
    """20 jobs (more than one neighbourhood), all started at once in the dark: the
    search (run first, with no full solve before it) must find a schedule better than the
    start, feasible, and exactly as costly as the oracle says."""
    g = np.tile([0.0, 0.0, 0.0, 0.0, 120.0, 120.0, 120.0, 120.0], 3)
    snap = snapshot([site("a", g, 500.0), site("b", np.roll(g, 2), 400.0)],
                    [job(f"j{i}", kw=30.0 + 5 * (i % 4), hours=1 + i % 2, slack=12,
                         start=i % 4, interruptible=i % 3 == 0) for i in range(20)])
    start = {j.key: (0, tuple(range(int((j.earliest_start - snap.now).total_seconds() // 3600),
                                    int((j.earliest_start - snap.now).total_seconds() // 3600)
                                    + int(j.duration / timedelta(hours=1)))))
             for j in snap.jobs}
    result = solve_oracle(snap, start=start, time_limit_s=4.0, first_share=0.0,
                          neighbourhood_share=0.5)
    assert result.start_g is not None
    assert result.start_g == pytest.approx(_emissions(snap, start), rel=1e-9)
    assert result.emissions_g < result.start_g and not result.returned_start
    assert result.emissions_g == pytest.approx(_emissions(snap, result.schedule), rel=1e-6,
                                               abs=1e-3)
    assert result.bound_g <= result.emissions_g + 1e-6
    for j in snap.jobs:
        site_index, slots = result.schedule[j.key]
        assert site_index in (0, 1)
        first = int((j.earliest_start - snap.now) / timedelta(hours=1))
        end = int((j.deadline - snap.now) / timedelta(hours=1))
        assert len(slots) == int(j.duration / timedelta(hours=1))
        assert first <= min(slots) and max(slots) < end
        assert j.interruptible or list(slots) == list(range(slots[0], slots[0] + len(slots)))

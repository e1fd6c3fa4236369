"""The oracle against brute force, its MIP start, and its limits."""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import replace
from datetime import timedelta

import highspy
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from suandian.errors import PlanningError
from suandian.planner import JobDemand, Snapshot
from suandian.planner.oracle import solve_oracle
from suandian.planner.oracle_model import BlockModel, Instance
from suandian.planner.oracle_search import Work, lp_bound, solve_block
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
    assert 0.0 <= cold.bound_g <= cold.emissions_g
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


def _earliest_start(snap: Snapshot) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Every job at once on its first allowed site: a poor but feasible start when
    capacity and import limits are loose."""
    out = {}
    for j in snap.jobs:
        first = int((j.earliest_start - snap.now) / timedelta(hours=1))
        n = int(j.duration / timedelta(hours=1))
        home = j.allowed_sites[0] if j.allowed_sites else 0
        out[j.key] = (home, tuple(range(first, first + n)))
    return out


def _check_schedule(snap: Snapshot, schedule: dict[str, tuple[int, tuple[int, ...]]]) -> None:
    for j in snap.jobs:
        site_index, slots = schedule[j.key]
        assert j.allowed_sites is None or site_index in j.allowed_sites
        first = int((j.earliest_start - snap.now) / timedelta(hours=1))
        end = int((j.deadline - snap.now) / timedelta(hours=1))
        assert len(slots) == int(j.duration / timedelta(hours=1))
        assert first <= min(slots) and max(slots) < end
        assert j.interruptible or list(slots) == list(range(slots[0], slots[0] + len(slots)))


def _twenty_jobs() -> Snapshot:
    g = np.tile([0.0, 0.0, 0.0, 0.0, 120.0, 120.0, 120.0, 120.0], 3)
    return snapshot([site("a", g, 500.0), site("b", np.roll(g, 2), 400.0)],
                    [job(f"j{i}", kw=30.0 + 5 * (i % 4), hours=1 + i % 2, slack=12,
                         start=i % 4, interruptible=i % 3 == 0) for i in range(20)])


def test_the_neighbourhood_search_improves_a_poor_start_and_stays_feasible() -> None:
    """20 jobs (more than one neighbourhood of 8), all started at once in the dark: the
    search alone (no whole MILP before it) must find a schedule better than the start,
    feasible, and exactly as costly as it says."""
    snap = _twenty_jobs()
    inst = Instance.from_snapshot(snap)
    model = BlockModel(inst, list(range(20)), 0, snap.slots, np.zeros((2, snap.slots)))
    start = _earliest_start(snap)
    x0 = model.vector(start)
    assert x0 is not None and model.emissions(x0) == pytest.approx(_emissions(snap, start))
    result = solve_block(model, Work(rounds=6, free_jobs=8), x0, lp_g=lp_bound(model),
                         full=False)
    assert result.rounds == 6 and result.improved
    assert result.start_g is not None and result.emissions_g < result.start_g
    schedule = model.schedule(result.x)
    assert result.emissions_g == pytest.approx(_emissions(snap, schedule), rel=1e-6, abs=1e-3)
    assert inst.feasible(schedule)
    _check_schedule(snap, schedule)
    assert 0.0 <= result.bound_g <= result.emissions_g + 1e-6


def _contended(seed: int, jobs: int = 60, slots: int = 48) -> Snapshot:
    """Enough jobs and starts (over 5,000 columns) that the oracle goes straight to the
    neighbourhood search from its start, and stops at the work limit short of optimal."""
    rng = np.random.default_rng(seed)
    sun = np.clip(np.sin(np.linspace(0, 4 * np.pi, slots)), 0, None)
    sites = [site(f"s{s}", 300.0 * sun * rng.uniform(0.5, 1.5), rng.uniform(300, 700, slots))
             for s in range(3)]
    return snapshot(sites, [job(f"j{i}", kw=float(rng.choice([40.0, 90.0, 150.0])),
                                hours=int(rng.integers(1, 4)), start=int(rng.integers(0, 8)),
                                slack=float(rng.integers(20, 36)),
                                interruptible=bool(i % 4 == 0)) for i in range(jobs)])


SMALL = Work(free_jobs=8, round_nodes=50)  # quick neighbourhoods for tests


def test_the_oracle_reads_no_clock_and_sets_no_time_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Determinism: the same inputs give the same schedule, emissions and bound with every
    Python clock jumping an hour a call (a wall-clock budget anywhere in the search would
    stop it at once), and every HiGHS solve runs single-threaded, seeded, without a time
    limit, stopped by work limits."""
    snap = _contended(3)
    start = _earliest_start(snap)
    plain = solve_oracle(snap, start=start, limit=4, work=SMALL)
    assert plain.start_g is not None and plain.emissions_g < plain.start_g
    assert plain.neighbourhoods == 3 and not plain.optimal  # stopped by the work limit

    spied: list[highspy.Highs] = []

    class Spy(highspy.Highs):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            spied.append(self)

    clock = itertools.count()
    for name in ("perf_counter", "monotonic", "time", "process_time"):
        monkeypatch.setattr(time, name, lambda: 3600.0 * next(clock))
    monkeypatch.setattr(highspy, "Highs", Spy)
    jumpy = solve_oracle(snap, start=start, limit=4, work=SMALL)
    assert spied
    for h in spied:
        assert h.getOptionValue("time_limit")[1] == math.inf
        assert h.getOptionValue("threads")[1] == 1 and h.getOptionValue("random_seed")[1] == 0
    assert any(h.getOptionValue("mip_max_nodes")[1] < 10**6 for h in spied)  # MILPs: limited
    monkeypatch.undo()
    assert jumpy.schedule == plain.schedule
    assert jumpy.emissions_g == plain.emissions_g and jumpy.bound_g == plain.bound_g
    more = solve_oracle(snap, start=start, limit=7, work=SMALL)  # more work: never worse
    assert more.emissions_g <= plain.emissions_g and more.neighbourhoods == 5


def test_the_bound_is_never_negative_and_zero_emissions_are_optimal() -> None:
    """Green to spare: the optimum emits nothing; the bound is 0, not the LP's or the
    solver's negative value of the green columns, and 0 of 0 is optimal."""
    snap = snapshot([site("a", np.full(8, 1000.0), 500.0)],
                    [job(f"j{i}", kw=50.0, hours=2, slack=4) for i in range(3)])
    result = solve_oracle(snap)
    assert result.emissions_g == pytest.approx(0.0, abs=1e-6)
    assert result.bound_g == 0.0 and result.gap == 0.0 and result.optimal
    relaxed = solve_oracle(snap, relax=True)
    assert relaxed.bound_g >= 0.0


def test_the_deprecated_time_limit_is_ignored() -> None:
    snap = _twenty_jobs()
    with pytest.warns(DeprecationWarning, match="work limit"):
        old = solve_oracle(snap, time_limit_s=0.001)
    assert old.schedule == solve_oracle(snap).schedule


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_blocks_bound_the_optimum_from_below_and_schedule_it_feasibly(
        data: st.DataObject) -> None:
    """The decomposition against the monolithic MILP solved to optimality: the blocks'
    summed bound ≤ the optimum ≤ the blocks' schedule, which is feasible (capacity that
    fits one or two jobs at a time couples the blocks) and, from a start, never worse
    than it."""
    slots = data.draw(st.integers(10, 16))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    cpu = data.draw(st.sampled_from([2.0, 3.0, 1e6]))
    sites = [site(f"s{s}", rng.choice([0.0, 60.0, 150.0], slots), rng.uniform(200, 800, slots),
                  cpu=cpu) for s in range(2)]
    jobs = []
    for i in range(data.draw(st.integers(3, 8))):
        hours = data.draw(st.integers(1, 3))
        start = data.draw(st.integers(0, slots - hours - 2))
        slack = data.draw(st.integers(1, slots - start - hours))
        jobs.append(job(f"j{i}", kw=data.draw(st.sampled_from([40.0, 90.0, 150.0])),
                        hours=hours, start=start, slack=slack,
                        interruptible=data.draw(st.booleans())))
    snap = snapshot(sites, jobs)
    try:
        best = solve_oracle(snap, mip_rel_gap=0.0)
    except PlanningError:
        event("infeasible")
        return  # no feasible schedule: nothing to compare
    assert best.gap <= 1e-6
    tol = 1e-6 * max(1.0, best.emissions_g) + 1e-3
    block_columns = data.draw(st.integers(5, 40))
    by_blocks = solve_oracle(snap, decompose=True, block_columns=block_columns)
    event(f"blocks: {min(by_blocks.blocks, 3)}{'+' if by_blocks.blocks > 2 else ''}")
    event(f"bound below the optimum: {by_blocks.bound_g < best.emissions_g - tol}")
    assert by_blocks.bound_g <= best.emissions_g + tol
    assert best.emissions_g <= by_blocks.emissions_g + tol
    assert by_blocks.emissions_g == pytest.approx(_emissions(snap, by_blocks.schedule),
                                                  rel=1e-6, abs=1e-3)
    assert Instance.from_snapshot(snap).feasible(by_blocks.schedule)
    _check_schedule(snap, by_blocks.schedule)
    start = _earliest_start(snap)
    if Instance.from_snapshot(snap).feasible(start):
        warm = solve_oracle(snap, decompose=True, block_columns=block_columns, start=start)
        assert warm.emissions_g <= _emissions(snap, start) + tol
        assert warm.bound_g <= best.emissions_g + tol  # still a bound, from a start
        if by_blocks.blocks > 1:  # the blocks' LP values: a start does not change them
            assert warm.bound_g == pytest.approx(by_blocks.bound_g, rel=1e-9, abs=1e-6)
        # (one block: the MILP's dual bound joins the LP's, and a start changes the
        # search, so the dual bound it proves may differ; both bound the optimum)


def test_a_full_solve_gets_fewer_nodes_the_larger_its_block(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The full MILP's node limit is ``node_work`` over the block's binary columns (5,000
    nodes of a 2,800-column block ran for minutes), at least 100 and at most ``nodes``;
    unproven after the neighbourhoods, the full solve runs again from the better
    incumbent, and what it returns is a schedule (it once compared arrays with ``or``)."""
    rng = np.random.default_rng(1)
    snap = snapshot([site("a", np.zeros(24), rng.uniform(100, 700, 24), cpu=3.0)], [
        job(f"j{i}", kw=float(rng.choice([40.0, 90.0, 150.0])), hours=int(rng.integers(1, 4)),
            start=int(rng.integers(0, 6)), slack=12.0) for i in range(20)])
    inst = Instance.from_snapshot(snap)
    model = BlockModel(inst, list(range(20)), 0, snap.slots, np.zeros((1, snap.slots)))
    start = model.vector(_earliest_start(snap))
    limits: list[int] = []
    real = highspy.Highs.setOptionValue

    def spy(self: highspy.Highs, name: str, value: object) -> object:
        if name == "mip_max_nodes":
            limits.append(int(value))  # type: ignore[call-overload]
        return real(self, name, value)

    monkeypatch.setattr(highspy.Highs, "setOptionValue", spy)
    work = Work(nodes=5_000, node_work=150 * model.nx, rounds=2, free_jobs=8, round_nodes=5,
                target_gap=-1.0)  # never proven close enough: every step runs
    result = solve_block(model, work, start, lp_g=lp_bound(model), full=True)
    assert limits[0] == 150 and limits[-1] == 150  # the full solves, before and after
    assert 5 in limits  # the neighbourhoods'
    assert result.rounds == 2 and inst.feasible(model.schedule(result.x))
    limits.clear()
    solve_block(model, replace(work, node_work=1), start, lp_g=lp_bound(model), full=True)
    assert limits[0] == 100  # never fewer than 100


def test_rolling_blocks_that_leave_the_next_no_room_are_solved_together() -> None:
    """Without a start, blocks are solved in time order, each with the ones before held:
    the first block's job takes the clean slots 2-3, where the second block's job must
    run (one job at a time). The second block then has no schedule; it is solved again
    together with the first, which moves to slots 0-1 (found by the property above)."""
    carbon = np.array([500.0, 500.0, 100.0, 100.0, 500.0, 500.0])
    snap = snapshot([site("a", np.zeros(6), carbon, cpu=1.0)],
                    [job("free", kw=50.0, hours=2, start=0, slack=2.0),
                     job("fixed", kw=50.0, hours=2, start=2, slack=0.0)])
    result = solve_oracle(snap, decompose=True, block_columns=3)
    assert result.schedule == {"free": (0, (0, 1)), "fixed": (0, (2, 3))}
    assert result.blocks == 1  # the two blocks became one

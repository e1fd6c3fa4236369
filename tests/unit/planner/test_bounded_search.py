"""The planner's shortcuts make the same plans as scoring everything.

``choose.BOUNDED`` switches the bounded search (a window job's choice found on the few
sites and starts whose delay cost alone could make them cheapest, an interruptible job's
first slots at the site of least delay cost) off: every site × start is scored then, as
before the shortcut. Both must give the same decisions, figures and reasons, decision for
decision; and the ledger's all-green commit must do the arithmetic of the general one.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suandian.planner import JobDemand, PlanParams, SiteSupply, Snapshot, choose, plan
from suandian.planner.ledger import Ledger

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SLOT = timedelta(minutes=15)


def _world(seed: int, jobs: int, sites: int, slots: int, capacity: float) -> Snapshot:
    """Sites with sun and wind, jobs of the benchmark's shapes (hack/bench_planner.py)
    at a small size, ``capacity`` the share of its room: contended when small."""
    rng = np.random.default_rng(seed)
    t = np.arange(slots) * SLOT.total_seconds() / 3600.0
    supplies = []
    for s in range(sites):
        solar = np.clip(np.sin((t % 24 - 6 + rng.uniform(-1, 1)) / 12 * np.pi), 0, None)
        wind = np.clip(0.4 + 0.3 * np.sin(t / rng.uniform(5, 20) + rng.uniform(0, 6)), 0, 1)
        # grid only, scarce green, plenty (even seeds: green everywhere, as the benchmark)
        scale = float(rng.choice([0.0, 0.05, 1.0] if seed % 2 else [1.0, 5.0]))
        green = scale * (200 * rng.uniform(0.3, 1.0) * solar + 150 * rng.uniform(0, 1) * wind)
        supplies.append(SiteSupply(
            name=f"site-{s}", green_p50_kw=green, green_p10_kw=0.7 * green,
            carbon_g_per_kwh=rng.uniform(300, 800) * (1 + 0.1 * np.sin(t / 4)),
            import_limit_kw=np.full(slots, float(rng.choice([40.0, 600.0]))),
            pue=float(rng.uniform(1.1, 1.4)),
            capacity=np.full((3, slots), [[200.0 * capacity], [800.0 * capacity],
                                          [20.0 * capacity]]),
            green_by_source_kw={"solar": 200 * solar, "wind": 150 * wind}))
    shapes = [(np.array([8.0, 32.0, 0.0]), 150.0), (np.array([32.0, 256.0, 8.0]), 6000.0),
              (np.array([4.0, 16.0, 0.0]), 60.0), (np.array([16.0, 64.0, 1.0]), 800.0)]
    horizon_h = slots * SLOT.total_seconds() / 3600.0
    demand = []
    for i in range(jobs):
        res, watts = shapes[i % len(shapes)]
        hours = float(rng.choice([0.25, 0.5, 1, 2, 4, 8]))
        start = float(rng.choice([0.0, rng.uniform(0, horizon_h / 4)]))
        slack = float(rng.uniform(0, horizon_h / 2))
        allowed = None if i % 4 else tuple(int(x) for x in rng.choice(
            sites, size=min(3, sites), replace=False))
        demand.append(JobDemand(
            key=f"job-{i:04d}", resources=res, power_w=watts * float(rng.uniform(0.5, 2)),
            duration=timedelta(hours=hours), earliest_start=NOW + timedelta(hours=start),
            deadline=NOW + timedelta(hours=start + hours + slack),
            interruptible=bool(i % 5 == 0), allowed_sites=allowed,
            priority=int(rng.integers(0, 3)),
            policy=str(rng.choice(["Optimize"] * 8 + ["PlaceOnly", "RunNow"]))))
    return Snapshot(now=NOW, slot=SLOT, resources=("cpu", "memory", "nvidia.com/gpu"),
                    sites=tuple(supplies), jobs=tuple(demand))


def _decisions(snap: Snapshot, params: PlanParams, bounded: bool,
               monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, ...]]:
    monkeypatch.setattr(choose, "BOUNDED", bounded)
    result = plan(snap, params)
    return [tuple(getattr(d, f.name) for f in dataclasses.fields(d)) for d in result.decisions]


PARAMS = [
    PlanParams(),
    PlanParams(risk_aversion=0.0, delay_penalty_share_h=0.01),
    PlanParams(delay_penalty_g_per_kwh_h=0.5, delay_penalty_share_h=0.0),
    PlanParams(improvement_passes=0),
]


@pytest.mark.parametrize("capacity", [1.0, 0.2, 0.05])
@pytest.mark.parametrize("which", range(len(PARAMS)))
def test_the_bounded_search_makes_the_plan_of_scoring_everything(
        capacity: float, which: int, monkeypatch: pytest.MonkeyPatch) -> None:
    snap = _world(seed=which, jobs=300, sites=8, slots=96, capacity=capacity)
    full = _decisions(snap, PARAMS[which], False, monkeypatch)
    assert _decisions(snap, PARAMS[which], True, monkeypatch) == full


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), jobs=st.integers(1, 60), sites=st.integers(1, 6),
       capacity=st.sampled_from([1.0, 0.3, 0.05]), which=st.integers(0, len(PARAMS) - 1))
def test_the_bounded_search_makes_the_same_plan_on_random_worlds(
        seed: int, jobs: int, sites: int, capacity: float, which: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    snap = _world(seed, jobs, sites, 48, capacity)
    full = _decisions(snap, PARAMS[which], False, monkeypatch)
    assert _decisions(snap, PARAMS[which], True, monkeypatch) == full


@pytest.mark.parametrize("seed", [0, 1])
def test_ties_between_twin_sites_go_as_in_the_full_pass(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sites alike in every figure tie on every bound and cost: the first in order wins
    there, with or without the bounded search."""
    snap = _world(seed, 200, 3, 96, 0.2)
    twins = tuple(dataclasses.replace(snap.sites[i % 2], name=f"twin-{i}") for i in range(5))
    snap = dataclasses.replace(snap, sites=twins)
    full = _decisions(snap, PlanParams(), False, monkeypatch)
    assert _decisions(snap, PlanParams(), True, monkeypatch) == full


def test_an_all_green_commit_does_the_general_arithmetic() -> None:
    snap = _world(seed=3, jobs=1, sites=2, slots=24, capacity=1.0)
    rng = np.random.default_rng(5)
    for _ in range(200):
        ledger = Ledger.from_snapshot(snap, 8)
        ledger.green50[:] = rng.uniform(0, 50, ledger.green50.shape)
        ledger.green10[:] = np.minimum(ledger.green50, rng.uniform(0, 50, ledger.green50.shape))
        site, start, n = int(rng.integers(0, 2)), int(rng.integers(0, 20)), int(rng.integers(1, 12))
        q = float(rng.uniform(0, 1)) * float(ledger.green10[site, start:start + n].min())
        w = slice(start, start + n)
        g50, g10 = ledger.green50[site, w].copy(), ledger.green10[site, w].copy()
        imports, load = ledger.imports[site, w].copy(), ledger.load[site, w].copy()
        u50 = np.minimum(q, g50)  # the general arithmetic (Ledger.commit's other branch)
        want_grams = float(np.dot(q - u50, ledger.carbon[site, w])) * ledger.h
        want_share = float(u50.sum()) / (q * n) if q > 0 else 1.0
        assert ledger.emissions(site, w, q) == (want_grams, want_share)
        grams, share = ledger.commit(site, np.arange(start, start + n), q, np.ones(3))
        assert (grams, share) == (want_grams, want_share)
        assert np.array_equal(ledger.green50[site, w], g50 - u50)
        assert np.array_equal(ledger.green10[site, w], g10 - np.minimum(q, g10))
        assert np.array_equal(ledger.imports[site, w], imports - (q - u50))
        assert np.array_equal(ledger.load[site, w], load + q)


def test_green_p10_stays_at_most_p50_through_a_plan() -> None:
    """The all-green shortcuts read P10 for both bands: P10 must never exceed P50."""
    snap = _world(seed=7, jobs=200, sites=4, slots=96, capacity=0.2)
    result = plan(snap)
    assert result.decisions
    ledger = Ledger.from_snapshot(snap, 40)
    assert (ledger.green10 <= ledger.green50).all()
    for d in result.decisions[:50]:
        if d.site_index is not None:
            slots = np.asarray(d.slots)
            ledger.commit(d.site_index, slots, 1.0, None)
            assert (ledger.green10 <= ledger.green50).all()
            ledger.release(d.site_index, slots, 1.0, None)
            assert (ledger.green10 <= ledger.green50).all()

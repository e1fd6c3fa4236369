"""The oracle answers the grid too: every shed is a ceiling on its import, a tariff a
weighted cost, so the optimum the policies are judged against is the grid's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from tests.unit.sim.test_grid_events import TOU, scenario

from suandian.planner.grid import GridAsk
from suandian.sim.grid_events import SimEvent, figures, shed_limits_kw
from suandian.sim.oracle_policy import oracle_snapshot
from suandian.sim.run import build_world, simulate
from suandian.sim.scenario import parse_scenario

T0 = datetime(2026, 6, 1, tzinfo=UTC)
# the hours where the oracle, unasked, imports most: 3.1 MW at the Yangtze River Delta
# at 03:00 UTC on the third day of the two-day east-data-west-computing run (measured)
NIGHT = {"start": "2026-06-03T02:00:00Z", "end": "2026-06-03T05:00:00Z"}


def shed(name: str, sites: list[str], shed: dict[str, float], *, mandatory: bool = False,
         **window: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "type": "Shed", "sites": sites, "shed": shed, "mandatory": mandatory,
        **(window or NIGHT)}}


def window_import_kw(report: Any, name: str, site: str, first: int, last: int) -> float:
    world = report.world
    s = world.names.index(site)
    load = report.results[name].load_kw[s, first:last]
    return float(np.maximum(load - world.own_green[s, first:last], 0.0).max())


def test_the_oracle_meets_a_shed_where_it_would_have_imported() -> None:
    first, last = 50, 53  # NIGHT's slots (an hour each from 2026-06-01T00:00Z)
    free = simulate(parse_scenario(scenario([]), base=None), policies=["oracle"])
    assert window_import_kw(free, "oracle", "yangtze-delta", first, last) > 1000.0
    asked = simulate(parse_scenario(scenario([shed("night", ["yangtze-delta"],
                                                   {"ceilingKW": 0})]), base=None),
                     policies=["oracle"])
    assert "cannot" not in asked.oracle_note
    assert window_import_kw(asked, "oracle", "yangtze-delta", first, last) < 1e-3
    assert asked.to_json()["policies"]["oracle"]["shed_compliance"] == 1.0
    assert free.oracle is not None and asked.oracle is not None
    assert asked.oracle.emissions_g >= free.oracle.bound_g  # meeting it costs, never saves


def test_sheds_that_no_schedule_can_meet_are_dropped_and_said() -> None:
    """Import ceilings of 0 everywhere for the whole run: the oracle's bound (above 0 t)
    proves some import is needed, so it solves without them, and the note says why."""
    sites = ["jing-jin-ji", "yangtze-delta", "guangdong", "chengyu", "guizhou",
             "inner-mongolia", "ningxia", "gansu"]
    everything = shed("always", sites, {"ceilingKW": 0}, mandatory=True,
                      start="2026-06-01T00:00:00Z", end="2026-06-04T00:00:00Z")
    report = simulate(parse_scenario(scenario([everything]), base=None),
                      policies=["oracle"])
    assert "sheds cannot all be met within the deadlines" in report.oracle_note
    assert report.to_json()["policies"]["oracle"]["deadline_misses"] == 0


def test_a_reduction_is_a_ceiling_under_run_nows_import() -> None:
    world = build_world(parse_scenario(scenario([shed("cut", ["guangdong"],
                                                      {"reductionKW": 500})]), base=None))
    s = world.names.index("guangdong")
    baseline = world.own_green + 2000.0  # run-now imports 2 MW everywhere
    limits = np.asarray(oracle_snapshot(world, baseline).sites[s].import_limit_kw)
    assert limits[50:53] == pytest.approx([1500.0] * 3)
    assert np.all(limits[:50] == world.import_limit[s])
    assert np.all(limits[53:] == world.import_limit[s])
    with pytest.raises(ValueError, match="reduction"):
        oracle_snapshot(world)  # a reduction needs its baseline
    free = oracle_snapshot(world, baseline, sheds=False).sites[s].import_limit_kw
    assert np.all(np.asarray(free) == world.import_limit[s])


def test_a_ceiling_beside_a_surplus_leaves_room_for_the_surplus_only() -> None:
    """A shed bounds import against the site's own green; the oracle counts a surplus
    as green, so its ceiling there is ``C − S`` (at least 0)."""
    ceiling = SimEvent(GridAsk(key="c@0", site=0, start=T0, end=T0 + timedelta(hours=3),
                               ceiling_kw=100.0), 0, 3)
    surplus = SimEvent(GridAsk(key="a@0", site=0, start=T0, end=T0 + timedelta(hours=2),
                               absorb_kw=60.0), 1, 3)
    got = shed_limits_kw([ceiling, surplus], np.zeros((2, 4)), None)
    assert got[0].tolist() == [100.0, 40.0, 40.0, np.inf]
    assert np.all(np.isinf(got[1]))
    bigger = SimEvent(GridAsk(key="b@0", site=0, start=T0, end=T0 + timedelta(hours=1),
                              absorb_kw=500.0), 0, 1)
    assert shed_limits_kw([ceiling, bigger], np.zeros((1, 4)), None)[0, 0] == 0.0


def test_a_surplus_is_free_under_a_tariff() -> None:
    surplus = SimEvent(GridAsk(key="a@0", site=0, start=T0, end=T0 + timedelta(hours=1),
                               absorb_kw=30.0), 0, 1)
    load = np.array([[50.0, 50.0]])
    got = figures([surplus], 1.0, load, np.zeros((1, 2)), load, np.array([[2.0, 2.0]]))
    assert got.cost == pytest.approx((50.0 - 30.0) * 2.0 + 50.0 * 2.0)


def test_with_a_tariff_the_oracle_and_the_shares_weigh_cost_as_suandian_does() -> None:
    """Shares are of ``CO2 + w × cost``: the oracle minimises that, its bound is below
    every policy's, and it pays less than run-now."""
    report = simulate(parse_scenario(scenario([TOU]), base=None),
                      policies=["run-now", "suandian", "oracle"])
    assert report.priced and report.oracle is not None
    out = report.to_json()["policies"]
    for name in ("run-now", "suandian", "oracle"):
        r, g = report.results[name], report.grid[name]
        assert g.cost is not None
        assert report.score_g(name) == pytest.approx(
            r.emissions_g + report.tariff_weight_g * g.cost)
        assert report.oracle.bound_g <= report.score_g(name) * (1 + 1e-6)
    assert out["oracle"]["cost"] < out["run-now"]["cost"]
    base, ours, best = (report.score_g(n) for n in ("run-now", "suandian", "oracle"))
    assert out["suandian"]["share_of_oracle_savings"] == pytest.approx(
        (base - ours) / (base - best), abs=1e-4)
    # the objective is not carbon alone: by emissions only the share would differ
    by_carbon = ((report.results["run-now"].emissions_g - report.results["suandian"]
                  .emissions_g) / (report.results["run-now"].emissions_g
                                   - report.results["oracle"].emissions_g))
    assert abs(by_carbon - out["suandian"]["share_of_oracle_savings"]) > 1e-4

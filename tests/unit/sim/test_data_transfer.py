"""The simulator with data that has a distance: every policy that runs a job away from
its data waits for the transfer and is charged its energy; the planner, knowing it,
moves less data and emits less than the same planner blind to it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from suandian.errors import InputFileError, ScenarioError
from suandian.sim.engine import SimState, run_policy
from suandian.sim.planner_settings import plan_params
from suandian.sim.run import build_world, simulate
from suandian.sim.scenario import Scenario, load_scenario, parse_scenario
from suandian.sim.suandian_policy import SuandianPolicy
from suandian.sim.workload import generate_trace, read_trace, write_trace
from suandian.sim.world import World

START = datetime(2026, 6, 1, tzinfo=UTC)
SITES = ["jing-jin-ji", "ningxia"]


def _data_world(scenario: Scenario, share: float) -> World:
    """The built-in week's first day, every job reading 200 TB at home over 100 Gbit/s
    (4.4 h, 12 MWh of network energy at 0.06 kWh/GB), or (share 0) the same jobs
    without data."""
    sc = replace(scenario, workload=replace(scenario.workload, data_share=share,
                                            data_gb=200_000.0, data_gbps=100.0))
    return build_world(sc, days=1)


def test_generated_data_leaves_the_jobs_as_they_were_and_round_trips() -> None:
    plain = generate_trace(start=START, days=2, jobs_per_day=10, sites=SITES,
                           rng=np.random.default_rng(1))
    data = generate_trace(start=START, days=2, jobs_per_day=10, sites=SITES,
                          rng=np.random.default_rng(1), data_share=0.5, data_gb=750.0)
    assert [replace(j, data_gb=0.0, data_site="") for j in data] == plain
    reading = [j for j in data if j.data_gb]
    assert 0 < len(reading) < len(data)
    assert all(j.data_gb == 750.0 and j.data_site == j.sites[0] for j in reading)


def test_trace_data_columns_round_trip_and_bad_ones_are_named(tmp_path: Path) -> None:
    jobs = generate_trace(start=START, days=1, jobs_per_day=6, sites=SITES,
                          rng=np.random.default_rng(2), data_share=1.0, data_gb=12.5)
    path = tmp_path / "t.csv"
    path.write_text(write_trace(jobs))
    assert read_trace(path, SITES) == jobs
    head = ("name,submit,duration,power_w,deadline,interruptible,resources,sites,"
            "data_gb,data_site\n")
    row = "a,2026-06-01T00:00:00Z,1h,1000,4h,false,cpu=1,jing-jin-ji|ningxia,"
    bad = tmp_path / "bad.csv"
    bad.write_text(head + row + "-5,ningxia\n" + row + "5,\n" + row + "5,atlantis\n")
    with pytest.raises(InputFileError) as exc:
        read_trace(bad, SITES)
    said = [str(e) for e in exc.value.errors]
    assert "data_gb" in said[0] and "give both" in said[1] and "atlantis" in said[2], said


def test_a_scenario_names_bad_data_settings() -> None:
    doc = {"start": "2026-06-01T00:00:00Z", "days": 1, "sites": SITES,
           "workload": {"dataShare": 0.5, "dataLinks": "ningxia=1Gbps"}}
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(doc, base=None)
    keys = {e.path for e in exc.value.errors}
    assert {"workload.dataGB", "workload.dataLinks"} <= keys, keys


def test_every_policy_waits_for_the_data_and_pays_for_moving_it() -> None:
    world = _data_world(load_scenario(None), 1.0)
    report = simulate(world.scenario, days=1,
                      policies=("run-now", "best-window", "suandian", "oracle"))
    assert report.results["run-now"].transfer_jobs == 0  # at home, where the data is
    assert "oracle" not in report.results and "does not model" in report.oracle_note
    moved = 0
    for name, r in report.results.items():
        assert r.deadline_misses == 0, name
        for j, (site, start, _end) in r.placements.items():
            job = world.jobs[j]
            if site != job.data_row:
                moved += 1
                assert start >= job.submit + job.data_wait[site], (name, j)
        assert report.to_json()["policies"][name]["transfer"]["jobs"] == r.transfer_jobs
    assert moved == sum(r.transfer_jobs for r in report.results.values()) > 0
    r = report.results["suandian"]
    assert r.transfer_kwh == pytest.approx(r.transfer_jobs * 12_000.0)


def test_knowing_the_data_the_planner_moves_less_and_emits_less() -> None:
    scenario = load_scenario(None)
    world, blind_world = _data_world(scenario, 1.0), _data_world(scenario, 0.0)

    class Blind(SuandianPolicy):
        """The planner told nothing of the data; the engine still charges for it."""

        def step(self, world: World, state: SimState) -> list[tuple[int, int]]:
            return super().step(blind_world, state)

    aware = run_policy(world, SuandianPolicy(plan_params(scenario.planner)))
    blind = run_policy(world, Blind(plan_params(scenario.planner)))
    assert aware.deadline_misses == blind.deadline_misses == 0
    assert aware.transfer_jobs < blind.transfer_jobs
    assert aware.emissions_g < blind.emissions_g

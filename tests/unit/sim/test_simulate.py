"""The simulator end to end on a one-day, two-site scenario with a hand-written trace."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from suandian.cli import cli
from suandian.errors import InputFileError
from suandian.sim.run import POLICY_NAMES, simulate
from suandian.sim.scenario import builtin_scenarios, load_scenario
from suandian.sim.workload import TraceJob, generate_trace, read_trace, write_trace

START = datetime(2026, 6, 1, tzinfo=UTC)
TRACE = """name,submit,duration,power_w,deadline,interruptible,resources,sites
etl-1,2026-06-01T00:00:00Z,3h,20000000,14h,false,cpu=100,jing-jin-ji|ningxia
etl-2,2026-06-01T01:00:00Z,2h,15000000,12h,false,cpu=100,jing-jin-ji|ningxia
train-1,2026-06-01T00:00:00Z,6h,30000000,2026-06-02T06:00:00Z,true,cpu=100,jing-jin-ji|ningxia
local-1,2026-06-01T02:00:00Z,2h,10000000,6h,false,cpu=100,jing-jin-ji
urgent,2026-06-01T03:00:00Z,1h,5000000,0h,false,cpu=100,ningxia|jing-jin-ji
"""


def _scenario(tmp_path: Path, trace: str = TRACE, cpu: float = 1e6) -> Path:
    (tmp_path / "trace.csv").write_text(trace)
    path = tmp_path / "small.yaml"
    path.write_text(f"""
name: small
start: 2026-06-01T00:00:00Z
days: 1
slot: 1h
horizon: 24h
refresh: 2h
forecastError: 0.1
seed: 3
sites: [jing-jin-ji, ningxia]
capacity: {{default: {{cpu: {cpu}}}}}
jobs: trace.csv
threshold: {{gPerKWh: 300, maxDelay: 6h}}
""")
    return path


def test_every_policy_runs_and_the_oracle_is_best(tmp_path: Path) -> None:
    report = simulate(load_scenario(str(_scenario(tmp_path))))
    # no job has a nominal start of its own: nominal would be run-now again, left out
    assert list(report.results) == [p for p in POLICY_NAMES if p != "nominal"]
    assert report.baseline == "run-now"
    oracle = report.results["oracle"].emissions_g
    for name, r in report.results.items():
        assert r.jobs == 5 and r.unfinished == 0
        assert r.deadline_misses == 0, name
        if r.import_overload_kwh == 0:
            assert oracle <= r.emissions_g * (1 + 1e-9) + 1e-6, name
    assert report.results["suandian"].emissions_g <= report.results["run-now"].emissions_g
    assert report.results["run-now"].mean_delay_s == 0.0
    body = report.to_json()
    fields = {"emissions_g", "energy_kwh", "green_fraction", "deadline_misses",
              "mean_delay_s", "jobs", "p95_delay_s", "share_of_oracle_savings"}
    assert fields <= set(body["policies"]["suandian"])
    assert body["policies"]["oracle"]["share_of_oracle_savings"] == pytest.approx(1.0)


def test_same_seed_same_figures(tmp_path: Path) -> None:
    sc = load_scenario(str(_scenario(tmp_path)))
    one = simulate(sc, policies=("run-now", "best-window", "suandian")).to_json()
    two = simulate(sc, policies=("run-now", "best-window", "suandian")).to_json()
    for body in (one, two):
        for p in body["policies"].values():
            p.pop("seconds")
    assert one == two


def test_capacity_queues_jobs_like_pending_pods(tmp_path: Path) -> None:
    # room for one job at a time per site: run-now must queue the second job at home
    report = simulate(load_scenario(str(_scenario(tmp_path, cpu=100))),
                      policies=("run-now",))
    r = report.results["run-now"]
    assert r.mean_delay_s > 0
    starts = sorted((site, start, end) for site, start, end in r.placements.values())
    for (s1, _a, end1), (s2, start2, _b) in itertools.pairwise(starts):
        if s1 == s2:
            assert start2 >= end1  # never two at once on a site


def test_trace_csv_round_trip_and_errors(tmp_path: Path) -> None:
    jobs = generate_trace(start=START, days=2, jobs_per_day=10, sites=["jing-jin-ji", "ningxia"],
                          rng=np.random.default_rng(1))
    path = tmp_path / "t.csv"
    path.write_text(write_trace(jobs))
    back = read_trace(path, ["jing-jin-ji", "ningxia"])
    assert back == jobs
    bad = tmp_path / "bad.csv"
    bad.write_text(TRACE.replace("3h,20000000", "-3h,20000000").replace(
        "jing-jin-ji\n", "atlantis\n"))
    with pytest.raises(InputFileError) as exc:
        read_trace(bad, ["jing-jin-ji", "ningxia"])
    assert exc.value.path == str(bad)
    assert [e.path for e in exc.value.errors] == [f"line {n}" for n in (2, 5, 6)]


def test_trace_deadline_as_max_delay() -> None:
    job = TraceJob("x", START, timedelta(hours=2), 1.0, START + timedelta(hours=14), False,
                   {}, ("ningxia",))
    assert job.deadline - job.submit - job.duration == timedelta(hours=12)


def test_builtin_scenarios_load_and_bad_files_say_why(tmp_path: Path) -> None:
    assert {"east-data-west-computing", "contention"} <= set(builtin_scenarios())
    default = load_scenario(None)
    assert default.name == "east-data-west-computing" and len(default.sites) == 8
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites: [atlantis]\ndays: 0\nforecasts: {mars: {solar: x.csv}}\n")
    with pytest.raises(InputFileError) as exc:
        load_scenario(str(bad))
    assert {re.split(r"[.\[]", e.path)[0] for e in exc.value.errors} == {
        "sites", "days", "forecasts"}
    with pytest.raises(InputFileError, match="nor a built-in scenario"):
        load_scenario("no-such-scenario")


def test_csv_forecast_signals_replace_the_models(tmp_path: Path) -> None:
    (tmp_path / "solar.csv").write_text("time,value\n" + "".join(
        f"{(START + timedelta(hours=h)).isoformat()},{1000.0 * (h % 24)}\n"
        for h in range(60)))
    path = _scenario(tmp_path)
    path.write_text(path.read_text() + "forecasts: {ningxia: {solar: solar.csv}}\n")
    from suandian.sim.run import build_world

    world = build_world(load_scenario(str(path)))
    solar = world.actuals["ningxia"].green_kw["solar"]
    assert solar[:24] == pytest.approx(1000.0 * np.arange(24))


def test_cli_simulate_json_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "out.png"
    result = CliRunner().invoke(cli, ["simulate", "--scenario", str(_scenario(tmp_path)),
                                      "--json", "--plot", str(png), "--seed", "4"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body["policies"]) == set(POLICY_NAMES) - {"nominal"}
    assert body["seed"] == 4 and body["baseline"] == "run-now"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_cli_simulate_table_and_bad_scenario(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--scenario", str(_scenario(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "suandian" in result.stdout and "best-window" in result.stdout
    bad = CliRunner().invoke(cli, ["simulate", "--scenario", "nope"])
    assert bad.exit_code == 1 and "nor a built-in scenario" in bad.output


def test_cli_plan_explains_each_job(tmp_path: Path) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text("""
apiVersion: suandian.io/v1alpha1
kind: ComputeJob
metadata: {name: train, namespace: ml}
spec:
  duration: 4h
  deadline: {maxDelay: 20h}
  sites: [jing-jin-ji, ningxia, gansu]
  power: {watts: 1000000}
  template:
    spec:
      template:
        spec:
          containers: [{name: c, image: x, resources: {requests: {cpu: "64"}}}]
""")
    result = CliRunner().invoke(cli, ["plan", "-f", str(manifest), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    (decision,) = body["decisions"]
    assert decision["key"] == "ml/train"
    assert decision["site"] in ("jing-jin-ji", "ningxia", "gansu")
    assert decision["reason"]
    table = CliRunner().invoke(cli, ["plan", "-f", str(manifest)])
    assert table.exit_code == 0 and "ml/train" in table.stdout


NOMINAL_TRACE = ("name,submit,duration,power_w,deadline,interruptible,resources,sites,"
                 "priority,min_green_fraction,nominal,window\n") + """\
night-1,,2h,20000000,,false,cpu=100,ningxia,0,0,2026-06-01T18:00:00Z,8h
night-2,,3h,15000000,,false,cpu=100,ningxia,0,0,2026-06-01T20:00:00Z,6h
"""


def test_nominal_starts_make_nominal_the_baseline_of_the_shares(tmp_path: Path) -> None:
    """With nominal starts the default run includes nominal, and savings count from it
    (the job at its usual time), not from run-now (the job when its window opens)."""
    report = simulate(load_scenario(str(_scenario(tmp_path, NOMINAL_TRACE))))
    assert "nominal" in report.results and report.baseline == "nominal"
    nominal = report.results["nominal"].emissions_g
    oracle = report.results["oracle"].emissions_g
    mine = report.results["suandian"].emissions_g
    share = report.share_of_oracle("suandian")
    assert share is not None and nominal > oracle
    assert share == pytest.approx((nominal - mine) / (nominal - oracle))
    body = report.to_json()
    assert body["baseline"] == "nominal" and body["errorModel"] == "lead"


def test_the_generator_gets_the_workload_window_and_early_windows_stay(tmp_path: Path) -> None:
    """``workload.window`` reaches the generator (jobs get nominal starts), and a trace
    job whose window opened before the scenario's start is kept, released at slot 0."""
    from suandian.sim.run import build_world
    from suandian.sim.scenario import parse_scenario

    doc = {"name": "w", "start": "2026-06-01T00:00:00Z", "days": 1, "sites": ["ningxia"],
           "workload": {"jobsPerDay": 6, "window": "4h", "nominalHour": 2}}
    world = build_world(parse_scenario(doc, base=None))
    assert world.jobs and world.has_nominal_starts
    assert all(j.trace.nominal is not None and j.trace.nominal.hour == 2 for j in world.jobs)
    early = NOMINAL_TRACE.replace("2026-06-01T18:00:00Z", "2026-06-01T02:00:00Z")
    world = build_world(load_scenario(str(_scenario(tmp_path, early))))
    assert [j.trace.name for j in world.jobs] == ["night-1", "night-2"]
    assert world.jobs[0].submit == 0  # its window opened at 18:00 the day before

"""`suandian simulate`'s options for real data: --policies, --planner, --error-model,
--oracle-limit, the lifted --days cap, and progress bars that count what they say."""

from __future__ import annotations

import inspect
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from suandian.cli import cli
from suandian.sim.commands import _with_options
from suandian.sim.run import simulate
from suandian.sim.scenario import load_scenario

SCENARIO = textwrap.dedent("""\
    name: tiny
    days: 1
    slot: 30m
    horizon: 12h
    forecastError: 0.1
    sites: [gansu]
    jobs: trace.csv
    planner: {riskAversion: 0.4}
    """)
TRACE = textwrap.dedent("""\
    name,submit,duration,power_w,deadline,interruptible,resources,sites,nominal,window
    cron,,1h,100000,,false,cpu=4,gansu,2026-06-01T06:00:00Z,3h
    """)


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "s.yaml").write_text(SCENARIO)
    (tmp_path / "trace.csv").write_text(TRACE)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "s.yaml"


def test_policies_picks_the_rows(tiny: Path) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--scenario", str(tiny), "--json",
                                      "--policies", "nominal,run-now"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert list(body["policies"]) == ["run-now", "nominal"]  # in the table's order


def test_progress_counts_slots_and_says_so(tiny: Path) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--scenario", str(tiny), "--policies",
                                      "run-now,nominal"])
    assert result.exit_code == 0, result.output
    assert "slots of 30m" in result.stderr
    assert " h " not in result.stderr.replace("slots of", "")  # it said "97/97 h"


def test_planner_and_error_model_go_over_the_scenario(tiny: Path) -> None:
    sc = _with_options(load_scenario(str(tiny)), {"delayPenaltyGPerKwhH": "0"}, "iid")
    assert sc.planner == {"risk_aversion": 0.4, "delay_penalty_g_per_kwh_h": 0.0}
    assert sc.error_model == "iid"
    over = _with_options(load_scenario(str(tiny)), {"riskAversion": "0.1"}, None)
    assert over.planner["risk_aversion"] == 0.1 and over.error_model == "lead"
    result = CliRunner().invoke(cli, ["simulate", "--scenario", str(tiny), "--policies",
                                      "suandian", "--planner", "riskAversion=7"])
    assert result.exit_code == 1
    assert "--planner.riskAversion: risk_aversion must be within [0, 1]" in result.stderr


def test_oracle_limit_reaches_the_oracle_or_says_it_cannot(tiny: Path) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--scenario", str(tiny), "--json",
                                      "--policies", "run-now,oracle", "--oracle-limit", "50"])
    if "oracle_limit" in inspect.signature(simulate).parameters:
        assert result.exit_code == 0, result.output
        assert "oracle" in json.loads(result.stdout)["policies"]
    else:
        assert result.exit_code == 1
        assert "--oracle-limit: this build's oracle has no work limit yet" in result.stderr


def test_help_teaches_the_new_options() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for needle in ("--policies LIST", "--oracle-limit N", "--planner KEY=VALUE",
                   "--error-model [lead|iid]", "delayPenaltyGPerKwhH", "nominal",
                   "actuals:", "supply: []", "[1<=x<=3660]"):
        assert needle in text, needle

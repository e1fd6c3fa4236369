"""Every bad input to the command line: one line that names the input and what to do, a
non-zero exit status, no traceback. A table across every subcommand and file format.

Exit status 2 is a usage error (click's: a bad option value); 1 is a bad input the
command read (a file, a manifest, a setting, a kubeconfig). The first ten rows are the
inputs a new user tried and got a traceback or a silent exit 0 for.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.support.scenarios import GRID_ONLY_SITE

from suandian.cli import cli

from conftest import ROOT

SCENARIO = "name: t\nsites: [gansu]\ndays: 1\n"
JOB = textwrap.dedent("""\
    apiVersion: suandian.io/v1alpha1
    kind: ComputeJob
    metadata: {name: j, namespace: ml}
    spec:
      duration: 1h
      deadline: {maxDelay: 4h}
      template: {spec: {template: {spec: {containers: [{name: c, image: busybox}]}}}}
    """)
CSV_HEAD = "time,value\n2026-06-01T00:00:00Z,10\n"
CARBON = "carbonIntensity"
TRACE = ("name,submit,duration,power_w,deadline,interruptible,resources,sites\n"
         "a,2026-06-01T00:00:00Z,2h,1000,8h,false,cpu=4,gansu\n")


def job(extra: str = "", *, swap: tuple[str, str] = ("", "")) -> str:
    """The job manifest with an ``extra`` line added to its spec, and ``swap``'s first
    text replaced by its second."""
    text = JOB.replace("  template:", f"  {extra}\n  template:") if extra else JOB
    return text.replace(*swap) if swap[0] else text


def with_csv(rows: str, signal: str = "solar", site: str = "gansu",
             scenario: str = SCENARIO) -> dict[str, str]:
    return {"s.yaml": scenario + f"actuals:\n  {site}: {{{signal}: f.csv}}\n", "f.csv": rows}


def hourly(hours: int, value: float = 10.0, *, skip: range = range(0),
           first: int = 0) -> str:
    """A signal CSV of ``hours`` hourly rows from 2026-06-01T00:00Z (+``first`` hours),
    leaving out the hours in ``skip``."""
    start = 1780272000 + 3600 * first  # 2026-06-01T00:00:00Z
    from datetime import UTC, datetime
    return "time,value\n" + "".join(
        f"{datetime.fromtimestamp(start + 3600 * h, UTC):%Y-%m-%dT%H:%M:%SZ},{value}\n"
        for h in range(hours) if h not in skip)


GRID_ONLY = ("name: g\ndays: 1\nsites:\n" + textwrap.indent(GRID_ONLY_SITE, "  ")
             + "workload: {jobsPerDay: 2}\n")


@dataclass(frozen=True)
class Bad:
    name: str
    args: tuple[str, ...]
    needle: str  # what the message must name (the input), besides saying what is wrong
    files: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    code: int = 1


CASES = [
    # the ones a new user met as tracebacks or silent successes
    Bad("plan: malformed YAML", ("plan", "-f", "j.yaml"), "j.yaml: line 2",
        {"j.yaml": "a: [1, 2\nb: c\n"}),
    Bad("scenario: malformed YAML", ("simulate", "--scenario", "s.yaml"), "s.yaml: line 2",
        {"s.yaml": "sites: [gansu\ndays: 1\n"}),
    Bad("scenario: days abc", ("simulate", "--scenario", "s.yaml"), "days: 'abc'",
        {"s.yaml": "sites: [gansu]\ndays: abc\n"}),
    Bad("signal CSV: negative power", ("simulate", "--scenario", "s.yaml"),
        "f.csv: row 3: value -5 is negative", with_csv(CSV_HEAD + "2026-06-01T01:00:00Z,-5\n")),
    Bad("signal CSV: a short row", ("simulate", "--scenario", "s.yaml"),
        "f.csv: row 3: 1 cell", with_csv(CSV_HEAD + "2026-06-01T01:00:00Z\n")),
    Bad("signal CSV: missing file", ("simulate", "--scenario", "s.yaml"),
        "forecasts.gansu.solar: no such file", {"s.yaml": SCENARIO + "forecasts:\n"
                                                 "  gansu: {solar: nope.csv}\n"}),
    Bad("signal CSV: NaN", ("simulate", "--scenario", "s.yaml"), "row 3: value 'nan'",
        with_csv(CSV_HEAD + "2026-06-01T01:00:00Z,nan\n")),
    Bad("forecast: unknown scenario", ("forecast", "--site", "gansu", "--scenario", "nope"),
        "nope: no such file, nor a built-in scenario"),
    Bad("plan: job names an unknown site", ("plan", "-f", "j.yaml"),
        "spec.sites: atlantis is not a site here; the sites are chengyu",
        {"j.yaml": job("sites: [atlantis]")}),
    Bad("plan: no ComputeJobs", ("plan", "-f", "s.yaml"), "no ComputeJob here",
        {"s.yaml": (ROOT / "examples/powersites/gansu.yaml").read_text()}),
    Bad("forecast: malformed scenario YAML", ("forecast", "--site", "x", "--scenario",
                                              "s.yaml"), "s.yaml: line", {"s.yaml": "a: ]\n"}),
    Bad("forecast: a scenario with an invalid site", ("forecast", "--site", "x",
                                                      "--scenario", "s.yaml"),
        "sites[0].spec.pue", {"s.yaml": "sites: [{apiVersion: suandian.io/v1alpha1, kind: "
                              "PowerSite, metadata: {name: x}, spec: {pue: 0.5}}]\n"}),
    Bad("run: a bad setting", ("run",), "SUANDIAN_REPLAN_INTERVAL: 'banana'",
        env={"SUANDIAN_REPLAN_INTERVAL": "banana"}),
    Bad("run: no kubeconfig at all", ("run",), "no usable kubeconfig", env={"KUBECONFIG": ""}),
    Bad("run: --kubeconfig that does not exist", ("run", "--kubeconfig", "/nonexistent/kc"),
        "'/nonexistent/kc' does not exist", code=2),
    Bad("run: a kubeconfig that is not YAML", ("run", "--kubeconfig", "kc"),
        "kc: no usable kubeconfig", {"kc": "clusters: [\n"}),
    # plan -f: every way a manifest file can be wrong
    Bad("plan: a file that does not exist", ("plan", "-f", "none.yaml"), "none.yaml", code=2),
    Bad("plan: an empty directory", ("plan", "-f", "d"), "d: holds no .yaml",
        {"d/readme.txt": "x"}),
    Bad("plan: a list, not a manifest", ("plan", "-f", "j.yaml"),
        "j.yaml: document 1: not a Kubernetes manifest", {"j.yaml": "- a\n- b\n"}),
    Bad("plan: another kind", ("plan", "-f", "j.yaml"), "kind 'ConfigMap'",
        {"j.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}),
    Bad("plan: zero duration", ("plan", "-f", "j.yaml"), "spec.duration: must be longer",
        {"j.yaml": job(swap=("duration: 1h", "duration: 0s"))}),
    Bad("plan: watts .nan", ("plan", "-f", "j.yaml"), "spec.power.watts: must be a finite",
        {"j.yaml": job("power: {watts: .nan}")}),
    Bad("plan: watts 0 says what watts are", ("plan", "-f", "j.yaml"),
        "spec.power.watts: must be greater than 0, not 0; mean draw in watts",
        {"j.yaml": job("power: {watts: 0}")}),
    Bad("plan: a typo in a field", ("plan", "-f", "j.yaml"), "spec.maxDelay: unknown field",
        {"j.yaml": job("maxDelay: 4h")}),
    Bad("plan: a deadline in words", ("plan", "-f", "j.yaml"), "spec.deadline.maxDelay",
        {"j.yaml": job(swap=("maxDelay: 4h", "maxDelay: soon"))}),
    Bad("plan: the second document is wrong", ("plan", "-f", "j.yaml"),
        "j.yaml: document 2 (ComputeJob): spec.duration",
        {"j.yaml": JOB + "---\n" + job(swap=("duration: 1h", "duration: never"))}),
    Bad("plan: not UTF-8", ("plan", "-f", "j.yaml"), "j.yaml: byte 0: not UTF-8",
        {"j.yaml": "\udcff\udcfe"}),
    # scenario files
    Bad("scenario: a misspelt key", ("simulate", "--scenario", "s.yaml"),
        "dayz: unknown key", {"s.yaml": SCENARIO + "dayz: 3\n"}),
    Bad("scenario: a list", ("simulate", "--scenario", "s.yaml"), "s.yaml: a scenario is a "
        "YAML mapping", {"s.yaml": "- gansu\n"}),
    Bad("scenario: empty", ("simulate", "--scenario", "s.yaml"), "this file holds nothing",
        {"s.yaml": ""}),
    Bad("scenario: an unknown embedded site lists the known", ("simulate", "--scenario",
                                                               "s.yaml"),
        "'atlantis' is not an embedded site (chengyu, gansu", {"s.yaml": "sites: [atlantis]\n"}),
    Bad("scenario: one bad site is not 'no site'", ("simulate", "--scenario", "s.yaml"),
        "sites[1]", {"s.yaml": "sites: [gansu, atlantis]\n"}),
    Bad("scenario: no sites at all", ("simulate", "--scenario", "s.yaml"),
        "sites: name at least one site", {"s.yaml": "sites: []\n"}),
    Bad("scenario: a site file that does not exist", ("simulate", "--scenario", "s.yaml"),
        "sites[0]: ", {"s.yaml": "sites: [my-site.yaml]\n"}),
    Bad("scenario: days out of range", ("simulate", "--scenario", "s.yaml"),
        "days: 0 is outside 1..3660", {"s.yaml": "sites: [gansu]\ndays: 0\n"}),
    Bad("scenario: a slot in words", ("simulate", "--scenario", "s.yaml"),
        "slot: 'hourly' is not a duration", {"s.yaml": SCENARIO + "slot: hourly\n"}),
    Bad("scenario: a start that is no time", ("simulate", "--scenario", "s.yaml"),
        "start: 'yesterday' is not an RFC 3339 time", {"s.yaml": SCENARIO + "start: yesterday\n"}),
    Bad("scenario: forecastError as text", ("simulate", "--scenario", "s.yaml"),
        "forecastError: 'big' is not a number", {"s.yaml": SCENARIO + "forecastError: big\n"}),
    Bad("scenario: capacity not a number", ("simulate", "--scenario", "s.yaml"),
        "capacity.default.cpu: 'lots'", {"s.yaml": SCENARIO + "capacity: {default: "
                                          "{cpu: lots}}\n"}),
    Bad("scenario: forecasts for a site it lacks", ("simulate", "--scenario", "s.yaml"),
        "forecasts.mars: not a site", {"s.yaml": SCENARIO + "forecasts: {mars: {solar: x}}\n"}),
    Bad("scenario: a trace that does not exist", ("simulate", "--scenario", "s.yaml"),
        "jobs: no such file", {"s.yaml": SCENARIO + "jobs: trace.csv\n"}),
    Bad("scenario: every problem at once", ("simulate", "--scenario", "s.yaml"),
        "days: 'x' is not a whole number of days; forecastError: 2 is outside",
        {"s.yaml": "sites: [gansu]\ndays: x\nforecastError: 2\n"}),
    # signal CSVs (the CSV provider's checks)
    Bad("signal CSV: no header", ("simulate", "--scenario", "s.yaml"), "f.csv: header must be",
        with_csv("2026-06-01T00:00:00Z,10\n2026-06-01T01:00:00Z,11\n")),
    Bad("signal CSV: a time that is no time", ("simulate", "--scenario", "s.yaml"),
        "row 3: time 'noon' is not ISO 8601", with_csv(CSV_HEAD + "noon,5\n")),
    Bad("signal CSV: every bad cell of a row", ("simulate", "--scenario", "s.yaml"),
        "row 3: time 'noon' is not ISO 8601 (e.g. 2026-06-01T00:00:00Z), value 'x' is not",
        with_csv(CSV_HEAD + "noon,x\n")),
    Bad("signal CSV: every bad row", ("simulate", "--scenario", "s.yaml"),
        "row 3: value -1 is negative (power is at least 0 kW); row 4: value 'inf'",
        with_csv(CSV_HEAD + "2026-06-01T01:00:00Z,-1\n2026-06-01T02:00:00Z,inf\n")),
    Bad("signal CSV: units the signal cannot have", ("simulate", "--scenario", "s.yaml"),
        "f.csv: solar cannot be given in 'g/kWh'",
        with_csv("time,value[g/kWh]\n2026-06-01T00:00:00Z,10\n")),
    Bad("signal CSV: only a header", ("simulate", "--scenario", "s.yaml"),
        "f.csv: no data rows", with_csv("time,value\n")),
    # real data: what the run needs, never filled (issue 15)
    Bad("signal CSV: ends before the run does", ("simulate", "--scenario", "s.yaml"),
        "f.csv: row 7: the data end at 2026-06-01T06:00Z but the run needs them to",
        with_csv(hourly(6, 400), CARBON, "fr", GRID_ONLY)),
    Bad("signal CSV: ending early says the fix", ("simulate", "--scenario", "s.yaml"),
        "add rows up to", with_csv(hourly(6, 400), CARBON, "fr", GRID_ONLY)),
    Bad("signal CSV: starts after the run", ("simulate", "--scenario", "s.yaml"),
        "f.csv: row 2: the data start at 2026-06-01T03:00Z, after the scenario's start "
        "2026-06-01T00:00Z; add rows from", with_csv(hourly(100, 400, first=3), CARBON,
                                                     "fr", GRID_ONLY)),
    Bad("signal CSV: a hole", ("simulate", "--scenario", "s.yaml"),
        "f.csv: rows 6-7: no data from 2026-06-01T05:00Z to 2026-06-01T08:00Z; add the "
        "missing rows", with_csv(hourly(100, 400, skip=range(5, 8)), CARBON, "fr",
                                 GRID_ONLY)),
    Bad("signal CSV: an empty value", ("simulate", "--scenario", "s.yaml"),
        "f.csv: row 3: value is empty (every row needs its value); correct these rows",
        with_csv(CSV_HEAD + "2026-06-01T01:00:00Z,\n")),
    Bad("signal CSV: intensity out of range", ("simulate", "--scenario", "s.yaml"),
        "f.csv: row 4: carbonIntensity 5000 is outside 0..2000 gCO2/kWh; give gCO2/kWh",
        with_csv(hourly(2, 400) + "2026-06-01T02:00:00Z,5000\n", CARBON, "fr", GRID_ONLY)),
    Bad("signal CSV: negative intensity", ("simulate", "--scenario", "s.yaml"),
        "f.csv: row 2: carbonIntensity -3 is outside",
        with_csv(hourly(1, -3) + hourly(100)[11:], CARBON, "fr", GRID_ONLY)),
    Bad("signal CSV: more power than the nameplate", ("simulate", "--scenario", "s.yaml"),
        "f.csv: row 5: solar 9e+07 is above 110% of the site's 60,000 kW of solar; give kW",
        with_csv(hourly(100).replace("06-01T03:00:00Z,10.0", "06-01T03:00:00Z,9e7"))),
    Bad("scenario: a signal the site has no source for", ("simulate", "--scenario", "s.yaml"),
        "actuals.fr.solar: site fr has no solar source (its signals: carbonIntensity)",
        with_csv(hourly(100), "solar", "fr", GRID_ONLY)),
    Bad("scenario: an unknown signal", ("simulate", "--scenario", "s.yaml"),
        "actuals.gansu.sunshine: unknown signal; signals are solar", with_csv("", "sunshine")),
    Bad("scenario: a forecast without its actuals", ("simulate", "--scenario", "s.yaml"),
        "forecasts.gansu.solar: a real forecast is judged against what happened: give the "
        "actual series too, as actuals.gansu.solar",
        {"s.yaml": SCENARIO + "actuals: {}\nforecasts: {gansu: {solar: f.csv}}\n",
         "f.csv": hourly(100)}),
    Bad("scenario: an unaligned start", ("simulate", "--scenario", "s.yaml"),
        "start: 2026-06-01T01:00:00Z is not on a 45m slot boundary (slots are counted from "
        "1970-01-01T00:00Z); use 2026-06-01T00:45:00Z", {"s.yaml": SCENARIO + (
            "slot: 45m\nrefresh: 45m\nhorizon: 45h\nstart: 2026-06-01T01:00:00Z\n")}),
    Bad("scenario: a 45m slot under the default refresh", ("simulate", "--scenario", "s.yaml"),
        "refresh: 1h is not a whole number of 45m slots (at least one); use e.g. 45m",
        {"s.yaml": SCENARIO + "slot: 45m\n"}),
    Bad("scenario: a slot that does not divide a day", ("simulate", "--scenario", "s.yaml"),
        "slot: 7m does not divide a day", {"s.yaml": SCENARIO + "slot: 7m\n"}),
    Bad("scenario: a refresh of part slots", ("simulate", "--scenario", "s.yaml"),
        "refresh: 1h30m is not a whole number of 1h slots",
        {"s.yaml": SCENARIO + "refresh: 90m\n"}),
    Bad("scenario: an unknown error model", ("simulate", "--scenario", "s.yaml"),
        "errorModel: 'gauss' is not one of lead, iid",
        {"s.yaml": SCENARIO + "errorModel: gauss\n"}),
    Bad("scenario: an unknown planner setting", ("simulate", "--scenario", "s.yaml"),
        "planner.riskAversio: unknown planner setting (check its spelling); settings are: "
        "safetyMargin, riskAversion", {"s.yaml": SCENARIO + "planner: {riskAversio: 1}\n"}),
    Bad("scenario: a planner setting of the wrong kind", ("simulate", "--scenario", "s.yaml"),
        "planner.safetyMargin: 'soon' is not a duration", {"s.yaml": SCENARIO + "planner: "
                                                            "{safetyMargin: soon}\n"}),
    Bad("scenario: a planner setting out of range", ("simulate", "--scenario", "s.yaml"),
        "planner.riskAversion: risk_aversion must be within [0, 1], got 2.0",
        {"s.yaml": SCENARIO + "planner: {riskAversion: 2}\n"}),
    Bad("scenario: a negative window", ("simulate", "--scenario", "s.yaml"),
        "workload.window: '-8h' is not a duration", {"s.yaml": SCENARIO + "workload: "
                                                   "{window: -8h}\n"}),
    Bad("scenario: workload not a mapping", ("simulate", "--scenario", "s.yaml"),
        "workload: a mapping, e.g. {jobsPerDay: 30}", {"s.yaml": SCENARIO + "workload: 5\n"}),
    Bad("scenario: a site's capacity not a mapping", ("simulate", "--scenario", "s.yaml"),
        "capacity.default: a mapping of resource to amount",
        {"s.yaml": SCENARIO + "capacity: {default: 5}\n"}),
    Bad("scenario: a horizon shorter than the refresh", ("simulate", "--scenario", "s.yaml"),
        "horizon: 1h is shorter than the refresh (2h)",
        {"s.yaml": SCENARIO + "refresh: 2h\nhorizon: 1h\n"}),
    Bad("scenario: a negative seed and job rate", ("simulate", "--scenario", "s.yaml"),
        "workload.jobsPerDay: -3 is outside 0..1e+06; seed: -1 is outside",
        {"s.yaml": SCENARIO + "seed: -1\nworkload: {jobsPerDay: -3}\n"}),
    Bad("simulate: --planner with an unknown key", ("simulate", "--planner", "rho=1"),
        "--planner.rho: unknown planner setting"),
    Bad("simulate: --planner without a value", ("simulate", "--planner", "riskAversion"),
        "'riskAversion' is not KEY=VALUE", code=2),
    Bad("simulate: --policies with an unknown name", ("simulate", "--policies", "run-now,gready"),
        "unknown policy 'gready'; choose from run-now, nominal, threshold", code=2),
    Bad("trace: times that are no times, each once", ("simulate", "--scenario", "s.yaml"),
        "t.csv: line 2: nominal: 'soon' is not an RFC 3339 time, e.g. 2026-06-01T01:00:00Z; "
        "line 3: submit: 'yesterday' is not", {"s.yaml": SCENARIO + "jobs: t.csv\n", "t.csv": (
            "name,submit,duration,power_w,deadline,interruptible,resources,sites,nominal\n"
            "a,2026-06-01T00:00:00Z,2h,1000,8h,false,cpu=4,gansu,soon\n"
            "b,yesterday,2h,1000,8h,false,cpu=4,gansu,\n")}),
    Bad("trace: a window without a nominal start", ("simulate", "--scenario", "s.yaml"),
        "t.csv: line 2: window: needs a nominal start",
        {"s.yaml": SCENARIO + "jobs: t.csv\n",
         "t.csv": "name,submit,duration,power_w,deadline,interruptible,resources,sites,nominal,"
                  "window\na,,2h,1000,,false,cpu=4,gansu,,8h\n"}),
    Bad("trace: a window beside submit and deadline", ("simulate", "--scenario", "s.yaml"),
        "window: give either nominal and window, or submit and deadline",
        {"s.yaml": SCENARIO + "jobs: t.csv\n",
         "t.csv": "name,submit,duration,power_w,deadline,interruptible,resources,sites,nominal,"
                  "window\na,2026-06-01T00:00:00Z,2h,1000,8h,false,cpu=4,gansu,"
                  "2026-06-01T09:00:00Z,8h\n"}),
    Bad("trace: a nominal start outside the window", ("simulate", "--scenario", "s.yaml"),
        "nominal: must lie between submit and deadline - duration",
        {"s.yaml": SCENARIO + "jobs: t.csv\n",
         "t.csv": "name,submit,duration,power_w,deadline,interruptible,resources,sites,nominal"
                  "\na,2026-06-01T00:00:00Z,2h,1000,8h,false,cpu=4,gansu,2026-06-01T09:00:00Z\n"}),
    # job traces
    Bad("trace: a missing column", ("simulate", "--scenario", "s.yaml"),
        "t.csv: header: missing columns", {"s.yaml": SCENARIO + "jobs: t.csv\n",
                                           "t.csv": "name,submit\na,2026-06-01T00:00:00Z\n"}),
    Bad("trace: every bad cell of a row", ("simulate", "--scenario", "s.yaml"),
        "t.csv: line 3: duration: 'long' is not a duration",
        {"s.yaml": SCENARIO + "jobs: t.csv\n",
         "t.csv": TRACE + "b,2026-06-01T00:00:00Z,long,-4,8h,false,cpu=4,mars\n"}),
    # options (click's usage errors, exit 2)
    Bad("simulate: --days 0", ("simulate", "--days", "0"), "--days", code=2),
    Bad("simulate: --forecast-error 2", ("simulate", "--forecast-error", "2"),
        "--forecast-error", code=2),
    Bad("simulate: --plot into a folder that does not exist", (
        "simulate", "--plot", "/nonexistent/dir/x.png"), "folder /nonexistent/dir", code=2),
    Bad("simulate: unknown built-in scenario", ("simulate", "--scenario", "mars-week"),
        "mars-week: no such file, nor a built-in scenario (contention"),
    Bad("forecast: unknown site lists the known", ("forecast", "--site", "atlantis"),
        "'atlantis' is not a site built in: chengyu", code=2),
    Bad("forecast: --start that is no time", ("forecast", "--site", "gansu", "--start",
                                              "soon"), "--start", code=2),
    Bad("forecast: --hours 0", ("forecast", "--site", "gansu", "--hours", "0"), "--hours",
        code=2),
    Bad("crds: --check on a folder that does not exist", ("crds", "--check", "-o", "nope"),
        "nope: no such folder"),
    Bad("run: --webhook-cert without its key", ("run", "--webhook-cert", "c.pem"),
        "--webhook-cert and --webhook-key go together", {"c.pem": "x"}, code=2),
    Bad("run: a bad setting among good ones", ("run",), "SUANDIAN_RISK_AVERSION",
        env={"SUANDIAN_RISK_AVERSION": "2", "SUANDIAN_REPLAN_INTERVAL": "5m"}),
]


def test_the_table_is_wide() -> None:
    assert len(CASES) >= 40
    assert {c.args[0] for c in CASES} == {"simulate", "forecast", "plan", "crds", "run"}


@pytest.mark.parametrize("bad", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_one_line_naming_it(bad: Bad, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in bad.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config of the machine's
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    for key, value in bad.env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, list(bad.args), catch_exceptions=False)
    message = result.stderr
    assert result.exit_code == bad.code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert bad.needle in " ".join(message.split()), message
    if bad.code == 1:
        lines = [line for line in message.splitlines()
                 if line.strip() and "━" not in line]  # progress bars aside
        assert len(lines) == 1, message
        assert lines[0].startswith(f"suandian {bad.args[0]}: "), lines[0]


def test_without_the_simulator_extras_simulate_says_what_to_install() -> None:
    """`pip install suandian` (the operator) leaves out plotting and the MILP oracle."""
    code = ("import sys; sys.modules['highspy'] = None\n"
            "from suandian.cli import main; sys.argv = ['suandian', 'simulate', '--days', '1']\n"
            "main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "suandian simulate: this needs the simulator's extras (highspy is not installed): "
        "pip install 'suandian[sim]'")


def test_the_operator_imports_neither_plotting_nor_the_milp_solver() -> None:
    code = ("import sys, suandian.cli, suandian.controllers.main, suandian.controllers\n"
            "print(sorted(m for m in ('matplotlib', 'highspy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]"

"""`suandian report` against a real Prometheus holding three past days of the ledger.

The days are made by the operator's own code: the story's jobs go through
``record_ledger_run`` and ``record_job_finished`` on the real registry, which is
"scraped" every 5 minutes of the story (its samples written with that timestamp), and
the samples are backfilled with ``promtool tsdb create-blocks-from openmetrics`` before
Prometheus starts. The story crosses what makes a ledger hard: a job finishing two
minutes before midnight (seen by the midnight scrape), an operator restart (counters
back to 0), a failover to another replica (new series, the old ones end), a namespace's
first job at a site (a series' first value), a negative saving, and a site whose job
reached the site counters but not the ledger (the reconciliation must flag it).
Expected figures are the story's, summed by hand per day.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from integration.prometheus.promkit import PrometheusServer, require_binary
from suandian import metrics
from suandian.cli import cli
from suandian.report import Prometheus, build_report
from suandian.report.days import days_between, timezone

pytestmark = pytest.mark.prometheus

SCRAPE_S = 300
TODAY = datetime.now(UTC).date()
D0 = TODAY - timedelta(days=4)
DAYS = [D0 + timedelta(days=i) for i in range(3)]
BASE = datetime(D0.year, D0.month, D0.day, tzinfo=UTC).timestamp()
FAMILIES = ("suandian_ledger_energy_joules", "suandian_ledger_it_energy_joules",
            "suandian_ledger_emissions_grams", "suandian_ledger_run_now_emissions_grams",
            "suandian_ledger_runs", "suandian_energy_joules", "suandian_emissions_grams")


@dataclass(frozen=True)
class Job:
    hour: float  # hours after D0's midnight, UTC
    namespace: str
    site: str
    kwh: dict[str, float]
    it_kwh: float
    emissions_g: float
    saved_g: float
    provenance: str


RESTART_H, FAILOVER_H = 30.0, 42.0
IM = "inner-mongolia"
"""A site name with a '-', which a site regex must escape and PromQL must still parse."""
STORY = [
    Job(10.0, "team-a", "gansu", {"solar": 30, "wind": 10, "grid": 10}, 40, 4000, 6000,
        "measured"),
    Job(23 + 58 / 60, "team-b", "gansu", {"hydro": 4, "grid": 6}, 8, 3000, -500, "modelled"),
    Job(24 + 1 / 60, "team-a", "gansu", {"directGreen": 12, "grid": 3}, 12, 1500, 2500,
        "measured"),
    Job(32.0, "team-a", "gansu", {"solar": 20}, 16, 0, 3000, "partial"),
    Job(39.0, "team-b", IM, {"storage": 5, "grid": 5}, 8, 2500, 1000, "modelled"),
    Job(44.0, "team-a", IM, {"wind": 25, "grid": 5}, 24, 2000, 4000, "measured"),
    Job(60.0, "team-b", "gansu", {"solar": 8}, 6.4, 0, 900, "measured"),
]
UNLEDGERED = (61.0, "ningxia", 10.0, 5000.0)
"""A job at ningxia that reached the site counters and not the ledger (hour, site, grid
kWh, g): the reconciliation must flag ningxia on day 3, and only there."""


def _apply(job: Job) -> None:
    metrics.record_ledger_run(namespace=job.namespace, site=job.site, kwh_by_source=job.kwh,
                              it_kwh=job.it_kwh, emissions_g=job.emissions_g,
                              saved_g=job.saved_g, provenance=job.provenance)
    green = sum(v for k, v in job.kwh.items() if k != "grid")
    metrics.record_job_finished(job.site, outcome="Succeeded", green_kwh=green,
                                grid_kwh=job.kwh.get("grid", 0.0),
                                emissions_g=job.emissions_g, avoided_g=job.saved_g)


def openmetrics() -> str:
    """The story scraped every 5 minutes from D0 00:00 to D3 00:05, as OpenMetrics."""
    samples: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    events = sorted([(j.hour, "job", j) for j in STORY] + [
        (RESTART_H, "restart", None), (FAILOVER_H, "failover", None),
        (UNLEDGERED[0], "unledgered", None)], key=lambda e: e[0])
    metrics.reset()
    instance = "10.0.0.5:8081"
    t = BASE
    while t <= BASE + 3 * 86400 + SCRAPE_S:
        while events and BASE + events[0][0] * 3600 <= t:
            _, kind, job = events.pop(0)
            if kind == "job" and job is not None:
                _apply(job)
            elif kind == "unledgered":
                metrics.record_job_finished(UNLEDGERED[1], outcome="Succeeded", green_kwh=0,
                                            grid_kwh=UNLEDGERED[2], emissions_g=UNLEDGERED[3],
                                            avoided_g=0)
            else:
                metrics.reset()  # a new process: every counter starts again from 0
                if kind == "failover":
                    instance = "10.0.0.6:8081"
        for family in metrics.registry().collect():
            if family.name not in FAMILIES:
                continue
            for s in family.samples:
                if not s.name.endswith("_total"):
                    continue
                labels = {**s.labels, "job": "suandian", "instance": instance}
                text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                samples[family.name][f"{s.name}{{{text}}}"].append(f"{s.value!r} {t:.0f}")
        t += SCRAPE_S
    metrics.reset()
    lines = []
    for name, series in samples.items():
        lines += [f"# TYPE {name} counter", f"# HELP {name} backfilled"]
        lines += [f"{key} {point}" for key, points in series.items() for point in points]
    return "\n".join([*lines, "# EOF"]) + "\n"


def _ready(url: str, server: PrometheusServer) -> None:
    deadline = time.monotonic() + 60
    last: object = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail("prometheus exited:\n" + server.log.read_text())
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as rsp:
                if rsp.status == 200:
                    return
                last = rsp.status
        except OSError as exc:  # not listening yet: poll again
            last = exc
        time.sleep(0.25)
    pytest.fail(f"Prometheus was not ready after 60 s: {last}")


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a Prometheus whose TSDB holds the story's three days."""
    promtool, prometheus = require_binary("promtool"), require_binary("prometheus")
    work = tmp_path_factory.mktemp("backfill")
    source = work / "story.om"
    source.write_text(openmetrics(), encoding="utf-8")
    created = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(source),
         str(work / "data")], capture_output=True, text=True, timeout=300, check=False)
    assert created.returncode == 0, created.stdout + created.stderr
    server = PrometheusServer(prometheus, work, targets=[])
    try:
        _ready(server.url, server)
        yield server.url
    finally:
        server.stop()


def by_day(namespace: str, site: str) -> dict[date, dict[str, float]]:
    """The story's figures per day by hand: kWh by source, IT kWh, g, saved g, jobs."""
    out: dict[date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for job in STORY:
        if (job.namespace, job.site) != (namespace, site):
            continue
        day = D0 + timedelta(days=int(job.hour // 24))
        for source, kwh in job.kwh.items():
            out[day][source] += kwh
        out[day]["it"] += job.it_kwh
        out[day]["g"] += job.emissions_g
        out[day]["saved"] += job.saved_g
        out[day]["jobs"] += 1
    return out


def test_each_day_holds_exactly_the_jobs_that_finished_in_it(backfilled: str) -> None:
    ledger = build_report(backfilled, D0, DAYS[-1] + timedelta(days=1))
    rows = {(r.day, r.namespace, r.site): r for r in ledger.rows}
    expected = {(day, ns, site): figures for ns in ("team-a", "team-b")
                for site in ("gansu", IM) for day, figures in by_day(ns, site).items()}
    assert set(rows) == set(expected)
    for key, figures in expected.items():
        row = rows[key]
        for source in metrics.LEDGER_SOURCES:
            assert row.kwh[source] == pytest.approx(figures.get(source, 0.0)), (key, source)
        assert row.it_kwh == pytest.approx(figures["it"]), key
        assert row.emissions_g == pytest.approx(figures["g"]), key
        assert row.saved_g == pytest.approx(figures["saved"]), key
        assert row.jobs == figures["jobs"], key
    # 23:58 on day 1 is seen by the midnight scrape and stays on day 1; 00:01 is day 2's
    assert rows[DAYS[0], "team-b", "gansu"].kwh["hydro"] == pytest.approx(4.0)
    assert rows[DAYS[1], "team-a", "gansu"].kwh["directGreen"] == pytest.approx(12.0)
    # the restart (solar 30 -> 0 -> 20) and the failover (new series) are counted exactly
    assert rows[DAYS[1], "team-a", "gansu"].kwh["solar"] == pytest.approx(20.0)
    assert rows[DAYS[1], "team-a", IM].total_kwh == pytest.approx(30.0)
    first = rows[DAYS[0], "team-a", "gansu"]
    assert (first.green_share, first.pue, first.cue_kg_per_kwh) == pytest.approx(
        (0.8, 1.25, 0.1))
    assert rows[DAYS[0], "team-b", "gansu"].saved_g == pytest.approx(-500.0)
    assert rows[DAYS[1], "team-a", "gansu"].measured_share == pytest.approx(12 / 28)


def test_increase_alone_would_lose_a_first_job(backfilled: str) -> None:
    """Why the report does not use increase(): team-b's first job at inner-mongolia is the first
    value of its series, which increase() over that day does not see."""
    day = days_between(DAYS[1], DAYS[2], timezone("UTC"), time.time())[0]
    naive = Prometheus(backfilled).query(
        'sum(increase(suandian_ledger_energy_joules_total{namespace="team-b",'
        'site="inner-mongolia"}[1d]))', day.end)
    assert naive == [] or (naive[0].value or 0.0) < 1.0  # the job drew 10 kWh = 3.6e7 J
    exact = build_report(backfilled, DAYS[1], DAYS[2], namespaces=["team-b"], sites=[IM])
    assert [r.total_kwh for r in exact.rows] == pytest.approx([10.0])


def test_the_reconciliation_flags_the_site_whose_job_missed_the_ledger(
        backfilled: str) -> None:
    ledger = build_report(backfilled, D0, DAYS[-1] + timedelta(days=1))
    bad = [(c.site, c.day) for c in ledger.checks if not c.ok]
    assert bad == [("ningxia", DAYS[2]), ("ningxia", None)]
    period = {c.site: c for c in ledger.checks if c.day is None}
    assert period["gansu"].worst < 1e-9
    assert period["gansu"].ledger_kwh == pytest.approx(50 + 10 + 15 + 20 + 8)
    assert period["ningxia"].site_kwh == pytest.approx(10.0)
    assert period["ningxia"].ledger_kwh == 0.0
    fine = build_report(backfilled, D0, DAYS[-1] + timedelta(days=1),
                        sites=["gansu", IM])
    assert fine.reconciled


def report(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["report", "--since", D0.isoformat(), "--until",
                                      (DAYS[-1] + timedelta(days=1)).isoformat(),
                                      "--prometheus", url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_table_reports_days_totals_and_reconciliation(backfilled: str) -> None:
    code, out, _ = report(backfilled, "--site", "gansu", "--site", IM)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["day", "namespace", "site", "solar", "wind"]
    cells = [line.split() for line in lines]
    day0 = next(c for c in cells if c[:3] == [str(D0), "team-a", "gansu"])
    # solar wind hydro direct storage grid total green IT PUE kg CUE saved measured jobs
    assert day0[3:] == ["30.0", "10.0", "0.0", "0.0", "0.0", "10.0", "50.0", "80.0%",
                        "40.0", "1.25", "4.00", "0.100", "6.00", "100.0%", "1"]
    total = next(c for c in cells if c[:3] == ["total", "team-a", "gansu"])
    assert total[9] == "85.0"  # 50 + 15 + 20 kWh
    assert "all days and sites agree" in out
    code, out, _ = report(backfilled)
    assert code == 3
    assert f"ningxia {DAYS[2]}:" in out and "MISMATCH" in out


def test_csv_is_one_line_per_day_namespace_site_then_totals(backfilled: str) -> None:
    code, out, err = report(backfilled, "--format", "csv", "--namespace", "team-a")
    assert code == 3  # ningxia: the check covers every namespace whatever is shown
    assert "ningxia" in err and "MISMATCH" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["day"], r["site"]) for r in rows] == [
        (str(DAYS[0]), "gansu"), (str(DAYS[1]), "gansu"), (str(DAYS[1]), IM),
        ("total", "gansu"), ("total", IM)]
    assert {r["namespace"] for r in rows} == {"team-a"}
    gansu = rows[3]
    assert float(gansu["total_kwh"]) == pytest.approx(50 + 15 + 20)
    assert float(gansu["measured_it_kwh"]) == pytest.approx(52.0)
    assert float(gansu["partial_it_kwh"]) == pytest.approx(16.0)
    assert float(gansu["saved_kg"]) == pytest.approx(11.5)


def test_json_carries_rows_totals_and_the_reconciliation(backfilled: str) -> None:
    code, out, _ = report(backfilled, "--format", "json", "--site", "gansu")
    assert code == 0
    doc = json.loads(out)
    assert doc["reconciliation"]["ok"] is True
    assert doc["since"] == D0.isoformat() and doc["timezone"] == "UTC"
    assert [r["day"] for r in doc["rows"]] == [str(DAYS[0])] * 2 + [str(DAYS[1])] + [
        str(DAYS[2])]
    team_b = next(r for r in doc["totals"] if r["namespace"] == "team-b")
    assert team_b["total_kwh"] == pytest.approx(18.0)
    assert team_b["green_share"] == pytest.approx(12 / 18)


def test_a_timezone_moves_the_day_boundaries(backfilled: str) -> None:
    """In Shanghai (UTC+8) the 23:58 UTC job falls on the next local day, and the 10:00
    UTC one on day 1 at 18:00 local."""
    ledger = build_report(backfilled, D0, DAYS[-1] + timedelta(days=1), zone="Asia/Shanghai",
                          namespaces=["team-b"], sites=["gansu"])
    hydro = [r for r in ledger.rows if r.kwh["hydro"]]
    assert [r.day for r in hydro] == [DAYS[1]]
    assert hydro[0].kwh["hydro"] == pytest.approx(4.0)


def test_the_plot_is_a_png(backfilled: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "ledger.png"
    code, _, err = report(backfilled, "--site", "gansu", "--plot", str(target))
    assert code == 0
    assert f"wrote {target}" in err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert target.stat().st_size > 10_000

"""What ``suandian simulate`` says about the oracle: every number means what it says.

Shares are n/a (with the reason) when no meaningful bound exists; a policy that misses
deadlines or overdraws import is marked, never ranked above the oracle; emissions print
in a unit that fits; the oracle's line says in words how good its schedule is proven to
be; and the oracle's figures do not depend on any clock.
"""

from __future__ import annotations

import io
import itertools
import time
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from suandian.planner.oracle import OracleResult
from suandian.sim.report import render_table
from suandian.sim.run import SimReport, format_mass, oracle_words, simulate
from suandian.sim.scenario import load_scenario
from unit.sim.test_simulate import _scenario


def _text(report: SimReport) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(render_table(report))
    return console.export_text()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> SimReport:
    return simulate(load_scenario(str(_scenario(tmp_path_factory.mktemp("sc")))))


def test_units_fit_the_size() -> None:
    assert format_mass(0.0) == "0 g"
    assert format_mass(812.4) == "812.4 g"
    assert format_mass(17_300.0) == "17.30 kg"  # a 17 kg change is not "0.0 t"
    assert format_mass(247_262_000.0) == "247.3 t"
    assert format_mass(3_948_645_000.0) == "3,949 t"
    assert format_mass(-5_600_000.0) == "-5.600 t"


def test_the_oracle_on_a_small_run_is_proven_optimal_and_said_so(report: SimReport) -> None:
    o = report.oracle
    assert o is not None and o.optimal and 0.0 <= o.bound_g <= o.emissions_g
    body = report.to_json()["oracle"]
    assert body["optimal"] is True and body["gap"] <= 0.005 and body["bound_g"] >= 0
    assert {"lp_bound_g", "dual_bound_g", "limit", "neighbourhoods", "blocks",
            "start_policy", "returned_start"} <= set(body)
    text = _text(report)
    assert "of optimum" in text and "proven optimal" in text
    for name, r in report.results.items():
        if report.infeasible(name) is None:  # the oracle is never worse than a feasible policy
            assert o.emissions_g <= r.emissions_g * (1 + 1e-9) + 1e-6, name


def test_a_policy_that_breaks_a_promise_is_marked_not_ranked(report: SimReport) -> None:
    """A policy with misses (or over import) that emits less than the oracle gets no
    share, its reason instead, in the table and the JSON."""
    oracle = report.results["oracle"]
    cheat = dict(report.results)
    cheat["best-window"] = replace(cheat["best-window"], deadline_misses=3,
                                   emissions_g=oracle.emissions_g * 0.5)
    cheat["threshold"] = replace(cheat["threshold"], import_overload_kwh=12.0,
                                 emissions_g=oracle.emissions_g * 0.7)
    marked = replace(report, results=cheat)
    assert marked.share_of_oracle("best-window") is None
    assert marked.share_of_bound("best-window") is None
    assert marked.share_note("best-window") == "misses"
    assert marked.share_note("threshold", "bound") == "over import"
    body = marked.to_json()["policies"]
    assert body["best-window"]["feasible"] is False
    assert body["best-window"]["share_of_oracle_savings"] is None
    assert body["best-window"]["share_note"] == "misses"
    assert body["threshold"]["share_note"] == "over import"
    assert body["suandian"]["feasible"] is True and body["suandian"]["share_note"] is None
    text = _text(marked)
    assert "(misses)" in text and "(import)" in text and "not ranked" in text


def test_shares_are_na_when_nothing_can_be_saved(report: SimReport) -> None:
    same = dict(report.results)
    same["oracle"] = replace(same["oracle"], emissions_g=same["run-now"].emissions_g)
    flat = replace(report, results=same, oracle_bound_g=same["run-now"].emissions_g)
    assert flat.share_of_oracle("suandian") is None
    assert flat.share_note("suandian") == "nothing to save"
    assert flat.to_json()["policies"]["suandian"]["share_note"] == "nothing to save"
    assert "n/a" in _text(flat)
    no_oracle = replace(report, oracle=None, oracle_bound_g=None,
                        results={k: v for k, v in report.results.items() if k != "oracle"})
    assert no_oracle.share_of_bound("suandian") is None
    assert no_oracle.share_note("suandian", "bound") == "no oracle"


BASE = OracleResult(schedule={}, emissions_g=255_100_000.0, bound_g=241_500_000.0,
                    seconds=12.0, variables=27_111, start_g=260_900_000.0,
                    lp_bound_g=241_500_000.0, improved=True, blocks=1, limit=10,
                    neighbourhoods=21)


def _result(**kw: object) -> OracleResult:
    return replace(BASE, **kw)  # type: ignore[arg-type]


def test_the_oracle_line_in_words() -> None:
    gap = oracle_words(_result(), "suandian")
    assert gap.startswith("best schedule found 255.1 t; the optimum is at least 241.5 t "
                          "(gap 5.3%)")
    assert "5.800 t better than its start (suandian's schedule)" in gap
    assert "21 neighbourhoods searched" in gap
    small = oracle_words(_result(emissions_g=1_017_000.0, start_g=1_034_000.0,
                                 bound_g=1_016_000.0), "best-window")
    assert small.startswith("proven optimal: 1.017 t, within 0.10% of the lower bound")
    assert "17.00 kg better than its start" in small  # not "0.0 t"
    same = oracle_words(_result(improved=False, emissions_g=260_900_000.0), "suandian")
    assert "nothing better than its start (suandian's schedule)" in same
    exact = oracle_words(_result(improved=False, emissions_g=53e6, bound_g=53e6, start_g=53e6),
                         "clairvoyant planner")
    assert exact.startswith("proven optimal: 53.00 t, equal to the lower bound 53.00 t; it is "
                            "its start, clairvoyant planner's schedule")
    blocks = oracle_words(_result(blocks=4), None)
    assert "4 blocks of jobs (the bound is their sum), up to 27,111 variables each" in blocks


def test_simulate_reads_no_clock_for_the_oracle(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole run, oracle included, gives the same figures with every clock jumping an
    hour a call: nothing in them depends on time (only the seconds reported)."""
    sc = load_scenario(str(_scenario(tmp_path)))
    one = simulate(sc, oracle_limit=5).to_json()
    clock = itertools.count()
    for name in ("perf_counter", "monotonic", "time"):
        monkeypatch.setattr(time, name, lambda: 3600.0 * next(clock))
    two = simulate(sc, oracle_limit=5).to_json()
    monkeypatch.undo()
    for body in (one, two):
        body["oracle"].pop("seconds")
        body.pop("oracleNote")
        for p in body["policies"].values():
            p.pop("seconds")
    assert one == two

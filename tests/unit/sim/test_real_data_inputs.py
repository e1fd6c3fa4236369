"""The simulator on real data (issue 15, item 4): grid-only sites, CSV series that must
cover the run, actuals and forecasts given apart, the i.i.d. error model, nominal starts
with a window, the planner's settings from the scenario, and a run whose memory does not
grow with the forecasts it has issued."""

from __future__ import annotations

import asyncio
import inspect
import math
import re
import textwrap
import typing
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tests.support.scenarios import GRID_ONLY_SITE

from suandian.api.validation import parse_powersite
from suandian.errors import InputFileError, ScenarioError
from suandian.forecast import ForecastKeeper
from suandian.forecast.actuals import forecast_from_actuals, series_means
from suandian.forecast.resample import resample
from suandian.planner import PlanParams
from suandian.sim.planner_settings import PLANNER_KEYS
from suandian.sim.policies import POLICY_NAMES, make_policy, policy_list
from suandian.sim.run import build_world, simulate
from suandian.sim.scenario import load_scenario
from suandian.sim.workload import generate_trace, read_trace, write_trace

START = datetime(2026, 6, 1, tzinfo=UTC)
SITE = GRID_ONLY_SITE
TRACE = textwrap.dedent("""\
    name,submit,duration,power_w,deadline,interruptible,resources,sites,nominal,window
    cron,,2h,100000,,false,cpu=4,fr,2026-06-01T12:00:00Z,8h
    etl,2026-06-01T02:00:00Z,1h,50000,10h,false,cpu=4,fr,,
    """)


def intensity(hours: int, step: timedelta = timedelta(minutes=30)) -> list[float]:
    """A daily curve, low at 13:00 UTC: 300 +- 150 g/kWh."""
    n = int(timedelta(hours=hours) / step)
    return [300.0 - 150.0 * math.cos(2 * math.pi * (i * step / timedelta(hours=24) - 13 / 24))
            for i in range(n)]


def csv(values: list[float], step: timedelta = timedelta(minutes=30)) -> str:
    return "time,value\n" + "".join(
        f"{(START + i * step).isoformat()},{v:.3f}\n" for i, v in enumerate(values))


def scenario(tmp_path: Path, extra: str = "", *, hours: int = 96,
             forecast: list[float] | None = None) -> Path:
    """A one-day grid-only scenario at 30-minute slots with the trace above and a
    carbon-intensity CSV of ``hours`` (and, if given, a real forecast beside it)."""
    (tmp_path / "ci.csv").write_text(csv(intensity(hours)))
    (tmp_path / "trace.csv").write_text(TRACE)
    body = ("name: fr\ndays: 1\nslot: 30m\nhorizon: 24h\nrefresh: 1h\nforecastError: 0\n"
            "jobs: trace.csv\nsites:\n" + SITE + "actuals: {fr: {carbonIntensity: ci.csv}}\n")
    if forecast is not None:
        (tmp_path / "fc.csv").write_text(csv(forecast))
        body += "forecasts: {fr: {carbonIntensity: fc.csv}}\n"
    path = tmp_path / "s.yaml"
    path.write_text(body + extra)
    return path


def test_a_grid_only_site_runs_on_its_csv(tmp_path: Path) -> None:
    """`supply: []` and a carbon-intensity CSV crashed (`green_total_kw has shape ()`)."""
    world = build_world(load_scenario(str(scenario(tmp_path))))
    assert world.green.shape == world.carbon.shape and not world.green.any()
    assert world.carbon[0, : 2 * 24] == pytest.approx(intensity(24), abs=1e-3)
    sig = world.signals(0)
    assert sig.green_p50.shape == sig.carbon.shape and not sig.by_source[0]
    report = simulate(world.scenario, policies=("run-now", "nominal", "best-window",
                                                "suandian"))
    energy = {n: r.energy_kwh for n, r in report.results.items()}
    assert len({round(e, 6) for e in energy.values()}) == 1  # the same work, everywhere
    run_now, best = report.results["run-now"], report.results["best-window"]
    assert best.emissions_g < run_now.emissions_g
    assert all(r.deadline_misses == 0 for r in report.results.values())


def test_a_csv_shorter_than_the_run_is_refused_not_filled(tmp_path: Path) -> None:
    """Uncovered slots got the built-in Chinese grid model (719.5 g/kWh for 435.9)."""
    path = scenario(tmp_path, hours=12)
    with pytest.raises(InputFileError) as exc:
        build_world(load_scenario(str(path)))
    message = str(exc.value)
    assert message.startswith(f"{tmp_path / 'ci.csv'}: row 25: the data end at "
                              "2026-06-01T12:00Z but the run needs them to"), message
    assert "add rows up to" in message and "or give fewer `days`" in message


def test_past_the_run_the_forecasts_stop_where_the_data_do(tmp_path: Path) -> None:
    """Enough data for the run but not its last horizon: the last forecasts are shorter,
    never padded with model values."""
    world = build_world(load_scenario(str(scenario(tmp_path, hours=40))))
    assert world.grid.slots == 80
    assert world.signals(world.slots - 1).slots == 80 - (world.slots - 1)


def test_actuals_and_forecasts_apart(tmp_path: Path) -> None:
    told = [v + 100.0 for v in intensity(96)]
    world = build_world(load_scenario(str(scenario(
        tmp_path, "forecastError: 0.3\n", forecast=told))))
    assert world.carbon[0, :96] == pytest.approx(intensity(48), abs=1e-3)  # the truth
    for t in (0, 5, 30):  # the policies are told the forecast as given: no error added
        assert world.signals(t).carbon[0, :24] == pytest.approx(told[t: t + 24], abs=1e-3)


def test_forecasts_alone_are_read_the_old_way_with_a_warning(tmp_path: Path) -> None:
    path = scenario(tmp_path)
    path.write_text(path.read_text().replace("actuals:", "forecasts:"))
    sc = load_scenario(str(path))
    assert sc.actual_csv and not sc.forecast_csv
    assert "rename the key to `actuals:`" in sc.warnings[0]


def test_the_iid_error_model_has_sd_e_times_the_mean_at_every_lead(tmp_path: Path) -> None:
    world = build_world(load_scenario(str(scenario(tmp_path))))
    actual = world.actuals["fr"]
    mean = series_means(actual)["carbonIntensity"]
    rng = np.random.default_rng(5)
    errors = np.stack([
        forecast_from_actuals(actual, world.time_at(0), 48, 0.2, rng, model="iid",
                              scale={"carbonIntensity": mean}).carbon_g_per_kwh
        - actual.carbon_g_per_kwh[:48] for _ in range(400)])
    sd = errors.std(axis=0)
    assert sd[:6].mean() == pytest.approx(0.2 * mean, rel=0.1)  # no smaller when near
    assert sd[-6:].mean() == pytest.approx(0.2 * mean, rel=0.1)
    lead = forecast_from_actuals(actual, world.time_at(0), 48, 0.2, rng).carbon_g_per_kwh
    assert np.abs(lead[:2] - actual.carbon_g_per_kwh[:2]).max() < 0.05 * mean  # mild near


def test_the_error_model_is_the_scenarios(tmp_path: Path) -> None:
    sc = load_scenario(str(scenario(tmp_path, "forecastError: 0.2\nerrorModel: iid\n")))
    assert sc.error_model == "iid"
    world = build_world(sc)
    near = world.signals(0).carbon[0, 0] - world.carbon[0, 0]
    assert abs(near) > 1.0  # the lead model would be within a few g/kWh at lead 0


def test_only_the_current_forecast_is_kept(tmp_path: Path) -> None:
    """`_issued` kept every forecast ever issued: a year held ~100 MB a site."""
    world = build_world(load_scenario(str(scenario(tmp_path, "forecastError: 0.2\n"))))
    first = world.signals(0).carbon.copy()
    for t in range(world.slots):
        world.signals(t)
    assert isinstance(world._issued, list) and len(world._issued) == len(world.names)
    assert world.signals(0).carbon == pytest.approx(first)  # re-issued, the same draws


def test_nominal_starts_and_the_nominal_policy(tmp_path: Path) -> None:
    world = build_world(load_scenario(str(scenario(tmp_path))))
    cron = next(j for j in world.jobs if j.trace.name == "cron")
    assert (cron.submit, cron.nominal, cron.deadline) == (8, 24, 24 + 4 + 16)
    etl = next(j for j in world.jobs if j.trace.name == "etl")
    assert etl.nominal == etl.submit == 4
    assert world.has_nominal_starts
    report = simulate(world.scenario, policies=("run-now", "nominal"))
    starts = {n: {world.jobs[j].trace.name: p[1] for j, p in r.placements.items()}
              for n, r in report.results.items()}
    assert starts["run-now"] == {"cron": 8, "etl": 4}
    assert starts["nominal"] == {"cron": 24, "etl": 4}


def test_a_trace_with_nominal_starts_round_trips(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(TRACE)
    jobs = read_trace(tmp_path / "t.csv", ["fr"])
    (tmp_path / "back.csv").write_text(write_trace(jobs))
    assert read_trace(tmp_path / "back.csv", ["fr"]) == jobs
    cron = next(j for j in jobs if j.name == "cron")
    assert cron.submit == START + timedelta(hours=4)
    assert cron.deadline == START + timedelta(hours=22)


def test_the_generator_puts_jobs_at_a_nominal_hour_with_a_window() -> None:
    jobs = generate_trace(start=START, days=3, jobs_per_day=4, sites=["fr"],
                          rng=np.random.default_rng(1), window=timedelta(hours=8),
                          nominal_hour=1)
    assert jobs
    for j in jobs:
        assert j.nominal is not None and j.nominal.hour == 1
        assert j.submit == max(j.nominal - timedelta(hours=8), START)
        assert j.deadline == j.nominal + j.duration + timedelta(hours=8)


def test_a_workload_window_is_never_silently_ignored(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("sites: [gansu]\ndays: 1\nworkload: {jobsPerDay: 5, window: 8h, "
                    "nominalHour: 1}\n")
    sc = load_scenario(str(path))
    if "window" not in inspect.getsource(build_world):  # until it hands the generator it
        with pytest.raises(ScenarioError) as exc:
            build_world(sc)
        assert exc.value.fields == ("workload.window",)
        return
    world = build_world(sc)
    assert world.jobs and all(j.trace.nominal is not None for j in world.jobs)


def test_the_planner_settings_come_from_the_scenario(tmp_path: Path) -> None:
    sc = load_scenario(str(scenario(tmp_path, "planner: {riskAversion: 0.2, "
                                              "delayPenaltyGPerKwhH: 0, moveThresholdG: 5}\n")))
    policy = make_policy("suandian", build_world(sc))
    params = policy.params  # type: ignore[union-attr]
    assert params.risk_aversion == 0.2 and params.delay_penalty_g_per_kwh_h == 0.0
    assert params.move_threshold_g == 5.0
    assert params.safety_margin == timedelta(0)  # the simulator's default beneath


def test_every_simple_planner_field_is_a_setting() -> None:
    """New PlanParams fields become settings with no change to the mapping."""
    hints = typing.get_type_hints(PlanParams)
    plain = {int, float, bool, str, timedelta}
    simple = {f.name for f in fields(PlanParams) if hints[f.name] in plain or (
        type(None) in typing.get_args(hints[f.name])
        and set(typing.get_args(hints[f.name])) - {type(None)} <= plain)}
    assert simple == {name for name, _, _ in PLANNER_KEYS.values()}
    assert "delayPenaltyGPerKwhH" in PLANNER_KEYS and "safetyMargin" in PLANNER_KEYS


def test_policy_lists_keep_the_table_order() -> None:
    assert POLICY_NAMES[:2] == ("run-now", "nominal") and POLICY_NAMES[-1] == "oracle"
    assert policy_list("suandian, oracle,run-now") == ("run-now", "suandian", "oracle")
    with pytest.raises(ValueError, match="unknown policy 'x'; choose from run-now, nominal"):
        policy_list("run-now,x")


def test_a_year_is_accepted(tmp_path: Path) -> None:
    """There was a 60-day cap; the bound now only catches typos."""
    path = tmp_path / "y.yaml"
    path.write_text("sites: [gansu]\ndays: 365\nslot: 30m\n")
    assert load_scenario(str(path)).days == 365


def test_naive_times_are_the_sites_wall_clock(tmp_path: Path) -> None:
    """As in the operator's CSV provider: no offset means local time at the site."""
    values, paris = intensity(96), ZoneInfo("Europe/Paris")
    path = scenario(tmp_path)
    (tmp_path / "ci.csv").write_text("time,value\n" + "".join(
        f"{(START + i * timedelta(minutes=30)).astimezone(paris):%Y-%m-%dT%H:%M:%S},{v:.3f}\n"
        for i, v in enumerate(values)))
    world = build_world(load_scenario(str(path)))
    assert world.carbon[0, :48] == pytest.approx(values[:48], abs=1e-3)


def test_the_operator_forecasts_a_grid_only_site_from_its_csv(tmp_path: Path) -> None:
    """Grid-only in the operator's path too: no supply, a CSV carbon provider."""
    (tmp_path / "ci.csv").write_text(csv(intensity(48)))
    manifest = yaml.safe_load(SITE)[0]
    manifest["spec"]["forecast"] = {"supply": {"provider": "builtin"}, "carbon": {
        "provider": "csv", "csv": {"paths": {"carbonIntensity": str(tmp_path / "ci.csv")}}}}
    keeper = ForecastKeeper.for_site(parse_powersite(manifest), seed=0,
                                     slot=timedelta(minutes=30), slots=24)
    fc = asyncio.run(keeper.refresh(START + timedelta(hours=2)))
    assert keeper.health(START + timedelta(hours=2)).ready and not fc.green_total_kw.any()
    assert fc.carbon_g_per_kwh == pytest.approx(intensity(48)[4:28], abs=1e-3)


def vintages(rows: list[tuple[datetime, datetime, float]]) -> str:
    return "issued,time,value\n" + "".join(
        f"{i.isoformat()},{t.isoformat()},{v:.3f}\n" for i, t, v in rows)


def day_ahead(hours: int, plus: float) -> list[tuple[datetime, datetime, float]]:
    """A day-ahead forecast issued at 12:00 each day for the next day, off by ``plus``;
    and an intraday one issued at 06:00 on the first day for 06:00-12:00, off by 10."""
    truth = intensity(hours)
    half = timedelta(minutes=30)
    rows = [(START + timedelta(days=d, hours=-12), START + i * half, truth[i] + plus)
            for d in range(hours // 24) for i in range(48 * d, 48 * d + 48)]
    rows += [(START + timedelta(hours=6), START + i * half, truth[i] + 10.0)
             for i in range(12, 24)]
    return rows


def test_forecast_vintages_tell_the_latest_forecast_of_each_slot(tmp_path: Path) -> None:
    path = scenario(tmp_path, "forecastError: 0.3\n", forecast=intensity(96))
    (tmp_path / "fc.csv").write_text(vintages(day_ahead(96, 50.0)))
    world = build_world(load_scenario(str(path)))
    truth = np.array(intensity(96))
    at_0 = world.signals(0).carbon[0]  # the day-ahead of the day before, all day
    assert at_0 == pytest.approx(truth[:48] + 50.0, abs=1e-3)
    at_6 = world.signals(12).carbon[0]  # 06:00: the intraday to noon, then the day-ahead
    assert at_6[:12] == pytest.approx(truth[12:24] + 10.0, abs=1e-3)
    assert at_6[12:36] == pytest.approx(truth[24:48] + 50.0, abs=1e-3)
    assert at_6[36:] == pytest.approx(truth[47] + 50.0, abs=1e-3)  # past its reach: held
    at_13 = world.signals(26).carbon[0]  # 13:00: today's day-ahead reaches tomorrow
    assert at_13 == pytest.approx(truth[26:74] + 50.0, abs=1e-3)
    assert world.carbon[0, :96] == pytest.approx(truth[:96], abs=1e-3)  # accounted on actuals


def test_a_refresh_no_vintage_covers_is_refused(tmp_path: Path) -> None:
    path = scenario(tmp_path, forecast=intensity(96))
    rows = [r for r in day_ahead(96, 50.0) if r[0] > START]  # none for the first day
    (tmp_path / "fc.csv").write_text(vintages(rows))
    with pytest.raises(InputFileError) as exc:
        build_world(load_scenario(str(path)))
    assert str(exc.value) == (
        f"{tmp_path / 'fc.csv'}: no forecast issued by 2026-06-01T00:00Z (a refresh of the "
        "run) says anything of that time (the first vintage is issued at 2026-06-01T06:00Z); "
        "add vintages that cover it, or start the scenario later")


def test_bad_vintage_rows_are_named(tmp_path: Path) -> None:
    path = scenario(tmp_path, forecast=intensity(96))
    text = vintages(day_ahead(96, 50.0))
    (tmp_path / "fc.csv").write_text(text.replace(text.splitlines()[3].split(",")[2], "x", 1))
    with pytest.raises(InputFileError, match=r"row 4: value 'x' is not a number; correct"):
        build_world(load_scenario(str(path)))



def test_vintage_values_no_grid_has_are_named_as_the_series_are(tmp_path: Path) -> None:
    """Vintages get the same range check as actuals and forecast series (one check)."""
    path = scenario(tmp_path, forecast=intensity(96))
    text = vintages(day_ahead(96, 50.0))
    cell = text.splitlines()[3].split(",")[2]
    (tmp_path / "fc.csv").write_text(text.replace(cell, "5000", 1))
    with pytest.raises(InputFileError, match=r"row 4: carbonIntensity 5000 is outside "
                                             r"0..2000 gCO2/kWh; give gCO2/kWh"):
        build_world(load_scenario(str(path)))

@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hours=st.integers(1, 60), first=st.sampled_from([0, 0, 0, 3]), hole=st.tuples(
    st.integers(0, 60), st.sampled_from([0, 0, 1, 4])), step=st.sampled_from([15, 30, 60]),
    power=st.booleans())
def test_a_series_is_used_as_given_or_refused_naming_a_row(
        tmp_path: Path, hours: int, first: int, hole: tuple[int, int], step: int,
        power: bool) -> None:
    """Whatever a file leaves out, the run never sees a model value in its place: either
    every slot the run needs is the file's own, or the file is refused at a row. For
    grid intensity and for green power (a solar source of the site)."""
    minutes = timedelta(minutes=step)
    values = intensity(hours + first, minutes)
    at, length = hole
    keep = [i for i in range(len(values)) if i >= first * 60 // step
            and not at * 60 // step <= i < (at + length) * 60 // step]
    path = scenario(tmp_path)
    if power:
        path.write_text(path.read_text().replace(
            "supply: []", "supply: [{type: solar, name: pv, capacityKW: 1000}]").replace(
            "{carbonIntensity: ci.csv}", "{solar: ci.csv}"))
    (tmp_path / "ci.csv").write_text("time,value\n" + "".join(
        f"{(START + i * minutes).isoformat()},{values[i]:.3f}\n" for i in keep) or "")
    if not keep:
        return
    sc = load_scenario(str(path))
    try:
        world = build_world(sc)
    except InputFileError as exc:
        refused = str(exc)
    else:
        refused = ""
    event("refused" if refused else "used as given")
    if refused:
        assert re.search(r"ci\.csv: rows? \d+", refused), refused
        return
    times = np.array([(START + i * minutes).timestamp() for i in keep])
    own, cover = resample(times, np.array([round(values[i], 3) for i in keep]), world.grid,
                          "energy" if power else "rate")
    n = world.slots
    assert (cover[:n] == 1.0).all() and np.isfinite(own[:n]).all()
    seen = world.green if power else world.carbon
    assert seen[0, :n] == pytest.approx(own[:n], abs=1e-6)  # the file's, every slot


def test_vintages_without_actuals_are_not_read_the_old_way(tmp_path: Path) -> None:
    path = scenario(tmp_path, forecast=intensity(96))
    (tmp_path / "fc.csv").write_text(vintages(day_ahead(96, 50.0)))
    path.write_text(path.read_text().replace("actuals: {fr: {carbonIntensity: ci.csv}}\n", ""))
    with pytest.raises(InputFileError, match=r"forecasts\.fr\.carbonIntensity: a real "
                                             "forecast is judged against what happened"):
        load_scenario(str(path))


def test_a_forecasts_band_reaches_the_planner(tmp_path: Path) -> None:
    """p10,p90 columns of a forecast file are the band the policies see (the planner's
    pessimistic supply), not collapsed onto the value."""
    told = [400.0 + 100.0 * math.sin(i / 7) for i in range(192)]
    path = scenario(tmp_path, forecast=told)
    (tmp_path / "fc.csv").write_text("time,value,p10,p90\n" + "".join(
        f"{(START + i * timedelta(minutes=30)).isoformat()},{v:.3f},{v - 100:.3f},{v + 50:.3f}\n"
        for i, v in enumerate(told)))
    text = path.read_text().replace("supply: []", "supply: [{type: solar, name: pv, "
                                                  "capacityKW: 1000}]")
    path.write_text(text.replace("{carbonIntensity: ci.csv}", "{solar: ci.csv}").replace(
        "{carbonIntensity: fc.csv}", "{solar: fc.csv}"))
    world = build_world(load_scenario(str(path)))
    sig = world.signals(4)
    assert sig.green_p50[0, :40] == pytest.approx(told[4:44], abs=1e-3)
    assert sig.green_p10[0, :40] == pytest.approx(np.array(told[4:44]) - 100.0, abs=1e-3)
    assert world._issued[0].green_p90_kw[:40] == pytest.approx(
        np.array(told[4:44]) + 50.0, abs=1e-3)


def test_a_band_that_misses_its_value_is_refused(tmp_path: Path) -> None:
    path = scenario(tmp_path, forecast=intensity(96))
    rows = (tmp_path / "fc.csv").read_text().splitlines()
    (tmp_path / "fc.csv").write_text("time,value,p10,p90\n" + "".join(
        f"{r},{'999' if n == 2 else '0'},999\n" for n, r in enumerate(rows[1:], start=2)))
    with pytest.raises(InputFileError, match=r"fc\.csv: row 2: the band does not hold the "
                                             r"value \(p10 <= value <= p90\); correct"):
        build_world(load_scenario(str(path)))


def test_vintages_with_more_columns_are_refused(tmp_path: Path) -> None:
    path = scenario(tmp_path, forecast=intensity(96))
    (tmp_path / "fc.csv").write_text("issued,time,value,p10\n2026-06-01T00:00:00Z,"
                                     "2026-06-01T00:00:00Z,1,0\n")
    with pytest.raises(InputFileError, match="row 1: a forecast with vintages has the "
                                             "header issued,time,value"):
        build_world(load_scenario(str(path)))


def test_an_hour_missing_from_an_intensity_file_is_refused_not_interpolated(
        tmp_path: Path) -> None:
    """Two 30-minute rows missing were bridged by linear interpolation (the rate's
    resampling spans gaps up to an hour), so the run saw values the file never had."""
    path = scenario(tmp_path)
    values = intensity(96)
    (tmp_path / "ci.csv").write_text("time,value\n" + "".join(
        f"{(START + i * timedelta(minutes=30)).isoformat()},{v:.3f}\n"
        for i, v in enumerate(values) if i not in (20, 21)))
    with pytest.raises(InputFileError) as exc:
        build_world(load_scenario(str(path)))
    assert "no data from 2026-06-01T10:00Z to 2026-06-01T11:00Z" in str(exc.value)

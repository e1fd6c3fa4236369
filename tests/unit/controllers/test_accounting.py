"""The account of a finished run through the controller's glue: modelled without
Prometheus or when it fails (labelled, counted), priced slot by slot at what the site
was observed to be, entered in the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.support.forecasts import powersite
from tests.support.objects import computejob
from tests.support.operator import free_port

from suandian import metrics
from suandian.api.validation import parse_powersite
from suandian.config import Settings
from suandian.controllers import completion
from suandian.controllers.accounting import measure_run, meter_from, site_mix
from suandian.controllers.clock import LoopClock
from suandian.controllers.context import Context, Sample
from suandian.controllers.jobacts import JobActs
from suandian.controllers.next_action import Child
from suandian.controllers.planning import SiteEntry
from suandian.measure.prometheus import MeasureConfig

T0 = datetime(2026, 6, 21, tzinfo=UTC)


class Api:
    """Records status patches (the only call a completion makes)."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch_computejob(self, ns: str, name: str, patch: dict[str, Any],
                               status: bool = False) -> None:
        self.patches.append(patch["status"])


def context(**settings: Any) -> Context:
    ctx = Context(settings=Settings(**settings), clock=LoopClock(T0), api=Api())  # type: ignore[arg-type]
    site = parse_powersite(powersite("gansu", "gansu"))
    site.spec.pue = 1.25
    ctx.sites["gansu"] = SiteEntry(site=site, forecast=None)  # type: ignore[arg-type]
    return ctx


def record(ctx: Context, **status: Any) -> Any:
    body = computejob("train", watts=4000.0)
    body["metadata"].update(uid="u1", generation=1, creationTimestamp="2026-06-20T23:00:00Z")
    body["status"] = {"phase": "Running", "site": "gansu", "jobName": "train",
                      "expectedGreenFraction": 0.5, **status}
    return ctx.book.observe(body)


CHILD = {"metadata": {"name": "train", "namespace": "batch", "labels": {}}}


def test_the_site_mix_falls_back_to_configured_capacities() -> None:
    site = parse_powersite(powersite("gansu", "gansu"))
    mix = site_mix(site)
    assert mix and all(v > 0 for v in mix.values())
    assert site_mix(None) == {}


async def test_without_prometheus_the_run_is_modelled_and_priced_slot_by_slot() -> None:
    ctx = context()
    assert ctx.meter is None
    # refreshed every 15 minutes: green covers all of the first hour, none of the second
    for quarter in range(8):
        first_hour = quarter < 4
        ctx.record_sample("gansu", Sample(
            T0 + quarter * timedelta(minutes=15), 100.0 if first_hour else 0.0,
            300.0 if first_hour else 700.0, compute_kw=5.0,
            green_by_source_kw={"solar": 75.0, "wind": 25.0} if first_hour else {}))
    measured = await measure_run(ctx, record(ctx), CHILD, "gansu", T0,
                                 T0 + timedelta(hours=2), 7200.0, 4000.0, 0.5)
    status = measured.status()
    assert status["provenance"] == "modelled" and status["measuredShare"] == 0.0
    assert "SUANDIAN_MEASURE_URL" in status["reason"]
    a = measured.account
    assert a.it_kwh == pytest.approx(8.0) and a.energy_kwh == pytest.approx(10.0)
    assert status["energyBySourceKWh"] == {"solar": pytest.approx(3.75),
                                           "wind": pytest.approx(1.25),
                                           "grid": pytest.approx(5.0)}
    assert a.emissions_g == pytest.approx(5.0 * 700.0)  # the second hour, all grid
    assert a.observed_share == 1.0


async def test_a_failing_prometheus_never_fails_the_completion(
        monkeypatch: pytest.MonkeyPatch) -> None:
    metrics.reset()
    ctx = context()
    ctx.meter = MeasureConfig(url=f"http://127.0.0.1:{free_port()}", attempts=1,
                              timeout_s=2.0)
    posted: list[tuple[str, str]] = []
    monkeypatch.setattr("suandian.k8s.events.warning",
                        lambda body, reason, message: posted.append((reason, message)))
    monkeypatch.setattr("suandian.k8s.events.normal", lambda body, reason, message: None)
    rec = record(ctx, emissions={"runNowGrams": 9000.0}, energyKWh=10.0)
    acts = JobActs(ctx, rec, "cj/u1")
    child = {**CHILD, "status": {"startTime": "2026-06-21T00:00:00Z",
                                 "completionTime": "2026-06-21T02:00:00Z"}}
    await completion.finish(acts, child, Child("Complete", ran_s=7200.0), succeeded=True)
    [patch] = ctx.api.patches  # type: ignore[attr-defined]
    m = patch["measurement"]
    assert m["provenance"] == "modelled" and "Unreachable" in m["reason"]
    assert patch["energyKWh"] == pytest.approx(10.0)  # 4 kW x 2 h x 1.25
    assert patch["phase"] == "Succeeded" and "energy modelled" in str(patch["conditions"])
    assert [r for r, _ in posted] == ["MeasurementFailed"]
    assert metrics.registry().get_sample_value(
        "suandian_measurement_failures_total", {"reason": "Unreachable"}) == 1.0
    # the ledger has the run, modelled, its kWh by source summing to its energy
    joules = sum(metrics.registry().get_sample_value(
        "suandian_ledger_energy_joules_total",
        {"namespace": "batch", "site": "gansu", "source": s, "provenance": "modelled"}) or 0.0
        for s in metrics.LEDGER_SOURCES)
    assert joules / 3.6e6 == pytest.approx(10.0)


def test_settings_make_the_reader() -> None:
    assert meter_from(Settings()) is None
    meter = meter_from(Settings(measure_url="http://prom:9090", measure_exporters="dcgm",
                                measure_token="t0k"))
    assert meter is not None and meter.exporters == ("dcgm",)
    assert meter.headers() == {"Authorization": "Bearer t0k"}
    basic = meter_from(Settings(measure_url="http://prom:9090", measure_username="u",
                                measure_password="p"))
    assert basic is not None and basic.headers() == {"Authorization": "Basic dTpw"}
    assert meter_from(Settings(measure_url="http://p:1")).max_gap_s == 90.0  # type: ignore[union-attr]


def test_a_site_sample_shares_its_green_supply_between_the_jobs_running_there() -> None:
    assert Sample(T0, green_kw=50, carbon_g_per_kwh=500, compute_kw=100).green_share == 0.5
    assert Sample(T0, green_kw=500, carbon_g_per_kwh=500, compute_kw=100).green_share == 1.0
    assert Sample(T0, green_kw=0, carbon_g_per_kwh=500, compute_kw=0).green_share == 0.0

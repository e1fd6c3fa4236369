"""The account of a finished run: measured green share and intensity when observed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from suandian.config import Settings
from suandian.controllers.accounting import account_run
from suandian.controllers.clock import LoopClock
from suandian.controllers.context import Context, Sample

T0 = datetime(2026, 6, 21, tzinfo=UTC)


def test_the_observed_share_and_intensity_price_the_energy() -> None:
    run = account_run(power_w=10_000, pue=1.2, run_s=7200, observed_green_share=0.25,
                      observed_carbon=600.0, planned_green_share=1.0, configured_carbon=100)
    assert run.energy_kwh == pytest.approx(24.0)  # 10 kW x 2 h x 1.2
    assert run.green_kwh == pytest.approx(6.0) and run.grid_kwh == pytest.approx(18.0)
    assert run.emissions_g == pytest.approx(18.0 * 600.0) and run.measured


def test_without_observations_the_plan_and_the_configured_intensity_stand_in() -> None:
    run = account_run(power_w=1000, pue=1.0, run_s=3600, observed_green_share=None,
                      observed_carbon=None, planned_green_share=0.5, configured_carbon=400)
    assert run.emissions_g == pytest.approx(0.5 * 400) and not run.measured


def test_a_site_sample_shares_its_green_supply_between_the_jobs_running_there() -> None:
    assert Sample(T0, green_kw=50, carbon_g_per_kwh=500, compute_kw=100).green_share == 0.5
    assert Sample(T0, green_kw=500, carbon_g_per_kwh=500, compute_kw=100).green_share == 1.0
    assert Sample(T0, green_kw=0, carbon_g_per_kwh=500, compute_kw=0).green_share == 0.0


def test_the_context_averages_the_samples_taken_during_the_run() -> None:
    ctx = Context(settings=Settings(), clock=LoopClock(T0), api=None)  # type: ignore[arg-type]
    for hour, green in enumerate([0, 100, 50, 0]):
        ctx.record_sample("s", Sample(T0 + timedelta(hours=hour), green, 400 + hour * 100,
                                      compute_kw=100))
    during = ctx.observed("s", T0 + timedelta(minutes=30), T0 + timedelta(hours=2, minutes=30))
    assert during is not None and during.samples == 2
    assert during.green_share == pytest.approx(0.75)
    assert during.carbon_g_per_kwh == pytest.approx(550.0)
    # a run between two refreshes takes the sample before it; an unseen site has none
    short = ctx.observed("s", T0 + timedelta(hours=3, minutes=5),
                         T0 + timedelta(hours=3, minutes=10))
    assert short is not None and short.samples == 1 and short.green_share == 0.0
    assert ctx.observed("elsewhere", T0, T0 + timedelta(hours=1)) is None
    # a sample from long before the run (e.g. before a failover) is not an observation
    assert ctx.observed("s", T0 + timedelta(hours=9), T0 + timedelta(hours=10)) is None

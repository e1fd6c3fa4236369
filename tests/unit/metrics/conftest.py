"""A fresh metrics registry per test, on a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from suandian import metrics
from suandian.errors import ProviderError


class FakeClock:
    """Unix time that only moves when the test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(clock: FakeClock) -> Iterator[CollectorRegistry]:
    yield metrics.reset(clock=clock)
    metrics.reset()


@pytest.fixture
def populated(registry: CollectorRegistry) -> CollectorRegistry:
    """Every record_* helper called once, so every metric has at least one labelled series."""
    metrics.record_site(
        "gansu", green_power_kw_by_source={"solar": 1200.0, "wind": 300.0, "storage": 50.0},
        grid_carbon_intensity_g_per_kwh=477.2, compute_power_kw=800.0, headroom_kw=750.0,
        forecast_updated=1_799_999_400.0, max_staleness_s=21600.0, degraded=False)
    metrics.record_site_forecast("gansu", {"1h": 1000.0, "6h": 900.0, "24h": 600.0})
    metrics.record_jobs_by_phase({("gansu", "Running"): 3, (None, "Pending"): 2})
    metrics.record_deferral("gansu")
    metrics.record_start("gansu", trigger="planned", delay_s=3600.0)
    metrics.record_suspension("gansu")
    metrics.record_planning(0.02, jobs=5)
    metrics.record_deadline_miss("gansu")
    metrics.record_child_refused(422)
    metrics.record_planning_failure("Bug")
    metrics.record_step_failure("ApiError")
    metrics.record_job_finished("gansu", outcome="Succeeded", green_kwh=3.0, grid_kwh=1.0,
                                emissions_g=477.2, avoided_g=900.0)
    metrics.record_ledger_run(
        namespace="team-a", site="gansu", kwh_by_source={"solar": 2.0, "wind": 1.0, "grid": 1.0},
        it_kwh=3.2, emissions_g=477.2, saved_g=900.0, provenance="measured")
    metrics.record_measurement_failure("Unreachable")
    metrics.record_provider_request("wattTime", duration_s=0.3,
                                    error=ProviderError("wattTime", "Timeout", "10 s"))
    metrics.record_grid_event("evening-peak", "Shed", "Active", {"jiangsu": metrics.SiteFigures(
        asked_kw=60.0, committed_kw=60.0, delivered_kw=55.0, shortfall_kw=0.0)},
        delivered_kwh=4.6)
    return registry

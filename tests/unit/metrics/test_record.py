"""Each record_* helper: the series it writes, its unit conversion, its label checks."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from suandian import __version__, metrics
from suandian.errors import (
    PROVIDER_REASONS,
    ForecastError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderResponseError,
)


def site(**overrides: object) -> None:
    args: dict[str, object] = {
        "green_power_kw_by_source": {"solar": 1.5, "directGreen": 2.0},
        "grid_carbon_intensity_g_per_kwh": 540.0, "compute_power_kw": 0.8,
        "headroom_kw": -0.25, "forecast_updated": 1_799_999_000.0,
        "max_staleness_s": 21600.0, "degraded": True,
    }
    args.update(overrides)
    metrics.record_site("ningxia", **args)  # type: ignore[arg-type]


def test_site_gauges_are_in_base_units(registry: CollectorRegistry) -> None:
    site()
    get = registry.get_sample_value
    assert get("suandian_site_green_power_watts", {"site": "ningxia", "source": "solar"}) == 1500
    assert get("suandian_site_green_power_watts",
               {"site": "ningxia", "source": "directGreen"}) == 2000
    assert get("suandian_site_grid_carbon_intensity_grams_per_joule",
               {"site": "ningxia"}) == pytest.approx(540 / 3.6e6)
    assert get("suandian_site_compute_power_watts", {"site": "ningxia"}) == 800
    assert get("suandian_site_headroom_watts", {"site": "ningxia"}) == -250
    assert get("suandian_site_degraded", {"site": "ningxia"}) == 1
    assert get("suandian_site_forecast_max_staleness_seconds", {"site": "ningxia"}) == 21600


def test_a_source_that_disappears_loses_its_series(registry: CollectorRegistry) -> None:
    site()
    site(green_power_kw_by_source={"solar": 0.5})
    assert registry.get_sample_value(
        "suandian_site_green_power_watts", {"site": "ningxia", "source": "directGreen"}) is None


def test_forecast_age_is_computed_at_scrape_time(registry: CollectorRegistry, clock: Any) -> None:
    site(forecast_updated=clock.now - 60)
    age = {"site": "ningxia"}
    assert registry.get_sample_value("suandian_site_forecast_age_seconds", age) == 60
    clock.now += 3600
    assert registry.get_sample_value("suandian_site_forecast_age_seconds", age) == 3660
    site(forecast_updated=clock.now)
    assert registry.get_sample_value("suandian_site_forecast_age_seconds", age) == 0


def test_first_sight_of_a_site_creates_its_counters_at_zero(registry: CollectorRegistry) -> None:
    site()
    get = registry.get_sample_value
    assert get("suandian_deadline_misses_total", {"site": "ningxia"}) == 0
    assert get("suandian_deferrals_total", {"site": "ningxia"}) == 0
    assert get("suandian_job_starts_total", {"site": "ningxia", "trigger": "deadline"}) == 0
    assert get("suandian_energy_joules_total", {"site": "ningxia", "source": "grid"}) == 0


def test_site_removal_drops_gauges_but_keeps_counters(registry: CollectorRegistry) -> None:
    site()
    metrics.record_site_forecast("ningxia", {"6h": 1.0})
    metrics.record_deferral("ningxia")
    metrics.record_site_removed("ningxia")
    names = {s.name for f in registry.collect() for s in f.samples
             if s.labels.get("site") == "ningxia"}
    assert names == {"suandian_deferrals_total", "suandian_deferrals_created",
                     "suandian_deadline_misses_total", "suandian_deadline_misses_created",
                     "suandian_job_suspensions_total", "suandian_job_suspensions_created",
                     "suandian_job_starts_total", "suandian_job_starts_created",
                     "suandian_energy_joules_total", "suandian_energy_joules_created",
                     "suandian_emissions_grams_total", "suandian_emissions_grams_created",
                     "suandian_emissions_avoided_grams_total",
                     "suandian_emissions_avoided_grams_created",
                     # the histogram exists at 0 too, so a site's first starts show in rate()
                     "suandian_deferral_duration_seconds_bucket",
                     "suandian_deferral_duration_seconds_count",
                     "suandian_deferral_duration_seconds_sum",
                     "suandian_deferral_duration_seconds_created"}


def test_forecast_horizons_are_checked(registry: CollectorRegistry) -> None:
    metrics.record_site_forecast("gansu", {"24h": 2.5})
    assert registry.get_sample_value(
        "suandian_site_green_power_forecast_watts", {"site": "gansu", "horizon": "24h"}) == 2500
    with pytest.raises(ValueError, match="horizon '7h'"):
        metrics.record_site_forecast("gansu", {"7h": 1.0})


def test_unknown_source_is_refused(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="source 'coal'"):
        site(green_power_kw_by_source={"coal": 1.0})


def test_jobs_by_phase_is_a_census_not_a_running_sum(registry: CollectorRegistry) -> None:
    metrics.record_jobs_by_phase({("gansu", "Running"): 4, (None, "Pending"): 2})
    metrics.record_jobs_by_phase({("gansu", "Deferred"): 1})
    get = registry.get_sample_value
    assert get("suandian_jobs", {"site": "gansu", "phase": "Deferred"}) == 1
    assert get("suandian_jobs", {"site": "gansu", "phase": "Running"}) is None
    assert get("suandian_jobs", {"site": "", "phase": "Pending"}) is None
    with pytest.raises(ValueError, match="phase 'Queued'"):
        metrics.record_jobs_by_phase({("gansu", "Queued"): 1})


def test_starts_observe_the_delay_except_resumes(registry: CollectorRegistry) -> None:
    metrics.record_start("gansu", trigger="planned", delay_s=7200)
    metrics.record_start("gansu", trigger="deadline", delay_s=-3)
    metrics.record_start("gansu", trigger="resumed", delay_s=99999)
    get = registry.get_sample_value
    assert get("suandian_job_starts_total", {"site": "gansu", "trigger": "planned"}) == 1
    assert get("suandian_deferral_duration_seconds_count", {"site": "gansu"}) == 2
    assert get("suandian_deferral_duration_seconds_sum", {"site": "gansu"}) == 7200
    assert get("suandian_deferral_duration_seconds_bucket", {"site": "gansu", "le": "3600.0"}) == 1
    with pytest.raises(ValueError, match="trigger 'manual'"):
        metrics.record_start("gansu", trigger="manual", delay_s=0)


def test_finished_jobs_add_energy_emissions_and_the_green_ratio(
    registry: CollectorRegistry,
) -> None:
    metrics.record_job_finished("gansu", outcome="Succeeded", green_kwh=3, grid_kwh=1,
                                emissions_g=500, avoided_g=1200)
    metrics.record_job_finished("gansu", outcome="Failed", green_kwh=0, grid_kwh=4,
                                emissions_g=2000, avoided_g=-300)
    get = registry.get_sample_value
    assert get("suandian_energy_joules_total", {"site": "gansu", "source": "green"}) == 3 * 3.6e6
    assert get("suandian_energy_joules_total", {"site": "gansu", "source": "grid"}) == 5 * 3.6e6
    assert get("suandian_emissions_grams_total", {"site": "gansu"}) == 2500
    assert get("suandian_emissions_avoided_grams_total", {"site": "gansu"}) == 1200
    assert get("suandian_completed_work_green_ratio", {"site": "gansu"}) == pytest.approx(3 / 8)
    assert get("suandian_jobs_finished_total", {"site": "gansu", "outcome": "Failed"}) == 1
    with pytest.raises(ValueError, match="outcome 'Running'"):
        metrics.record_job_finished("gansu", outcome="Running", green_kwh=0, grid_kwh=0,
                                    emissions_g=0, avoided_g=0)


def test_planning_and_deadline_misses(registry: CollectorRegistry) -> None:
    metrics.record_planning(0.2, jobs=10)
    metrics.record_planning(0.004, jobs=1)
    metrics.record_deadline_miss("guizhou")
    get = registry.get_sample_value
    assert get("suandian_planning_duration_seconds_count", {}) == 2
    assert get("suandian_planning_duration_seconds_bucket", {"le": "0.005"}) == 1
    assert get("suandian_planned_jobs_total", {}) == 11
    assert get("suandian_deadline_misses_total", {"site": "guizhou"}) == 1


@pytest.mark.parametrize(("error", "reason"), [
    (ProviderAuthError("wattTime", "Unauthorized", "401"), "Unauthorized"),
    (ProviderAuthError("wattTime", "MissingCredentials", "no Secret"), "MissingCredentials"),
    (ProviderRateLimited("wattTime", "429", retry_after=30), "RateLimited"),
    (ProviderError("wattTime", "Unreachable", "ClientConnectorError"), "Unreachable"),
    (ProviderResponseError("wattTime", "ClientError", "HTTP 404"), "ClientError"),
    (ProviderResponseError("csv", "MalformedResponse", "row 3: ..."), "MalformedResponse"),
    (ProviderResponseError("wattTime", "Stale", "data is 7 h old"), "Stale"),
    (ForecastError("green or storage power is negative"), "Rejected"),
    (RuntimeError("boom"), "Other"),
])
def test_provider_errors_keep_their_own_reason(error: BaseException, reason: str) -> None:
    """One vocabulary: the reason a provider gave is the label, never remapped."""
    assert metrics.provider_error_reason(error) == reason
    assert reason in metrics.PROVIDER_ERROR_REASONS


def test_every_provider_reason_is_a_label_and_no_other_reason_exists() -> None:
    assert PROVIDER_REASONS <= metrics.PROVIDER_ERROR_REASONS
    assert {"Rejected", "Other"} == metrics.PROVIDER_ERROR_REASONS - PROVIDER_REASONS
    with pytest.raises(ValueError, match="provider failure reason 'Weird'"):
        ProviderError("wattTime", "Weird", "?")


def test_provider_requests_count_failures_among_requests(registry: CollectorRegistry) -> None:
    metrics.record_provider_request("electricityMaps", duration_s=0.1)
    metrics.record_provider_request("electricityMaps", duration_s=5.0,
                                    error=ProviderError("electricityMaps", "Timeout", "10 s"))
    get = registry.get_sample_value
    assert get("suandian_provider_requests_total", {"provider": "electricityMaps"}) == 2
    assert get("suandian_provider_errors_total",
               {"provider": "electricityMaps", "reason": "Timeout"}) == 1
    assert get("suandian_provider_request_duration_seconds_count",
               {"provider": "electricityMaps"}) == 2
    with pytest.raises(ValueError, match="provider 'acme'"):
        metrics.record_provider_request("acme", duration_s=0.1)


def test_build_info_names_this_build(registry: CollectorRegistry) -> None:
    samples = [s for f in registry.collect() if f.name == "suandian_build_info"
               for s in f.samples]
    assert len(samples) == 1
    assert samples[0].value == 1
    assert samples[0].labels["version"] == __version__


def test_reset_gives_an_empty_registry(registry: CollectorRegistry) -> None:
    metrics.record_deferral("gansu")
    fresh = metrics.reset()
    assert fresh is not registry
    assert fresh.get_sample_value("suandian_deferrals_total", {"site": "gansu"}) is None
    assert metrics.registry() is fresh


def test_the_global_registry_is_untouched(registry: CollectorRegistry) -> None:
    from prometheus_client import REGISTRY

    metrics.record_deferral("gansu")
    assert not [f for f in REGISTRY.collect() if f.name.startswith("suandian_")]


def test_child_job_refusals_by_reason(registry: CollectorRegistry) -> None:
    for status in (422, 422, 403):
        metrics.record_child_refused(status)
    get = registry.get_sample_value
    assert get("suandian_child_job_refusals_total", {"reason": "Invalid"}) == 2
    assert get("suandian_child_job_refusals_total", {"reason": "Forbidden"}) == 1
    with pytest.raises(ValueError, match="refusal"):
        metrics.record_child_refused(500)  # not a refusal: transient, retried


def test_failure_counters_exist_at_zero_and_count_by_reason(
        registry: CollectorRegistry) -> None:
    get = registry.get_sample_value
    assert get("suandian_planning_failures_total", {"reason": "Bug"}) == 0
    assert get("suandian_step_failures_total", {"reason": "ApiError"}) == 0
    metrics.record_planning_failure("Bug")
    metrics.record_step_failure("ApiError")
    metrics.record_step_failure("ApiError")
    assert get("suandian_planning_failures_total", {"reason": "Bug"}) == 1
    assert get("suandian_step_failures_total", {"reason": "ApiError"}) == 2
    with pytest.raises(ValueError, match="reason 'ApiError'"):
        metrics.record_planning_failure("ApiError")  # a round calls no API

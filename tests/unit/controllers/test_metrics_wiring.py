"""The operator's calls of the metrics helpers: job census, deadline misses, provider requests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from tests.support.forecasts import powersite
from tests.support.objects import computejob

from suandian import metrics
from suandian.api.validation import parse_computejob, parse_powersite
from suandian.config import Settings
from suandian.controllers.census import JobCensus
from suandian.controllers.computejob import finished_late
from suandian.controllers.context import Context
from suandian.controllers.powersite import record_provider_requests
from suandian.errors import ProviderError, ProviderResponseError
from suandian.planner import JobTerms

T0 = datetime(2026, 6, 21, tzinfo=UTC)


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    yield metrics.reset()
    metrics.reset()


def jobs_gauge(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {(s.labels["site"], s.labels["phase"]): s.value
            for family in registry.collect() if family.name == "suandian_jobs"
            for s in family.samples}


def body(phase: str | None, site: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if site is not None:
        status["site"] = site
    return {"metadata": {"name": "j"}, "status": status}


def test_census_follows_each_job_through_its_phases(registry: CollectorRegistry) -> None:
    census = JobCensus()
    census.observe("a", body(None))
    census.observe("b", body("Deferred", "gansu"))
    census.observe("c", body("Deferred", "gansu"))
    assert jobs_gauge(registry) == {("", "Pending"): 1, ("gansu", "Deferred"): 2}
    census.observe("a", body("Running", "ningxia"))
    census.observe("b", body("Succeeded", "gansu"))
    census.observe("c", None)  # deleted
    assert jobs_gauge(registry) == {("ningxia", "Running"): 1, ("gansu", "Succeeded"): 1}
    assert census.counts() == {("ningxia", "Running"): 1, ("gansu", "Succeeded"): 1}


def test_census_deletion_of_an_unknown_job_changes_nothing(registry: CollectorRegistry) -> None:
    census = JobCensus()
    census.observe("a", body("Running", "gansu"))
    census.observe("zz", None)
    assert jobs_gauge(registry) == {("gansu", "Running"): 1}


def test_context_republishes_the_census_after_each_planning_round(
        registry: CollectorRegistry) -> None:
    ctx = Context(settings=Settings(), clock=None, api=None)  # type: ignore[arg-type]
    ctx.census.observe("a", body("Deferred", "gansu"))
    fresh = metrics.reset()  # e.g. a new registry: the gauge is empty until republished
    assert jobs_gauge(fresh) == {}
    assert ctx.planning.after_round is not None
    ctx.planning.after_round()
    assert jobs_gauge(fresh) == {("gansu", "Deferred"): 1}


async def test_a_planning_round_calls_its_after_round_hook(registry: CollectorRegistry) -> None:
    ctx = Context(settings=Settings(), clock=None, api=None)  # type: ignore[arg-type]
    calls: list[int] = []
    ctx.planning.after_round = lambda: calls.append(1)
    await ctx.planning.run_round()  # nothing to plan: the round still ends
    assert calls == [1]


def job(max_delay: str = "1h", duration: str = "2h") -> Any:
    raw = computejob("j", max_delay=max_delay, duration=duration)
    raw["metadata"]["creationTimestamp"] = "2026-06-21T00:00:00Z"
    return parse_computejob(raw, created=T0), raw


def test_a_job_finishing_after_its_deadline_is_a_miss() -> None:
    terms = JobTerms.from_computejob(job()[0])  # deadline: created + 2h + 1h
    status = {"startedAt": "2026-06-21T00:30:00Z", "latestStart": "2026-06-21T00:55:00Z"}
    assert not finished_late(terms, T0, status, T0 + timedelta(hours=3))
    assert not finished_late(terms, T0, status, T0 + timedelta(hours=3, seconds=30))  # grace
    assert finished_late(terms, T0, status, T0 + timedelta(hours=3, minutes=5))


def test_a_job_counted_at_a_late_start_is_not_counted_again_at_its_finish() -> None:
    terms = JobTerms.from_computejob(job()[0])
    status = {"startedAt": "2026-06-21T02:00:00Z", "latestStart": "2026-06-21T00:55:00Z"}
    assert not finished_late(terms, T0, status, T0 + timedelta(hours=4))


def provider_samples(registry: CollectorRegistry) -> dict[tuple[str, ...], float]:
    out = {}
    for family in registry.collect():
        if family.name.startswith("suandian_provider_"):
            for s in family.samples:
                if s.name.endswith(("_total", "_count")):
                    out[(s.name, *sorted(s.labels.values()))] = s.value
    return out


def site(supply: str = "builtin", carbon: str = "builtin") -> Any:
    raw = powersite("gansu", "gansu")
    raw["spec"]["forecast"]["supply"] = {"provider": supply}  # type: ignore[index]
    raw["spec"]["forecast"]["carbon"] = {"provider": carbon}  # type: ignore[index]
    if carbon == "wattTime":
        ref = {"name": "wt", "key": "k"}
        raw["spec"]["forecast"]["carbon"]["wattTime"] = {  # type: ignore[index]
            "region": "CAISO", "usernameSecretRef": ref, "passwordSecretRef": ref}
    return parse_powersite(raw)


def test_a_refresh_counts_one_request_per_provider(registry: CollectorRegistry) -> None:
    record_provider_requests(site(), 0.2, None)
    samples = provider_samples(registry)
    assert samples[("suandian_provider_requests_total", "builtin")] == 1
    assert samples[("suandian_provider_request_duration_seconds_count", "builtin")] == 1
    assert not any(k[0] == "suandian_provider_errors_total" for k in samples)


def test_a_failed_refresh_is_charged_to_the_provider_the_error_names(
        registry: CollectorRegistry) -> None:
    s = site(supply="builtin", carbon="wattTime")
    record_provider_requests(s, 1.0, ProviderError("wattTime", "Timeout", "no answer"))
    record_provider_requests(s, 1.0, ProviderResponseError("?", "Stale", "old data"))
    samples = provider_samples(registry)
    assert samples[("suandian_provider_requests_total", "wattTime")] == 2
    assert samples[("suandian_provider_requests_total", "builtin")] == 2
    assert samples[("suandian_provider_errors_total", "Timeout", "wattTime")] == 1
    assert samples[("suandian_provider_errors_total", "Stale", "builtin")] == 1

"""Planning inputs and outputs, pods as jobs, the loop clock."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from suandian.api.validation import parse_computejob
from suandian.config import Settings
from suandian.controllers.clock import LoopClock
from suandian.controllers.computejob import decision_from_plan, has_started
from suandian.controllers.planning import _differs, signals_from
from suandian.controllers.pod import pod_as_computejob
from suandian.errors import InvalidSpecError
from suandian.forecast import SiteForecast, TimeGrid
from suandian.planner import JobDecision, JobTerms

T0 = datetime(2026, 6, 21, tzinfo=UTC)


def forecast() -> SiteForecast:
    grid = TimeGrid(T0, timedelta(minutes=15), 8)
    wind = np.arange(8, dtype=float) * 10
    return SiteForecast(site="s", grid=grid, green_kw={"wind": wind}, green_total_kw=wind,
                        green_p10_kw=wind / 2, green_p90_kw=wind, storage_kw=np.ones(8),
                        carbon_g_per_kwh=np.full(8, 500.0), carbon_p10=np.full(8, 500.0),
                        carbon_p90=np.full(8, 500.0), price=None, source="t", issued_at=T0)


def test_signals_count_storage_as_green_and_start_at_the_offset():
    signals = signals_from(forecast(), 2, 4)
    assert list(signals.green_p50_kw) == [21.0, 31.0, 41.0, 51.0]
    assert list(signals.green_p10_kw) == [11.0, 16.0, 21.0, 26.0]
    assert list(signals.green_by_source_kw["wind"]) == [20.0, 30.0, 40.0, 50.0]


def decision(site: str | None, start: datetime | None) -> JobDecision:
    return JobDecision(key="k", site=site, site_index=0, start_slot=0, planned_start=start,
                       latest_start=T0 + timedelta(hours=5), slots=(0,), windows=(),
                       start_now=False, node_preferences=(("n", 50),),
                       expected_emissions_g=1.0, run_now_emissions_g=3.0,
                       expected_green_fraction=0.5, energy_kwh=2.0, reason="why")


def test_decisions_differ_only_by_site_or_a_minute_or_more():
    a = decision("x", T0)
    assert not _differs(a, decision("x", T0 + timedelta(seconds=30)))
    assert _differs(a, decision("x", T0 + timedelta(minutes=15)))
    assert _differs(a, decision("y", T0))


def test_a_plan_without_a_site_is_no_decision():
    assert decision_from_plan(decision(None, None)) is None
    placed = decision_from_plan(decision("x", T0))
    assert placed is not None and placed.node_preferences == (("n", 50),)
    assert placed.saved_g == 2.0


def test_a_job_started_in_its_first_slot_is_planned_from_its_creation():
    """Created 09:06, started at once in the 09:00 slot: plannedStart reads 09:06."""
    created = T0 + timedelta(minutes=6)
    first = replace(decision("x", T0), windows=((T0, T0 + timedelta(hours=1)),))
    placed = decision_from_plan(first, created)
    assert placed is not None and placed.planned_start == created
    assert placed.windows == ((created, T0 + timedelta(hours=1)),)
    later = decision_from_plan(decision("x", T0 + timedelta(hours=2)), created)
    assert later is not None and later.planned_start == T0 + timedelta(hours=2)


def test_a_job_has_started_once_its_child_was_unsuspended():
    """As the real Job controller behaves (tests/envtest): ``startTime`` comes some
    0.4 s after the unsuspend, and goes when the Job is suspended again."""
    waiting = {"spec": {"suspend": True}, "status": {}}
    unsuspended = {"spec": {"suspend": False}, "status": {}}
    stamped = {"spec": {"suspend": False}, "status": {"startTime": "2026-06-21T00:00:00Z"}}
    assert not has_started(None, {}) and not has_started(waiting, {})
    assert has_started(unsuspended, {}) and has_started(stamped, {})
    # an interruptible job between two windows: suspended, startTime cleared, but it ran
    assert has_started(waiting, {"startedAt": "2026-06-21T00:00:00Z"})


def pod(annotations):  # type: ignore[no-untyped-def]
    return {"metadata": {"name": "p", "namespace": "ns", "annotations": annotations,
                         "creationTimestamp": "2026-06-21T00:00:00Z"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}


def test_pod_annotations_become_a_computejob_with_defaults():
    settings = Settings()
    manifest = pod_as_computejob(pod({}), settings)
    job = parse_computejob(manifest)
    assert job.spec.duration == settings.pod_default_duration
    assert job.spec.deadline.max_delay == settings.pod_default_max_delay
    # 4 W per requested CPU, 2 CPUs
    assert JobTerms.from_computejob(job).power_w == pytest.approx(8.0)
    custom = parse_computejob(pod_as_computejob(pod({
        "suandian.io/duration": "3h", "suandian.io/complete-by": "2026-06-22T00:00:00Z",
        "suandian.io/power-watts": "700", "suandian.io/sites": "a, b"}), settings))
    assert custom.spec.duration == timedelta(hours=3)
    assert custom.spec.sites == ["a", "b"] and JobTerms.from_computejob(custom).power_w == 700.0


def test_unreadable_pod_annotations_name_the_annotation():
    with pytest.raises(InvalidSpecError) as err:
        pod_as_computejob(pod({"suandian.io/duration": "soon",
                               "suandian.io/power-watts": "lots"}), Settings())
    assert set(err.value.fields) == {"metadata.annotations[suandian.io/duration]",
                                     "metadata.annotations[suandian.io/power-watts]"}


async def test_loop_clock_follows_the_event_loop():
    clock = LoopClock(T0)
    first = clock.now()
    await asyncio.sleep(0.05)
    assert clock.now() - first >= timedelta(seconds=0.05)
    await clock.sleep_until(clock.now() + timedelta(seconds=0.02))
    assert first >= T0
    with pytest.raises(ValueError):
        LoopClock(datetime(2026, 1, 1))

"""Behaviour of the models beyond refusing bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.support.invalid import WINDOWED

from suandian.api import (
    ComputeJob,
    ComputeJobStatus,
    Phase,
    Policy,
    PowerSite,
    parse_computejob,
    parse_powersite,
)
from suandian.errors import InvalidSpecError

from conftest import ROOT, load_yaml

JOB = load_yaml(ROOT / "examples/computejobs/llm-finetune.yaml")
SITE = load_yaml(ROOT / "examples/powersites/gansu.yaml")


def test_defaults_and_camel_case_round_trip() -> None:
    job = parse_computejob(JOB)
    assert job.spec.policy is Policy.OPTIMIZE and job.spec.interruptible is False
    wire = job.to_wire()
    assert wire["spec"]["deadline"] == {"maxDelay": "14h"}
    assert wire["spec"]["minGreenFraction"] == 0.6
    assert parse_computejob(wire) == job


def test_pass_through_fields_survive() -> None:
    """Fields of the Job and pod spec that Suandian does not model are kept verbatim."""
    wire = parse_computejob(JOB).to_wire()
    assert wire["spec"]["template"]["spec"]["backoffLimit"] == 2
    container = wire["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][0] == "--model"
    assert container["resources"]["requests"] == {"cpu": "64", "memory": "549755813888",
                                                 "nvidia.com/gpu": "8"}


def test_window_from_max_delay() -> None:
    job = parse_computejob(JOB)
    created = datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert job.window(created) == (created, created + timedelta(hours=24))


def test_window_from_complete_by_and_not_before() -> None:
    job = parse_computejob(WINDOWED)
    earliest, deadline = job.window(datetime(2026, 11, 28, 12, tzinfo=UTC))
    assert earliest == datetime(2026, 11, 28, 16, 30, tzinfo=UTC)
    assert deadline == datetime(2026, 11, 29, 0, tzinfo=UTC)


def test_a_past_deadline_is_refused_whatever_notBefore_says() -> None:
    """Creation after completeBy: refused, even though notBefore..completeBy would fit."""
    obj = {**WINDOWED, "metadata": {**WINDOWED["metadata"],
                                    "creationTimestamp": "2026-11-30T09:06:00Z"}}
    with pytest.raises(InvalidSpecError, match=r"deadline has passed"):
        parse_computejob(obj)
    obj["metadata"]["creationTimestamp"] = "2026-11-28T23:00:00Z"  # 07:00 +08: 1h left
    with pytest.raises(InvalidSpecError, match=r"window from creation .* not longer"):
        parse_computejob(obj)


def test_creation_time_from_metadata() -> None:
    obj = {**JOB, "spec": {**JOB["spec"], "deadline": {"completeBy": "2026-11-28T20:00:00Z"}}}
    obj["metadata"] = {**obj["metadata"], "creationTimestamp": "2026-11-28T12:00:00Z"}
    with pytest.raises(InvalidSpecError, match=r"not longer than duration"):
        parse_computejob(obj)
    obj["metadata"]["creationTimestamp"] = "2026-11-28T08:00:00Z"
    assert parse_computejob(obj).spec.deadline.complete_by is not None


def test_status_is_optional_and_typed() -> None:
    job = ComputeJob.model_validate({**JOB, "status": {"phase": "Deferred", "greenPercent": 92}})
    assert isinstance(job.status, ComputeJobStatus) and job.status.phase is Phase.DEFERRED
    with pytest.raises(InvalidSpecError, match=r"status\.greenPercent"):
        parse_computejob({**JOB, "status": {"greenPercent": 140}})


def test_powersite_units_keep_their_case() -> None:
    site = parse_powersite(SITE)
    wire = site.to_wire()
    assert wire["spec"]["supply"][0]["capacityKW"] == 60000
    assert wire["spec"]["storage"]["capacityKWh"] == 40000
    assert wire["spec"]["grid"]["importLimitKW"] == 50000
    assert isinstance(PowerSite.model_validate(wire), PowerSite)


def test_error_lists_every_bad_field() -> None:
    spec = {**SITE["spec"], "pue": 0.5, "location": {"latitude": 123, "longitude": 0}}
    with pytest.raises(InvalidSpecError) as info:
        parse_powersite({**SITE, "spec": spec})
    assert set(info.value.fields) == {"spec.pue", "spec.location.latitude"}

"""ComputeJob: flexible batch work with a deadline, placed and deferred for green power.

Namespaced, short name ``cjob`` (``cj`` is CronJob's). The operator creates one child
``batch/v1`` Job from ``spec.template``, suspended, with node affinity to the chosen
site, and unsuspends it at the planned start. The deadline is hard: the job starts no
later than its latest start (deadline minus duration minus a safety margin), whatever
the forecast says.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from suandian.api.meta import (
    ApiModel,
    Condition,
    Duration,
    Resource,
    ResourceList,
    Time,
    cel,
)
from suandian.units import GO_DURATION_PATTERN, humanize_duration

__all__ = [
    "ComputeJob",
    "ComputeJobSpec",
    "ComputeJobStatus",
    "Container",
    "Deadline",
    "EmissionsEstimate",
    "JobSpecTemplate",
    "JobTemplate",
    "LabelSelector",
    "MeasurementStatus",
    "Phase",
    "PodSpecTemplate",
    "PodTemplate",
    "Policy",
    "PowerEstimateStatus",
    "PowerSpec",
    "RunWindow",
]

_POSITIVE = cel("self.matches('[1-9]')", "must be longer than zero, e.g. '30m'")


class _PassThrough(ApiModel):
    """A Kubernetes type of which Suandian checks a few fields and keeps the rest as is."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="allow")


class ResourceRequirements(_PassThrough):
    """A container's resource requests and limits."""

    requests: ResourceList = Field(default_factory=dict)
    """Resources the container needs; the planner reserves these on the chosen site."""
    limits: ResourceList = Field(default_factory=dict)
    """Most the container may use."""


class Container(_PassThrough):
    """A container of the Job's pods (the rest of ``corev1.Container`` passes through)."""

    name: str = Field(min_length=1, max_length=63)
    """Container name."""
    image: str | None = None
    """Container image."""
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    """Requests and limits; requests drive capacity planning and the power estimate."""


class PodSpecTemplate(_PassThrough):
    """The pod spec (``corev1.PodSpec``); Suandian adds node affinity and keeps the rest."""

    containers: list[Container] = Field(min_length=1)
    """At least one container."""


class PodTemplate(_PassThrough):
    """The pod template (``corev1.PodTemplateSpec``)."""

    spec: PodSpecTemplate
    """The pod spec."""


class JobSpecTemplate(_PassThrough):
    """The ``batch/v1`` JobSpec to run; ``suspend`` and node affinity are Suandian's."""

    parallelism: int = Field(default=1, ge=1, le=100_000)
    """Pods running at once; capacity and power scale with it."""
    template: PodTemplate
    """The pod template."""


class JobTemplate(ApiModel):
    """Like a CronJob's ``jobTemplate``: labels and annotations, and the Job spec."""

    metadata: dict[str, Any] | None = None
    """Labels and annotations for the child Job."""
    spec: JobSpecTemplate
    """The ``batch/v1`` JobSpec."""


class Deadline(ApiModel):
    """When the work must be done: give exactly one of ``completeBy`` or ``maxDelay``."""

    model_config: ClassVar[ConfigDict] = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.completeBy) != has(self.maxDelay)",
                    "set exactly one of completeBy (a time) or maxDelay (a duration)")
            ]
        }
    )

    complete_by: Time | None = None
    """RFC 3339 time by which the job must have finished, e.g. ``2026-11-29T08:00:00+08:00``."""
    max_delay: Duration | None = Field(
        default=None, json_schema_extra={"x-kubernetes-validations": [_POSITIVE]}
    )
    """How much later than running at once the job may finish, e.g. ``24h``."""

    @field_validator("max_delay")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be longer than zero, e.g. '24h'")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Deadline:
        if (self.complete_by is None) == (self.max_delay is None):
            raise ValueError("set exactly one of completeBy (a time) or maxDelay (a duration)")
        return self


class PowerSpec(ApiModel):
    """Expected electrical draw of the whole job while it runs (all pods, IT power)."""

    watts: float = Field(gt=0, le=1e9)
    """Mean draw in watts, more than 0 (a node with 8 H100 GPUs draws about 10,000 W)."""


class LabelSelector(ApiModel):
    """Select PowerSites by their labels."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    """Labels a site must carry, e.g. ``suandian.io/jurisdiction: cn``."""


class DataSpec(ApiModel):
    """The data the job reads and the PowerSite where it lives: running the job at
    another site moves it first (the planner counts the transfer's time against the
    deadline and its energy against the saving, docs/planner.md)."""

    size_gb: float = Field(alias="sizeGB", gt=0, le=1e7)
    """How much it reads, in GB (10^9 bytes), more than 0, e.g. ``500``."""
    site: str = Field(min_length=1, max_length=253,
                      pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    """The name of the PowerSite where the data lives, e.g. ``yangtze-delta``."""


class Policy(StrEnum):
    OPTIMIZE = "Optimize"
    PLACE_ONLY = "PlaceOnly"
    RUN_NOW = "RunNow"


class ComputeJobSpec(ApiModel):
    """What to run, how long it takes, by when, where it may run and how green."""

    model_config: ClassVar[ConfigDict] = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.notBefore) || !has(self.deadline.completeBy) || "
                    "!self.duration.matches('" + GO_DURATION_PATTERN + "') || "
                    "timestamp(self.deadline.completeBy) - timestamp(self.notBefore) "
                    "> duration(self.duration)",
                    "the window from notBefore to deadline.completeBy must be longer than "
                    "duration",
                    ".deadline.completeBy",
                )
            ]
        }
    )

    template: JobTemplate
    """The ``batch/v1`` Job to run (as in a CronJob's ``jobTemplate``)."""
    duration: Duration = Field(json_schema_extra={"x-kubernetes-validations": [_POSITIVE]})
    """Expected run time, e.g. ``4h``, ``90m`` or ``PT4H``; more than zero."""
    deadline: Deadline
    """When the work must be done."""
    not_before: Time | None = None
    """Earliest start, e.g. a nightly ETL that waits for the day's data."""
    power: PowerSpec | None = None
    """Expected draw; estimated from the pods' requested resources when unset."""
    interruptible: bool = False
    """May be suspended and resumed across green windows (the job must checkpoint)."""
    sites: list[Annotated[str, Field(min_length=1, max_length=253)]] | None = Field(
        default=None, max_length=256, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Names of the PowerSites it may run on (data residency); any when unset."""
    site_selector: LabelSelector | None = None
    """Labels of the PowerSites it may run on; combined with ``sites`` when both are set."""
    min_green_fraction: float = Field(default=0.0, ge=0, le=1)
    """Least share of green energy, 0 to 1; the job waits for it until its latest start."""
    priority: int = Field(default=0, ge=-1000, le=1000)
    """Higher goes first when green supply is scarce, from -1000 to 1000."""
    policy: Policy = Policy.OPTIMIZE
    """``Optimize`` (choose site and time), ``PlaceOnly`` (greenest site, start now) or
    ``RunNow`` (no shifting at all)."""
    data: DataSpec | None = None
    """The data it reads and where it lives (optional): another site must wait for it
    to be moved and pays for the move's energy."""

    @field_validator("duration")
    @classmethod
    def _positive_duration(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero, e.g. '30m'")
        return value

    @field_validator("sites")
    @classmethod
    def _unique_sites(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("each site may be named once")
        return value

    @model_validator(mode="after")
    def _window_fits(self, info: ValidationInfo) -> ComputeJobSpec:
        """``completeBy`` must leave room for ``duration`` after the earliest start: the
        later of ``notBefore`` and the creation time (when the caller knows it; a CRD
        rule cannot see it, so the operator applies this one)."""
        complete_by = self.deadline.complete_by
        if complete_by is None:
            return self
        created = info.context.get("created") if info.context else None
        if created is not None and complete_by <= created:
            raise ValueError(
                f"deadline.completeBy {complete_by.isoformat()} is not after the creation "
                f"time ({created.isoformat()}): the deadline has passed; set a later "
                "completeBy, or a maxDelay that is counted from creation")
        starts = [(t, label) for t, label in ((self.not_before, "notBefore"),
                                              (created, "creation")) if t is not None]
        if not starts:
            return self
        start, label = max(starts, key=lambda pair: pair[0])
        window = complete_by - start
        if window <= timedelta(0):
            raise ValueError(
                f"deadline.completeBy {complete_by.isoformat()} is not after "
                f"{label} ({start.isoformat()})")
        if window <= self.duration:
            raise ValueError(
                f"the window from {label} to deadline.completeBy "
                f"({humanize_duration(window)}) is not longer than duration "
                f"({humanize_duration(self.duration)}); move deadline.completeBy later or "
                "shorten duration")
        return self


class Phase(StrEnum):
    PENDING = "Pending"
    DEFERRED = "Deferred"
    ADMITTING = "Admitting"  # released; an admission queue (Kueue) has not let it run yet
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class RunWindow(ApiModel):
    """A planned run window of an interruptible job."""

    start: Time
    """Window start."""
    end: Time
    """Window end."""


class EmissionsEstimate(ApiModel):
    """Emissions in grams of CO2 (including PUE)."""

    expected_grams: float | None = None
    """Expected emissions of the planned run."""
    run_now_grams: float | None = None
    """Expected emissions had it started at once where it would have landed."""
    saved_grams: float | None = None
    """``runNowGrams - expectedGrams`` (or measured, once done)."""
    actual_grams: float | None = None
    """Measured emissions of the finished run."""


class MeasurementStatus(ApiModel):
    """Where a finished job's energy figures come from (docs/measurement.md)."""

    provenance: str = Field(pattern=r"^(measured|partial|modelled)$")
    """``measured`` (every figure from the exporters), ``modelled`` (none), or
    ``partial``: the share in ``measuredShare`` measured, the rest modelled."""
    exporters: list[str] = Field(default_factory=list)
    """The exporters that measured it: ``kepler``, ``dcgm``."""
    measured_share: float = Field(ge=0, le=1)
    """The measured share of its IT energy, 0 to 1."""
    it_energy_kwh: float = Field(alias="itEnergyKWh", ge=0)
    """IT energy, kWh, without PUE (``energyKWh`` is this times the site's PUE)."""
    pue: float = Field(ge=1)
    """The PUE applied."""
    measured_watts: float | None = Field(default=None, ge=0)
    """Mean measured IT power over the measured time, watts (what the model learns)."""
    model_watts: float | None = Field(default=None, ge=0)
    """The modelled IT power that filled what was not measured, watts."""
    energy_by_source_kwh: dict[str, float] = Field(default_factory=dict,
                                                   alias="energyBySourceKWh")
    """Facility kWh by source (solar, wind, hydro, directGreen, storage, grid); they sum
    to ``energyKWh``."""
    observed_share: float = Field(default=0, ge=0, le=1)
    """The share of its slots priced at the site's observed supply (else the plan's)."""
    template: str | None = None
    """Its template (``<namespace>/<hash>``) for the learned power model."""
    reason: str | None = None
    """Why some or all of it was modelled."""


class PowerEstimateStatus(ApiModel):
    """The power the plan used for the job and where it came from."""

    source: str = Field(pattern=r"^(declared|learned|default)$")
    """``declared`` (``spec.power``), ``learned`` (measured runs of its template) or
    ``default`` (estimated from its requests)."""
    watts: float = Field(ge=0)
    """IT watts the plan used."""
    runs: int | None = Field(default=None, ge=0)
    """For ``learned``: how many measured runs it was learned from."""
    template: str | None = None
    """Its template (``<namespace>/<hash>``)."""


class ComputeJobStatus(ApiModel):
    """Where and when the job runs, how green, and why."""

    phase: Phase = Phase.PENDING
    """``Pending``, ``Deferred``, ``Admitting`` (Kueue mode: released, not yet admitted),
    ``Running``, ``Suspended``, ``Succeeded`` or ``Failed``."""
    site: str | None = None
    """The chosen PowerSite."""
    planned_start: Time | None = None
    """When the job is planned to start."""
    latest_start: Time | None = None
    """The start after which the deadline could not be met; it starts by then regardless."""
    windows: list[RunWindow] = Field(default_factory=list)
    """For interruptible jobs: the planned run windows."""
    started_at: Time | None = None
    """When the child Job was first unsuspended."""
    completed_at: Time | None = None
    """When the child Job finished."""
    deadline_missed: bool | None = None
    """True once it started after its latest start or finished after its deadline."""
    expected_green_fraction: float | None = Field(default=None, ge=0, le=1)
    """Expected share of green energy, 0 to 1."""
    actual_green_fraction: float | None = Field(default=None, ge=0, le=1)
    """Once done: the green share of its energy, slot by slot at the site's observed
    supply (its green supply over its compute power, capped at 1), 0 to 1."""
    green_percent: int | None = Field(default=None, ge=0, le=100)
    """``expectedGreenFraction`` (or the measured one, once done) in percent."""
    energy_kwh: float | None = Field(default=None, alias="energyKWh", ge=0)
    """Expected (or measured, once done) energy, kWh, including PUE."""
    emissions: EmissionsEstimate | None = None
    """Emissions of the plan, of running at once, and the saving."""
    measurement: MeasurementStatus | None = None
    """Once done: whether its figures were measured (Kepler, DCGM) or modelled."""
    power_estimate: PowerEstimateStatus | None = None
    """The power estimate its plan used."""
    saved: str | None = None
    """The saving for people, e.g. ``41.2 kg``."""
    reason: str | None = None
    """Why it waits, runs or failed, in one line."""
    job_name: str | None = None
    """Name of the child ``batch/v1`` Job."""
    conditions: list[Condition] = Field(default_factory=list)
    """``Valid``, ``Placed``, ``Started``, ``Complete``."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The ``metadata.generation`` this status describes."""


class ComputeJob(Resource):
    """A unit of flexible batch work with a deadline."""

    KIND: ClassVar[str] = "ComputeJob"
    PLURAL: ClassVar[str] = "computejobs"

    kind: str = Field(default="ComputeJob", pattern=r"^ComputeJob$")
    spec: ComputeJobSpec
    status: ComputeJobStatus | None = None

    def window(self, created: datetime) -> tuple[datetime, datetime]:
        """Earliest start and completion deadline, given the creation time."""
        earliest = max(created, self.spec.not_before) if self.spec.not_before else created
        if self.spec.deadline.complete_by is not None:
            return earliest, self.spec.deadline.complete_by
        assert self.spec.deadline.max_delay is not None
        return earliest, earliest + self.spec.duration + self.spec.deadline.max_delay

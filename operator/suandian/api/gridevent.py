"""GridEvent: the grid asks, the cluster answers: shed load, absorb a surplus, or follow
a tariff, at named sites over a window.

Cluster-scoped, short name ``gev``. Written by hand (``kubectl apply``), by the
operator's OpenADR VEN for each event its utility's VTN sends, or by a webhook of a
virtual power plant (``spec.source``). Three types, one block each:

- ``Shed``: keep the site's grid import at or under ``shed.ceilingKW``, or
  ``shed.reductionKW`` (or ``shed.reductionPercent`` of it) under what the plan would
  import without the event, from ``start`` to ``end`` (an evening peak);
- ``Absorb``: up to ``absorb.powerKW`` of surplus power is there from ``start`` to
  ``end`` at zero or negative price (wind that would be curtailed at 3 a.m.); the
  planner treats it as zero-carbon supply to fill;
- ``Price``: a time-of-use tariff (China's peak / flat / valley periods), in
  ``prices.currency`` per kWh, as a cost term beside carbon.

Deadlines still win: when both cannot hold, the status says so before ``start`` (the
shortfall in kW and the jobs that prevent it) and a voluntary (``mandatory: false``)
request is declined rather than broken. A site no PowerSite names is accepted by the
API server and flagged in the status (the site may come later).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from suandian.api.meta import ApiModel, Condition, Resource, Time, cel
from suandian.api.powersite import MAX_KW
from suandian.units import humanize_duration

__all__ = [
    "MAX_WINDOW",
    "Absorb",
    "EventPhase",
    "EventSlot",
    "EventSource",
    "GridEvent",
    "GridEventSpec",
    "GridEventStatus",
    "GridEventType",
    "PricePeriod",
    "Prices",
    "Shed",
]

MAX_WINDOW = timedelta(days=31)
"""The longest event: grid requests are hours long, tariffs a few days; a window of a
year is a typo (2027 for 2026), and the plan's horizon is a day or two anyway."""
MAX_PRICE = 1000.0  # currency units per kWh: catches a price in cents or per MWh
MAX_PERIODS = 100  # a week of peak / flat / valley periods is about 35

_SITE = Annotated[str, Field(min_length=1, max_length=253,
                             pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
_CURRENCY = r"^[A-Z]{3}$"  # ISO 4217


class GridEventType(StrEnum):
    SHED = "Shed"
    ABSORB = "Absorb"
    PRICE = "Price"


class EventSource(StrEnum):
    MANUAL = "Manual"
    OPENADR = "OpenADR"
    WEBHOOK = "Webhook"


_ONE_SHED = ("set exactly one of ceilingKW (import at or under it), reductionKW (import "
             "that much under the plan without the event) or reductionPercent (that share "
             "under it)")


class Shed(ApiModel):
    """How much to shed: give exactly one of ``ceilingKW``, ``reductionKW`` or
    ``reductionPercent``."""

    model_config: ClassVar[ConfigDict] = ConfigDict(json_schema_extra={
        "x-kubernetes-validations": [cel(
            "(has(self.ceilingKW) ? 1 : 0) + (has(self.reductionKW) ? 1 : 0)"
            " + (has(self.reductionPercent) ? 1 : 0) == 1", _ONE_SHED)]})

    ceiling_kw: float | None = Field(default=None, alias="ceilingKW", ge=0, le=MAX_KW)
    """Grid import at or under this, kW, at each site named (0: none at all)."""
    reduction_kw: float | None = Field(default=None, alias="reductionKW", gt=0, le=MAX_KW)
    """Grid import this much under the baseline, kW: what the plan would import in the
    window without the event, when the event was accepted."""
    reduction_percent: float | None = Field(default=None, alias="reductionPercent", gt=0,
                                            le=100)
    """Grid import this share under the baseline, percent (an OpenADR ``SIMPLE`` level
    maps to one: 75 cuts the site's import to a quarter of what it would be)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Shed:
        given = (self.ceiling_kw, self.reduction_kw, self.reduction_percent)
        if sum(v is not None for v in given) != 1:
            raise ValueError(_ONE_SHED)
        return self


class Absorb(ApiModel):
    """Surplus power to fill: as much as the plan can use, up to ``powerKW``."""

    model_config: ClassVar[ConfigDict] = ConfigDict(json_schema_extra={
        "x-kubernetes-validations": [cel(
            "!has(self.pricePerKWh) || has(self.currency)",
            "a pricePerKWh needs its currency, e.g. currency: CNY", ".currency")]})

    power_kw: float = Field(alias="powerKW", gt=0, le=MAX_KW)
    """Surplus available at each site named, kW."""
    price_per_kwh: float | None = Field(default=None, alias="pricePerKWh", ge=-MAX_PRICE,
                                        le=0)
    """What the surplus costs, per kWh: zero or negative (the grid pays to have it used)."""
    currency: str | None = Field(default=None, pattern=_CURRENCY)
    """ISO 4217 code of ``pricePerKWh``, e.g. ``CNY``."""

    @model_validator(mode="after")
    def _priced_in_a_currency(self) -> Absorb:
        if self.price_per_kwh is not None and self.currency is None:
            raise ValueError("a pricePerKWh needs its currency, e.g. currency: CNY")
        return self


class PricePeriod(ApiModel):
    """One period of a tariff: a price per kWh from ``start`` to ``end``."""

    model_config: ClassVar[ConfigDict] = ConfigDict(json_schema_extra={
        "x-kubernetes-validations": [cel(
            "timestamp(self.end) > timestamp(self.start)",
            "end must be after start", ".end")]})

    start: Time
    """When the price begins (RFC 3339)."""
    end: Time
    """When it ends (RFC 3339), after ``start``."""
    price_per_kwh: float = Field(alias="pricePerKWh", ge=-MAX_PRICE, le=MAX_PRICE)
    """Price of grid energy then, in the tariff's currency per kWh (negative: paid to use)."""
    name: str | None = Field(default=None, max_length=63)
    """What the tariff calls it, e.g. ``peak``, ``flat``, ``valley``."""

    @model_validator(mode="after")
    def _ordered(self) -> PricePeriod:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) must be after start "
                             f"({self.start.isoformat()})")
        return self


class Prices(ApiModel):
    """A time-of-use tariff: periods that do not overlap, in one currency."""

    model_config: ClassVar[ConfigDict] = ConfigDict(json_schema_extra={
        "x-kubernetes-validations": [cel(
            "self.periods.all(a, self.periods.all(b, a.start == b.start || "
            "timestamp(a.end) <= timestamp(b.start) || timestamp(b.end) <= timestamp(a.start)))",
            "periods must not overlap: each ends at or before the next starts", ".periods")]})

    currency: str = Field(pattern=_CURRENCY)
    """ISO 4217 code of the prices, e.g. ``CNY``."""
    periods: list[PricePeriod] = Field(min_length=1, max_length=MAX_PERIODS, json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["start"]})
    """The periods; between them, and outside them, the grid's price is not known."""

    @field_validator("periods")
    @classmethod
    def _apart(cls, periods: list[PricePeriod]) -> list[PricePeriod]:
        ordered = sorted(periods, key=lambda p: p.start)
        for a, b in pairwise(ordered):
            if b.start < a.end:
                raise ValueError(
                    f"periods must not overlap: the one from {a.start.isoformat()} ends at "
                    f"{a.end.isoformat()}, after the next starts ({b.start.isoformat()})")
        return periods


class GridEventSpec(ApiModel):
    """What the grid asks, where, when, and how firmly."""

    model_config: ClassVar[ConfigDict] = ConfigDict(json_schema_extra={
        "x-kubernetes-validations": [
            cel("timestamp(self.end) > timestamp(self.start)", "end must be after start",
                ".end"),
            cel("timestamp(self.end) - timestamp(self.start) <= duration('744h')",
                "an event lasts at most 31 days (744h): check the year of end", ".end"),
            cel("has(self.shed) == (self.type == 'Shed')",
                "a Shed event needs its shed block, and only a Shed event has one", ".shed"),
            cel("has(self.absorb) == (self.type == 'Absorb')",
                "an Absorb event needs its absorb block, and only an Absorb event has one",
                ".absorb"),
            cel("has(self.prices) == (self.type == 'Price')",
                "a Price event needs its prices block, and only a Price event has one",
                ".prices"),
            cel("!has(self.prices) || self.prices.periods.all(p, "
                "timestamp(p.start) >= timestamp(self.start) && "
                "timestamp(p.end) <= timestamp(self.end))",
                "every price period must lie within the event's start and end", ".prices"),
        ]})

    type: GridEventType
    """``Shed``, ``Absorb`` or ``Price``."""
    sites: list[_SITE] = Field(min_length=1, max_length=64,
                               json_schema_extra={"x-kubernetes-list-type": "set"})
    """Names of the PowerSites it concerns (each asked the whole amount)."""
    start: Time
    """When the event begins (RFC 3339)."""
    end: Time
    """When it ends (RFC 3339), after ``start``, at most 31 days later."""
    shed: Shed | None = None
    """For ``Shed``: the ceiling or the reduction."""
    absorb: Absorb | None = None
    """For ``Absorb``: the surplus."""
    prices: Prices | None = None
    """For ``Price``: the tariff."""
    mandatory: bool = False
    """Mandatory requests are met as far as deadlines allow, a shortfall reported;
    voluntary ones are declined when the plan cannot meet them whole."""
    priority: int = Field(default=0, ge=0, le=1000)
    """Which request wins where two overlap at a site, from 0 to 1000."""
    source: EventSource = EventSource.MANUAL
    """Where it came from: ``Manual``, ``OpenADR`` or ``Webhook``."""
    source_ref: str | None = Field(default=None, max_length=253)
    """The source's own name for it, e.g. the OpenADR event ID."""

    @field_validator("sites")
    @classmethod
    def _unique_sites(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each site may be named once")
        return value

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is None:  # start itself was refused: its error says so
            return end
        if end <= start:
            raise ValueError(f"must be after start ({start.isoformat()}), got "
                             f"{end.isoformat()}")
        if end - start > MAX_WINDOW:
            raise ValueError(f"an event lasts at most 31 days (744h), this one "
                             f"{humanize_duration(end - start)}: check the year of end")
        return end

    @field_validator("prices")
    @classmethod
    def _within_window(cls, prices: Prices | None, info: ValidationInfo) -> Prices | None:
        start, end = info.data.get("start"), info.data.get("end")
        if prices is None or start is None or end is None:
            return prices
        outside = [p for p in prices.periods if p.start < start or p.end > end]
        if outside:
            raise ValueError(
                f"every price period must lie within the event's start and end; the one "
                f"from {outside[0].start.isoformat()} to {outside[0].end.isoformat()} does not")
        return prices

    @model_validator(mode="after")
    def _one_block(self) -> GridEventSpec:
        blocks = {GridEventType.SHED: ("shed", self.shed),
                  GridEventType.ABSORB: ("absorb", self.absorb),
                  GridEventType.PRICE: ("prices", self.prices)}
        for kind, (name, block) in blocks.items():
            if (block is not None) != (self.type is kind):
                raise ValueError(f"a {kind.value} event needs its {name} block, and only a "
                                 f"{kind.value} event has one (type is {self.type.value})")
        return self


class EventPhase(StrEnum):
    PENDING = "Pending"  # not yet planned against
    ACCEPTED = "Accepted"  # the plan meets it (or, mandatory, as far as deadlines allow)
    DECLINED = "Declined"  # voluntary, and the plan cannot meet it whole
    ACTIVE = "Active"  # its window is on
    COMPLETED = "Completed"  # its window has passed


class EventSlot(ApiModel):
    """One slot of the window: what the plan committed and what was measured."""

    start: Time
    """The slot's start."""
    asked_kw: float | None = Field(default=None, alias="askedKW")
    """Reduction (Shed) or absorption (Absorb) asked for, kW, summed over the sites."""
    committed_kw: float = Field(alias="committedKW")
    """Reduction (Shed) or absorption (Absorb) the plan commits to, kW."""
    delivered_kw: float | None = Field(default=None, alias="deliveredKW")
    """Measured from the site's compute power while the slot is on (its mean so far), kW."""


class GridEventStatus(ApiModel):
    """What was asked, committed and delivered, and why."""

    phase: EventPhase = EventPhase.PENDING
    """``Pending``, ``Accepted``, ``Declined``, ``Active`` or ``Completed``."""
    asked: str | None = None
    """The request for people, e.g. ``≤ 2,000 kW`` or ``-1,500 kW``."""
    committed: str | None = None
    """What the plan commits to, for people, e.g. ``1,500 kW`` or ``300 kW short``."""
    delivered: str | None = None
    """Delivered over asked so far, e.g. ``97%``."""
    committed_kw: float | None = Field(default=None, alias="committedKW")
    """The least the plan commits in any slot of the window, kW."""
    shortfall_kw: float | None = Field(default=None, alias="shortfallKW", ge=0)
    """How far the plan falls short of the request in its worst slot, kW."""
    delivered_kwh: float | None = Field(default=None, alias="deliveredKWh")
    """Energy shed (or absorbed) so far, measured, kWh."""
    measured_at: Time | None = Field(default=None, alias="measuredAt")
    """When delivery was last measured (the next measurement counts from here)."""
    delivering_kw: float | None = Field(default=None, alias="deliveringKW")
    """What the sites delivered at ``measuredAt``, kW (while the window is on)."""
    compliance: float | None = Field(default=None, ge=0)
    """Delivered over asked, slot by slot so far, 0 to 1 (or more)."""
    slots: list[EventSlot] = Field(default_factory=list, max_length=1500)
    """Per slot of the window: committed and delivered kW."""
    emissions_effect_grams: float | None = Field(default=None, alias="emissionsEffectGrams")
    """What answering costs in CO2 as the plan expects it, grams: the moved jobs' expected
    emissions answered less unanswered (below 0: answering saves carbon). A job that
    several events moved counts a share to each."""
    cost_effect: float | None = Field(default=None)
    """What answering costs in money as the plan expects it, in ``currency``: the moved
    jobs' grid power at the sites' tariffs (Price events) answered less unanswered
    (below 0: answering saves). Absent when no job it moved runs, or would have run,
    where a tariff applies."""
    currency: str | None = Field(default=None, pattern=_CURRENCY)
    """The currency of ``costEffect`` (ISO 4217)."""
    effect: str | None = None
    """Both effects for people, e.g. ``+80 kgCO2, -180.00 CNY``."""
    deadline_misses: int | None = Field(default=None, ge=0)
    """The jobs the event moved that then missed their deadline (started after their
    latest start or finished after their deadline): the promise is 0."""
    jobs_affected: int | None = Field(default=None, ge=0)
    """How many ComputeJobs the event moved, suspended or held."""
    affected_jobs: list[str] = Field(default_factory=list, max_length=50)
    """The first of them, ``namespace/name``; or the jobs preventing a shortfall."""
    reason: str | None = None
    """Why it is accepted, declined or short, in one line."""
    conditions: list[Condition] = Field(default_factory=list)
    """``Accepted``, ``SitesKnown``, ``Delivering``."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The ``metadata.generation`` this status describes."""


class GridEvent(Resource):
    """A request from the grid: shed, absorb or a tariff, at sites over a window."""

    KIND: ClassVar[str] = "GridEvent"
    PLURAL: ClassVar[str] = "gridevents"

    kind: str = Field(default="GridEvent", pattern=r"^GridEvent$")
    spec: GridEventSpec
    status: GridEventStatus | None = None

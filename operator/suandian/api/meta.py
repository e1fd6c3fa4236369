"""What every API model shares: wire conventions, annotated field types, conditions.

On the wire, fields are camelCase and unknown fields are refused (``extra="forbid"``):
a typo like ``maxDelays`` must fail loudly, not be silently ignored. Each field carries
a description, because the CRD generator turns it into ``kubectl explain`` text.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from suandian.units import (
    DURATION_PATTERN,
    QUANTITY_PATTERN,
    format_duration,
    parse_duration,
    parse_quantity,
)

__all__ = [
    "ApiModel",
    "Condition",
    "ConditionStatus",
    "Duration",
    "ObjectMeta",
    "Quantity",
    "Resource",
    "ResourceList",
    "Time",
    "cel",
]


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One ``x-kubernetes-validations`` entry: the API server evaluates ``rule`` on admission."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class ApiModel(BaseModel):
    """Base of every wire model: camelCase aliases, no unknown fields, validate on assignment."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
        allow_inf_nan=False,  # `.nan` in YAML is no number of watts, whatever its bounds
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as the API server stores it (camelCase, no unset optionals)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _duration_from_wire(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except TypeError as exc:  # pydantic reports ValueError as a field error, not TypeError
        raise ValueError(str(exc)) from None


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration_from_wire),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "maxLength": 64, "pattern": DURATION_PATTERN}),
]
"""A length of time: ``90m``, ``4h``, ``1h30m``, ``2d`` or ISO 8601 ``PT4H``."""


def _quantity_from_wire(value: Any) -> Decimal:
    try:
        return parse_quantity(value)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def _quantity_to_wire(value: Decimal) -> str:
    return format(value.normalize(), "f")


Quantity = Annotated[
    Decimal,
    BeforeValidator(_quantity_from_wire),
    PlainSerializer(_quantity_to_wire, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes quantity: ``2``, ``500m``, ``16Gi``."""

ResourceList = dict[str, Quantity]
"""Resource name to quantity, as in a container's ``resources.requests``."""

Time = AwareDatetime
"""An RFC 3339 time with a zone: ``2026-11-28T18:00:00Z`` or ``...+08:00``."""


class ObjectMeta(BaseModel):
    """The parts of ``metadata`` Suandian reads; everything else passes through untouched."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    creation_timestamp: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Resource(ApiModel):
    """What every Suandian kind shares: ``apiVersion`` and ``metadata``.

    Subclasses add ``kind`` (pinned to their own name), ``spec`` and ``status``.
    """

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]

    api_version: str = Field(default="suandian.io/v1alpha1", pattern=r"^suandian\.io/v1alpha1$")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """The standard Kubernetes condition (``metav1.Condition``)."""

    type: str = Field(min_length=1, max_length=316)
    """Type of condition in CamelCase, e.g. ``ForecastReady``, ``Degraded``, ``Valid``."""
    status: ConditionStatus
    """``True``, ``False`` or ``Unknown``."""
    reason: str = Field(default="", max_length=1024)
    """A CamelCase word for programs: why the condition is in its status."""
    message: str = Field(default="", max_length=32768)
    """A sentence for people: what happened and, if something is wrong, how to fix it."""
    last_transition_time: Time | None = None
    """When the status last changed."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The ``metadata.generation`` this condition was computed from."""

"""The Suandian API (group ``suandian.io``, version ``v1alpha1``) as pydantic models.

These models are the single source of the API: the CRDs under ``crds/`` and the chart
are generated from them (``suandian crds``), and the operator, the CLI and the simulator
all parse manifests through them.
"""

from suandian.api.computejob import (
    ComputeJob,
    ComputeJobSpec,
    ComputeJobStatus,
    Deadline,
    EmissionsEstimate,
    Phase,
    Policy,
    PowerSpec,
    RunWindow,
)
from suandian.api.gridevent import (
    Absorb,
    EventPhase,
    EventSource,
    GridEvent,
    GridEventSpec,
    GridEventStatus,
    GridEventType,
    PricePeriod,
    Prices,
    Shed,
)
from suandian.api.meta import Condition, ConditionStatus, ObjectMeta
from suandian.api.powersite import (
    ForecastProvider,
    ForecastSource,
    ForecastSpec,
    GreenSource,
    GridConnection,
    Location,
    PowerSite,
    PowerSiteSpec,
    PowerSiteStatus,
    SourceType,
    Storage,
)
from suandian.api.validation import (
    parse_computejob,
    parse_gridevent,
    parse_manifest,
    parse_powersite,
)
from suandian.units import format_duration, humanize_duration, parse_duration, parse_quantity

GROUP = "suandian.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "Absorb",
    "ComputeJob",
    "ComputeJobSpec",
    "ComputeJobStatus",
    "Condition",
    "ConditionStatus",
    "Deadline",
    "EmissionsEstimate",
    "EventPhase",
    "EventSource",
    "ForecastProvider",
    "ForecastSource",
    "ForecastSpec",
    "GreenSource",
    "GridConnection",
    "GridEvent",
    "GridEventSpec",
    "GridEventStatus",
    "GridEventType",
    "Location",
    "ObjectMeta",
    "Phase",
    "Policy",
    "PowerSite",
    "PowerSiteSpec",
    "PowerSiteStatus",
    "PowerSpec",
    "PricePeriod",
    "Prices",
    "RunWindow",
    "Shed",
    "SourceType",
    "Storage",
    "format_duration",
    "humanize_duration",
    "parse_computejob",
    "parse_duration",
    "parse_gridevent",
    "parse_manifest",
    "parse_powersite",
    "parse_quantity",
]

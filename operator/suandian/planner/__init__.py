"""The pure planning core: a frozen :class:`Snapshot` in, a :class:`Plan` out.

No I/O, no clock, no randomness of its own: ``now`` is in the snapshot, and the same
snapshot always gives the same plan. The operator, ``suandian plan`` and the simulator
all call :func:`plan`. Forecasts arrive as plain arrays (this package does not import
``suandian.forecast``); :func:`snapshot_from` builds a snapshot from API objects.
"""

from suandian.planner.build import (
    JobInput,
    JobTerms,
    SiteSignals,
    SiteTerms,
    job_demand_from,
    site_supply_from,
    snapshot_from,
)
from suandian.planner.core import plan
from suandian.planner.model import (
    POLICIES,
    Incumbent,
    JobDecision,
    JobDemand,
    NodeInfo,
    Plan,
    PlanParams,
    SiteSupply,
    Snapshot,
)
from suandian.planner.power import DEFAULT_RESOURCES, estimate_power_w

__all__ = [
    "DEFAULT_RESOURCES",
    "POLICIES",
    "Incumbent",
    "JobDecision",
    "JobDemand",
    "JobInput",
    "JobTerms",
    "NodeInfo",
    "Plan",
    "PlanParams",
    "SiteSignals",
    "SiteSupply",
    "SiteTerms",
    "Snapshot",
    "estimate_power_w",
    "job_demand_from",
    "plan",
    "site_supply_from",
    "snapshot_from",
]

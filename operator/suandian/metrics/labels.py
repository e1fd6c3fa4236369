"""The fixed vocabularies of the metrics' labels, the unit factors and the buckets.

One place for every value a label may take, so a caller's typo or a provider's free
text raises here instead of creating a new series, and so the naming test can walk the
allow-list (``tests/unit/metrics/test_naming.py``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from suandian.api.computejob import Phase
from suandian.api.powersite import SourceType
from suandian.errors import PROVIDER_REASONS

# the ledger's ``source`` and ``provenance`` values and the kWh factor: measure's, one place
from suandian.measure.energy import JOULES_PER_KWH as JOULES_PER_KWH
from suandian.measure.energy import PROVENANCES as PROVENANCES
from suandian.measure.supply import LEDGER_SOURCES as LEDGER_SOURCES

WATTS_PER_KW: Final = 1000.0

GREEN_SOURCES: Final = frozenset({s.value for s in SourceType} | {"storage"})
"""``source`` of ``suandian_site_green_power_watts``: each supply type, and battery discharge."""
ENERGY_SOURCES: Final = frozenset({"green", "grid"})
"""``source`` of ``suandian_energy_joules_total``."""
HORIZONS: Final = ("1h", "6h", "24h", "48h")
"""``horizon`` of the forecast gauge: mean green power over the next hour, 6 h, ..."""
START_TRIGGERS: Final = frozenset({"planned", "deadline", "immediate", "resumed"})
"""Why a job started: its planned green window came, its latest start came whatever the
forecast said, it asked to run at once (policy RunNow or nothing to gain), or an
interruptible job resumed after a suspension."""
OUTCOMES: Final = frozenset({Phase.SUCCEEDED.value, Phase.FAILED.value})
PROVIDER_ERROR_REASONS: Final = PROVIDER_REASONS | {"Rejected", "Other"}
"""``reason`` of ``suandian_provider_errors_total``: the providers' own vocabulary and two
more (see :func:`~suandian.metrics.provider_error_reason`), a fixed set, so a provider's
free-text error can never create a new series."""
FAILURE_REASONS: Final = frozenset({"ApiError", "Planning", "Bug"})
"""``reason`` of the step failure counter; a planning round has no ``ApiError``."""
PLANNING_FAILURE_REASONS: Final = frozenset({"Planning", "Bug"})
SITE_FAILURE_REASONS: Final = frozenset({"ApiError", "Bug"})
"""``reason`` of ``suandian_site_refresh_failures_total``."""
REFUSAL_REASONS: Final = {400: "BadRequest", 403: "Forbidden", 404: "NotFound",
                          422: "Invalid"}
"""``reason`` of ``suandian_child_job_refusals_total``, by the refusal's HTTP status."""
LABEL_NAMES: Final = frozenset({
    "site", "source", "phase", "provider", "reason", "trigger", "outcome", "horizon",
    "version", "python_version", "kopf_version", "namespace", "provenance", "type",
})
"""Every label name a Suandian metric may carry (checked over the registry by a test)."""
NAMESPACE_LABELLED: Final = frozenset({
    "suandian_ledger_energy_joules", "suandian_ledger_it_energy_joules",
    "suandian_ledger_emissions_grams", "suandian_ledger_run_now_emissions_grams",
    "suandian_ledger_runs",
})
"""The only metrics with a ``namespace`` label: the green-power ledger, which a data
centre reports per tenant. The label is bounded by the cluster's namespaces (tens to a
few hundred, each created by an administrator), never by jobs or pods; no other metric
may carry it (the naming test checks both)."""

DEFERRAL_BUCKETS: Final = (
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0,
    86400.0, 172800.0, 604800.0,
)
"""Deferral delays: a minute to a week (most land between 1 h and 24 h)."""
PLANNING_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
"""Planning latency: the target is under 1 s for 10,000 jobs, so buckets straddle it."""
PROVIDER_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def check(kind: str, value: str, allowed: Collection[str]) -> str:
    """``value`` if it is one of ``allowed``, else a ValueError naming the label."""
    if value not in allowed:
        raise ValueError(f"{kind} {value!r} is not one of {sorted(allowed)}")
    return value

GRID_EVENT_TYPES: Final = frozenset({"Shed", "Absorb", "Price"})
"""``type`` of the grid metrics (a GridEvent's ``spec.type``)."""
GRID_EVENT_PHASES: Final = ("Pending", "Accepted", "Declined", "Active", "Completed")
"""``phase`` of ``suandian_grid_events`` (a GridEvent's ``status.phase``)."""

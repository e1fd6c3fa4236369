"""Prometheus metrics of the operator: one registry, one ``record_*`` helper per call site.

Call sites never touch a metric object: they call a helper with the quantities they
already hold, in the units the API uses (kW, gCO2/kWh, kWh), and the helper converts to
Prometheus base units (watts, seconds, joules, grams, ratios) in one place, where a unit
slip would be caught by a test.

The package is split by concern, and everything is re-exported here, so callers keep
``from suandian import metrics`` / ``metrics.record_site(...)``:

- :mod:`.labels`: the fixed label vocabularies, unit factors and buckets;
- :mod:`.instruments`: the metric objects, their registry, :func:`reset`;
- :mod:`.record`: the helpers of sites, jobs, planning and providers;
- :mod:`.ledger`: :func:`record_ledger_run`, the per-namespace green-power ledger;
- :mod:`.grid`: the grid's requests (``record_grid_event``);
- :mod:`.server`: ``/metrics`` over aiohttp.

Labels are bounded by construction: ``site`` (one per PowerSite), ``source``, ``phase``,
``provider``, ``reason``, ``trigger``, ``outcome``, ``horizon``, ``provenance`` and ``type`` take
values from fixed sets checked in :mod:`.labels`. No job or pod name is ever a label;
``namespace`` appears on the ledger's counters only (bounded by the cluster's
namespaces; see ``tests/unit/metrics/test_naming.py``, which walks the registry and
enforces the rules).
"""

from __future__ import annotations

from suandian.metrics.grid import SiteFigures
from suandian.metrics.instruments import (
    Instruments,
    Ledger,
    instruments,
    record_build_info,
    registry,
    reset,
)
from suandian.metrics.labels import (
    ENERGY_SOURCES,
    FAILURE_REASONS,
    GREEN_SOURCES,
    HORIZONS,
    JOULES_PER_KWH,
    LABEL_NAMES,
    LEDGER_SOURCES,
    NAMESPACE_LABELLED,
    OUTCOMES,
    PLANNING_FAILURE_REASONS,
    PROVENANCES,
    PROVIDER_ERROR_REASONS,
    REFUSAL_REASONS,
    SITE_FAILURE_REASONS,
    START_TRIGGERS,
    WATTS_PER_KW,
)
from suandian.metrics.ledger import record_ledger_run
from suandian.metrics.measure import MEASUREMENT_FAILURE_REASONS, record_measurement_failure
from suandian.metrics.record import (
    provider_error_reason,
    record_child_refused,
    record_deadline_miss,
    record_deferral,
    record_grid_event,
    record_grid_event_removed,
    record_job_finished,
    record_jobs_by_phase,
    record_planning,
    record_planning_failure,
    record_provider_request,
    record_site,
    record_site_forecast,
    record_site_refresh_failure,
    record_site_removed,
    record_start,
    record_step_failure,
    record_suspension,
    record_ven,
)
from suandian.metrics.server import (
    MetricsServer,
    metrics_app,
    metrics_handler,
    start_metrics_server,
)

__all__ = [
    "ENERGY_SOURCES",
    "FAILURE_REASONS",
    "GREEN_SOURCES",
    "HORIZONS",
    "JOULES_PER_KWH",
    "LABEL_NAMES",
    "LEDGER_SOURCES",
    "MEASUREMENT_FAILURE_REASONS",
    "NAMESPACE_LABELLED",
    "OUTCOMES",
    "PLANNING_FAILURE_REASONS",
    "PROVENANCES",
    "PROVIDER_ERROR_REASONS",
    "REFUSAL_REASONS",
    "SITE_FAILURE_REASONS",
    "START_TRIGGERS",
    "WATTS_PER_KW",
    "Instruments",
    "Ledger",
    "MetricsServer",
    "SiteFigures",
    "instruments",
    "metrics_app",
    "metrics_handler",
    "provider_error_reason",
    "record_build_info",
    "record_child_refused",
    "record_deadline_miss",
    "record_deferral",
    "record_grid_event",
    "record_grid_event_removed",
    "record_job_finished",
    "record_jobs_by_phase",
    "record_ledger_run",
    "record_measurement_failure",
    "record_planning",
    "record_planning_failure",
    "record_provider_request",
    "record_site",
    "record_site_forecast",
    "record_site_refresh_failure",
    "record_site_removed",
    "record_start",
    "record_step_failure",
    "record_suspension",
    "record_ven",
    "registry",
    "reset",
    "start_metrics_server",
]

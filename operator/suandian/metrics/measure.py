"""Metrics of measured energy (docs/measurement.md): why a job's energy was modelled.

A finished job whose Prometheus query failed is accounted with the model and labelled so
in its status; this counter says it happened and why, so a broken exporter or an expired
token shows on a dashboard instead of only in job statuses.
"""

from __future__ import annotations

from suandian.errors import PROVIDER_REASONS
from suandian.metrics.instruments import instruments
from suandian.metrics.labels import check

__all__ = ["MEASUREMENT_FAILURE_REASONS", "record_measurement_failure"]

MEASUREMENT_FAILURE_REASONS = frozenset({*PROVIDER_REASONS, "Other"})
"""``reason`` of ``suandian_measurement_failures_total``: a provider reason
(``Unreachable``, ``Timeout``, ``Unauthorized``, ``MalformedResponse``, ...) or ``Other``."""


def record_measurement_failure(reason: str) -> None:
    """A finished job's energy could not be read and was modelled."""
    instruments().measurement_failures.labels(
        reason=check("reason", reason, MEASUREMENT_FAILURE_REASONS)).inc()

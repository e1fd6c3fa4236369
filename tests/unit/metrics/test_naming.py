"""Prometheus naming rules, enforced over the whole registry.

`suandian_` prefix; base units (watts, seconds, joules, grams, ratio) and never kW, ms,
kg, kWh, minutes, hours or percent; `_total` on counters and only on counters; label
names from an allow-list (no job or pod names: those are unbounded); ``namespace`` only
on the ledger's counters (bounded by the cluster's namespaces), nowhere else.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge

from suandian import metrics

FORBIDDEN_UNIT_TOKENS = (
    "kw", "kwh", "mw", "mwh", "wh", "ms", "milliseconds", "kg", "kilograms", "tonnes",
    "minutes", "hours", "days", "percent", "kilo", "mega",
)
UNIT_SUFFIXES = (
    "_watts", "_seconds", "_joules", "_grams", "_ratio", "_grams_per_joule", "_info",
)
UNITLESS = {"suandian_jobs", "suandian_site_degraded", "suandian_grid_events",
            "suandian_openadr_registered"}
"""Gauges of counts and booleans, which Prometheus names without a unit (counters of
events are unitless too: ``suandian_deferrals_total``)."""
FORBIDDEN_LABELS = {"job", "pod", "namespace", "name", "computejob", "node", "instance", "uid"}
BOUNDED_BY_CLUSTER = {"namespace"}
"""Forbidden except on the ledger (:data:`suandian.metrics.NAMESPACE_LABELLED`), whose
per-tenant report needs it; bounded by the namespaces an administrator created."""


def violations(registry: CollectorRegistry) -> list[str]:
    """Every naming rule broken by a metric of the registry, as readable lines."""
    found: list[str] = []
    for family in registry.collect():
        name = family.name
        if not name.startswith("suandian_"):
            found.append(f"{name}: no suandian_ prefix")
        tokens = name.split("_")
        found.extend(f"{name}: non-base unit {token!r}"
                     for token in tokens if token in FORBIDDEN_UNIT_TOKENS)
        sample_names = {s.name for s in family.samples}
        if family.type == "counter":
            if f"{name}_total" not in sample_names:
                found.append(f"{name}: counter without _total")
        else:
            found.extend(f"{s}: _total on a {family.type}"
                         for s in sample_names if s.endswith("_total"))
            if name not in UNITLESS and not name.endswith(UNIT_SUFFIXES):
                found.append(f"{name}: no base-unit suffix {UNIT_SUFFIXES}")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            found.append(f"{name}: not snake_case")
        labels = {k for s in family.samples for k in s.labels} - {"le", "quantile"}
        found.extend(f"{name}: label {label!r} not allowed"
                     for label in sorted(labels - metrics.LABEL_NAMES))
        allowed = BOUNDED_BY_CLUSTER if name in metrics.NAMESPACE_LABELLED else set()
        found.extend(f"{name}: unbounded label {label!r}"
                     for label in sorted(labels & FORBIDDEN_LABELS - allowed))
        if not family.documentation:
            found.append(f"{name}: no help text")
    return found


def test_every_metric_follows_the_naming_rules(populated: CollectorRegistry) -> None:
    assert violations(populated) == []


def test_every_metric_has_a_series_once_every_helper_ran(populated: CollectorRegistry) -> None:
    empty = [f.name for f in populated.collect() if not f.samples]
    assert empty == []


def test_the_allow_list_itself_names_no_unbounded_label() -> None:
    assert metrics.LABEL_NAMES & FORBIDDEN_LABELS == BOUNDED_BY_CLUSTER


def test_namespace_is_refused_outside_the_ledger() -> None:
    bad = CollectorRegistry()
    Counter("suandian_things_total", "things", ["namespace"], registry=bad).labels(
        namespace="team-a").inc()
    assert violations(bad) == ["suandian_things: unbounded label 'namespace'"]


def test_the_checker_catches_each_kind_of_violation() -> None:
    bad = CollectorRegistry()
    Gauge("other_power_watts", "no prefix", registry=bad)
    Gauge("suandian_site_power_kw", "kilowatts", registry=bad)
    Gauge("suandian_delay_ms", "milliseconds", registry=bad)
    Gauge("suandian_plain_total", "total on a gauge", registry=bad).set(1)
    Counter("suandian_things_seconds", "counter", ["pod"], registry=bad).labels(pod="p").inc()
    found = "\n".join(violations(bad))
    assert "other_power_watts: no suandian_ prefix" in found
    assert "suandian_site_power_kw: non-base unit 'kw'" in found
    assert "suandian_delay_ms: non-base unit 'ms'" in found
    assert "suandian_plain_total: _total on a gauge" in found
    assert "suandian_things_seconds: label 'pod' not allowed" in found
    assert "suandian_things_seconds: unbounded label 'pod'" in found
    assert "suandian_site_power_kw: no base-unit suffix" in found

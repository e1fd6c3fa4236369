"""The grid metrics: events summed by site and type, kW in as watts out, kWh as joules."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from suandian import metrics

F = metrics.SiteFigures


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_two_events_at_a_site_add_up_and_leave_when_deleted(registry: CollectorRegistry) -> None:
    metrics.record_grid_event("a", "Shed", "Active", {"jiangsu": F(60.0, 50.0, 45.0, 10.0)}, 0.0)
    metrics.record_grid_event("b", "Shed", "Active", {"jiangsu": F(40.0, 40.0, 40.0, 0.0),
                                                      "gansu": F(5.0, 5.0, 0.0, 0.0)}, 0.0)
    assert value(registry, "suandian_grid_asked_watts", site="jiangsu", type="Shed") == 100_000
    assert value(registry, "suandian_grid_committed_watts", site="jiangsu", type="Shed") == 90_000
    assert value(registry, "suandian_grid_delivered_watts", site="jiangsu", type="Shed") == 85_000
    assert value(registry, "suandian_grid_shortfall_watts", site="jiangsu", type="Shed") == 10_000
    assert value(registry, "suandian_grid_events", phase="Active") == 2
    metrics.record_grid_event_removed("b")
    assert value(registry, "suandian_grid_asked_watts", site="jiangsu", type="Shed") == 60_000
    assert value(registry, "suandian_grid_asked_watts", site="gansu", type="Shed") is None
    assert value(registry, "suandian_grid_events", phase="Active") == 1


def test_an_event_that_is_over_keeps_its_energy_but_no_figures(registry: CollectorRegistry
                                                                ) -> None:
    metrics.record_grid_event("a", "Absorb", "Active", {"gansu": F(100.0, 80.0, 70.0, 0.0)}, 2.0)
    metrics.record_grid_event("a", "Absorb", "Completed", {}, 0.5)
    assert value(registry, "suandian_grid_delivered_joules_total", type="Absorb") == 2.5 * 3.6e6
    assert value(registry, "suandian_grid_delivered_watts", site="gansu", type="Absorb") is None
    assert value(registry, "suandian_grid_events", phase="Completed") == 1
    assert value(registry, "suandian_grid_events", phase="Active") == 0


def test_an_unknown_type_or_phase_is_refused(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="unknown GridEvent type"):
        metrics.record_grid_event("a", "Curtail", "Active", {}, 0.0)

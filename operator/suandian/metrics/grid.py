"""The grid's requests in metrics: what each site is asked, commits and delivers now.

Gauges by ``site`` and ``type`` (``Shed``, ``Absorb``), summed over the events on at
that moment (an event is not a label: a cluster makes new ones every day); a counter of
the energy delivered, by ``type``:

- ``suandian_grid_asked_watts``, ``suandian_grid_committed_watts``,
  ``suandian_grid_delivered_watts``, ``suandian_grid_shortfall_watts``;
- ``suandian_grid_delivered_joules_total``;
- ``suandian_grid_events`` by ``phase``;
- ``suandian_openadr_registered`` (1 while the VEN is registered with its VTN) and
  ``suandian_openadr_registration_failures_total`` (each failed attempt: the VTN down,
  refusing, or cancelling the registration).

The chart's alert ``SuandianShedNotDelivered`` compares delivered with committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from suandian.metrics.labels import (
    GRID_EVENT_PHASES,
    GRID_EVENT_TYPES,
    JOULES_PER_KWH,
    WATTS_PER_KW,
)

__all__ = ["GridMetrics", "SiteFigures"]


@dataclass(frozen=True, slots=True)
class SiteFigures:
    """One event at one site now, kW."""

    asked_kw: float
    committed_kw: float
    delivered_kw: float
    shortfall_kw: float


@dataclass
class GridMetrics:
    """The grid metrics of one registry and what each event contributes to them."""

    registry: CollectorRegistry
    _by_event: dict[str, tuple[str, str, dict[str, SiteFigures]]] = field(
        default_factory=dict)  # name -> (type, phase, figures by site)

    def __post_init__(self) -> None:
        r, labels = self.registry, ["site", "type"]
        self.asked = Gauge("suandian_grid_asked_watts", "Reduction (Shed) or absorption "
                           "(Absorb) the grid asks of the site now, watts.", labels, registry=r)
        self.committed = Gauge("suandian_grid_committed_watts", "What the plan commits "
                               "to now against the grid's requests, watts.", labels, registry=r)
        self.delivered = Gauge("suandian_grid_delivered_watts", "What the site delivers "
                               "now, measured from its compute power, watts.", labels,
                               registry=r)
        self.shortfall = Gauge("suandian_grid_shortfall_watts", "How far the plan falls "
                               "short of a request in its worst slot, watts.", labels,
                               registry=r)
        self.energy = Counter("suandian_grid_delivered_joules_total", "Energy shed or "
                              "absorbed at the grid's request, measured, joules.", ["type"],
                              registry=r)
        self.events = Gauge("suandian_grid_events", "GridEvents by phase.", ["phase"],
                            registry=r)
        self.ven_registered = Gauge("suandian_openadr_registered", "1 while the OpenADR "
                                    "VEN is registered with its VTN, else 0.", registry=r)
        self.ven_failures = Counter("suandian_openadr_registration_failures_total",
                                    "OpenADR registrations that failed or were cancelled "
                                    "by the VTN.", registry=r)

    def record(self, name: str, type_: str, phase: str, figures: Mapping[str, SiteFigures],
               delivered_kwh: float) -> None:
        """The event's figures now (only while it is on: else pass none) and the energy
        delivered since its last record."""
        if type_ not in GRID_EVENT_TYPES or phase not in GRID_EVENT_PHASES:
            raise ValueError(f"unknown GridEvent type {type_!r} or phase {phase!r}")
        energy = self.energy.labels(type_)  # a series from the first event on, at 0
        if delivered_kwh > 0:
            energy.inc(delivered_kwh * JOULES_PER_KWH)
        self._by_event[name] = (type_, phase, dict(figures))
        self._publish()

    def remove(self, name: str) -> None:
        if self._by_event.pop(name, None) is not None:
            self._publish()

    def _publish(self) -> None:
        sums: dict[tuple[str, str], list[float]] = {}
        phases = dict.fromkeys(GRID_EVENT_PHASES, 0)
        for type_, phase, figures in self._by_event.values():
            phases[phase] += 1
            for site, f in figures.items():
                total = sums.setdefault((site, type_), [0.0, 0.0, 0.0, 0.0])
                for i, v in enumerate((f.asked_kw, f.committed_kw, f.delivered_kw,
                                       f.shortfall_kw)):
                    total[i] += v * WATTS_PER_KW
        for gauge in (self.asked, self.committed, self.delivered, self.shortfall):
            gauge.clear()
        for (site, type_), (asked, committed, delivered, short) in sums.items():
            self.asked.labels(site, type_).set(asked)
            self.committed.labels(site, type_).set(committed)
            self.delivered.labels(site, type_).set(delivered)
            self.shortfall.labels(site, type_).set(short)
        for phase, n in phases.items():
            self.events.labels(phase).set(n)

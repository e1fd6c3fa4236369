"""The valid GridEvents, as planning rounds read them (kept by :mod:`.gridevent`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from suandian.api import GridEvent
from suandian.gridasks import asks_of
from suandian.planner.grid import GridAsk

__all__ = ["GridBook"]


@dataclass
class GridBook:
    """The valid GridEvents by name, as planning rounds read them."""

    events: dict[str, GridEvent] = field(default_factory=dict)
    # what each event's sites deliver now, kW, while its window is on (its daemon's last
    # measurement): the OpenADR VEN reports it
    delivering: dict[str, dict[str, float]] = field(default_factory=dict)
    # the status last written for each event: the base of the next one until the watch
    # shows it back (a second look before the echo would count the same energy, and
    # announce the same phase, twice)
    written: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the planning keys of the jobs each event moved or held, as the rounds answered it
    # (a later round's plan holds them where the first put them, and names them no more):
    # the jobs whose deadlines the event answers for
    affected: dict[str, set[str]] = field(default_factory=dict)

    def delivered_kw(self, site: str, names: Collection[str] | None = None) -> float:
        """What ``site`` delivers now against the events on (of ``names`` only)."""
        return sum(by_site.get(site, 0.0) for name, by_site in self.delivering.items()
                   if names is None or name in names)

    def asks(self, site_names: Sequence[str]) -> list[GridAsk]:
        """Every event's requests at the sites of a round (``site_names``, in its order)."""
        return [a for e in self.events.values() for a in asks_of(e, site_names)]

    def clear(self) -> None:
        self.events.clear()
        self.delivering.clear()
        self.written.clear()
        self.affected.clear()

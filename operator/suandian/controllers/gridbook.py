"""The valid GridEvents, as planning rounds read them (kept by :mod:`.gridevent`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from suandian.api import GridEvent
from suandian.gridasks import asks_of
from suandian.planner.grid import GridAsk

__all__ = ["GridBook"]


@dataclass
class GridBook:
    """The valid GridEvents by name, as planning rounds read them."""

    events: dict[str, GridEvent] = field(default_factory=dict)

    def asks(self, site_names: Sequence[str]) -> list[GridAsk]:
        """Every event's requests at the sites of a round (``site_names``, in its order)."""
        return [a for e in self.events.values() for a in asks_of(e, site_names)]

    def clear(self) -> None:
        self.events.clear()

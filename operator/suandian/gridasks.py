"""GridEvents as the planner's requests: one :class:`~suandian.planner.grid.GridAsk` per
event and site.

The API's models and the planner meet here and nowhere else: the planner knows no
pydantic model (its process never loads them), the models know no planner. The
simulator and the operator both turn events into requests with :func:`asks_of`, so an
event means the same in a replay as in a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

from suandian.api import GridEvent
from suandian.planner.grid import GridAsk

__all__ = ["ask_key", "asks_of", "site_of"]


def ask_key(event: str, site: str) -> str:
    """The key of an event's request at a site: ``<event>@<site>`` (stable across rounds,
    whose site indices may change as PowerSites come and go)."""
    return f"{event}@{site}"


def site_of(key: str) -> str:
    """The site of a request's key (:func:`ask_key`)."""
    return key.rsplit("@", 1)[-1]


def asks_of(event: GridEvent, site_names: Sequence[str]) -> list[GridAsk]:
    """The event's requests at those of its sites in ``site_names`` (indexed by it): a
    ceiling, a reduction, a surplus, or a Price event's periods as a tariff."""
    spec = event.spec
    name = event.metadata.name or ""
    where = {s: i for i, s in enumerate(site_names)}
    tariff = tuple((p.start, p.end, p.price_per_kwh) for p in spec.prices.periods) if (
        spec.prices is not None) else None
    return [GridAsk(key=ask_key(name, site), site=where[site], start=spec.start, end=spec.end,
                    ceiling_kw=spec.shed.ceiling_kw if spec.shed else None,
                    reduction_kw=spec.shed.reduction_kw if spec.shed else None,
                    reduction_share=_share(spec.shed.reduction_percent if spec.shed
                                           else None),
                    absorb_kw=spec.absorb.power_kw if spec.absorb else None,
                    tariff=tariff, currency=spec.prices.currency if spec.prices else None,
                    mandatory=spec.mandatory, priority=spec.priority)
            for site in spec.sites if site in where]


def _share(percent: float | None) -> float | None:
    return None if percent is None else percent / 100.0

"""Grid events in the simulator: the scenario's ``gridEvents`` (GridEvent manifests,
parsed by the API's own models), put on the world's slot grid, told to the policies that
answer the grid, and measured for every policy alike.

What the world does with them:

- an **absorb** event's surplus is real: it is added to the site's *actual* green supply
  over its window, for every policy (the emissions of whoever runs then fall), but
  not to the forecasts the policies are told. Only a policy that reads the event (the
  ``suandian`` policy) knows it is coming;
- a **shed** event changes no supply: it is a request, and the figures below say how
  far each policy met it.

How each policy is measured, per event and slot ``k`` of its window, with ``h`` hours
per slot, ``I`` the policy's grid import (facility load less actual green, the surplus
excluded) and ``B`` the baseline, run-now's import (what the site draws when work runs
as it comes, the usual "customer baseline load" of demand response):

    ceiling C:     asked = max(Σ max(0, B_k − C), Σ over_k)    over_k = max(0, I_k − C)
                   delivered = asked − Σ over   (a policy over a ceiling that the
                   baseline kept is asked what it went over, and delivered none of it)
    reduction R:   asked_k = min(R, B_k)          delivered_k = min(asked_k, max(0, B_k − I_k))
    share s:       asked_k = s · B_k              (delivered_k the same)
                   compliance = Σ delivered / Σ asked
    shed_kwh      = Σ max(0, B_k − I_k) · h        (energy under the baseline)
    absorbed_kwh  = Σ min(P, max(0, L_k − G_k)) · h  (L: facility load; G: the site's own
                                                    green: the load the surplus fed)
    cost          = Σ max(0, L_k − G_k − S_k) · p_k · h   (p: the Price events' tariff,
                                                    every site and slot of the run; S:
                                                    an absorb event's surplus, free)

The oracle meets every shed (:func:`shed_limits_kw`: each becomes a ceiling on its
import in its window, ``C`` or ``max(0, B_k − R)``) and, with a tariff, minimises
``carbon + w · cost`` as the ``suandian`` policy weighs them.

A policy's ``shed_compliance`` is the asked-weighted mean over its shed events (the
ceiling's and the reduction's asked energy, kWh): delivered over asked for the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from suandian.api import GridEvent, parse_gridevent
from suandian.errors import FieldError, InvalidSpecError
from suandian.gridasks import asks_of
from suandian.planner.grid import GridAsk
from suandian.planner.model import FloatArray

__all__ = ["EventFigures", "SimEvent", "figures", "parse_events", "shed_limits_kw",
           "sim_events", "surplus_kw", "tariff_per_kwh"]


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One event at one site: the planner's request over its whole window (keyed
    ``<event>@<site>``), and that window on the world's grid, slots
    ``[first, last)``."""

    ask: GridAsk
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class EventFigures:
    """What one policy delivered against the events of a run (see the module doc)."""

    shed_kwh: float
    shed_asked_kwh: float
    shed_delivered_kwh: float
    absorbed_kwh: float
    absorb_offered_kwh: float
    cost: float | None = None
    """What the grid power cost under the run's tariffs (None: no Price event)."""

    @property
    def shed_compliance(self) -> float | None:
        """Delivered over asked across the run's sheds; None without any shed asked."""
        if self.shed_asked_kwh <= 0:
            return None
        return self.shed_delivered_kwh / self.shed_asked_kwh


def parse_events(entries: Any, site_names: Sequence[str], errors: list[FieldError]
                 ) -> tuple[GridEvent, ...]:
    """The scenario's ``gridEvents``: a list of GridEvent manifests. Each error is named
    ``gridEvents[i].<field>``; an unknown site is an error here (in a cluster it is only
    flagged: the PowerSite may come later, but a scenario's sites are all there is).
    A run's tariffs (Price events) share one currency."""
    if entries is None:
        return ()
    if not isinstance(entries, list):
        errors.append(FieldError("gridEvents", "a list of GridEvent manifests (kind: "
                                               "GridEvent), see examples/gridevents/"))
        return ()
    out: list[GridEvent] = []
    currencies: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"gridEvents[{i}]"
        if not isinstance(entry, dict):
            errors.append(FieldError(where, "a GridEvent manifest (a mapping)"))
            continue
        manifest = {"apiVersion": "suandian.io/v1alpha1", "kind": "GridEvent", **entry}
        manifest.setdefault("metadata", {"name": f"event-{i}"})
        try:
            event = parse_gridevent(manifest)
        except InvalidSpecError as exc:
            errors.extend(FieldError(f"{where}.{e.path}", e.message) for e in exc.errors)
            continue
        unknown = [s for s in event.spec.sites if s not in site_names]
        if unknown:
            errors.append(FieldError(f"{where}.spec.sites", (
                f"{', '.join(unknown)} is not a site of this scenario "
                f"({', '.join(site_names)})")))
            continue
        if event.spec.prices is not None:
            currency = event.spec.prices.currency
            if currencies and currency not in currencies:
                errors.append(FieldError(f"{where}.spec.prices.currency", (
                    f"{currency} beside {', '.join(sorted(currencies))}: a run's tariffs "
                    "share one currency")))
                continue
            currencies.add(currency)
        out.append(event)
    return tuple(out)


def sim_events(events: Sequence[GridEvent], site_names: Sequence[str], start: datetime,
               slot: timedelta, slots: int) -> tuple[SimEvent, ...]:
    """Each event at each of its sites, on the world's grid (a slot the window only partly
    covers counts whole), clipped to the run."""
    out: list[SimEvent] = []
    step = slot.total_seconds()
    for event in events:
        spec = event.spec
        first = max(0, math.floor((spec.start - start).total_seconds() / step))
        last = min(slots, math.ceil((spec.end - start).total_seconds() / step))
        if last > first:
            out.extend(SimEvent(ask, first, last) for ask in asks_of(event, site_names))
    return tuple(out)


def surplus_kw(events: Sequence[SimEvent], sites: int, slots: int) -> FloatArray:
    """The absorb events' surplus per site and slot, kW (added to the actual green)."""
    out = np.zeros((sites, slots))
    for e in events:
        if e.ask.absorb_kw is not None:
            out[e.ask.site, e.first:e.last] += e.ask.absorb_kw
    return out


def shed_limits_kw(events: Sequence[SimEvent], own_green: FloatArray,
                   baseline_load: FloatArray | None) -> FloatArray:
    """The sheds as ceilings on ``L − g`` (facility load less the green used, the surplus
    counted as green, as the oracle's model has it) per site and slot; inf where no shed
    asks. A shed bounds ``I = max(0, L − G)``, the import measured against the site's own
    green ``G``, so a ceiling ``C`` becomes ``C − S`` beside a surplus ``S`` (at least 0:
    a shed over an absorb window asks the near-impossible; the 0 is the closest the model
    holds). A reduction is ``B − reduced(B)`` under the baseline's import ``B``
    (``baseline_load``, run-now's, required when a reduction is among ``events``)."""
    sites, slots = own_green.shape
    surplus = surplus_kw(events, sites, slots)
    out = np.full((sites, slots), np.inf)
    for e in events:
        q, at = e.ask, slice(e.first, min(e.last, slots))
        if not q.shed:
            continue
        if q.ceiling_kw is not None:
            ceiling = np.full(at.stop - at.start, q.ceiling_kw)
        else:
            if baseline_load is None:
                raise ValueError(f"shed {q.key} is a reduction: its ceiling needs the "
                                 "baseline's load")
            base = np.maximum(baseline_load[q.site, at] - own_green[q.site, at], 0.0)
            ceiling = np.maximum(base - q.reduced(base), 0.0)
        out[q.site, at] = np.minimum(out[q.site, at],
                                     np.maximum(ceiling - surplus[q.site, at], 0.0))
    return out


def tariff_per_kwh(events: Sequence[SimEvent], start: datetime, slot: timedelta, sites: int,
                   slots: int) -> FloatArray | None:
    """The Price events' tariff per site and slot (per kWh of grid power; 0 outside their
    periods), None without any. A slot a period only partly covers is priced by the
    share it covers."""
    priced = [e for e in events if e.ask.tariff is not None]
    if not priced:
        return None
    out = np.zeros((sites, slots))
    edges = np.array([(start + slot * k).timestamp() for k in range(slots + 1)])
    for e in priced:
        assert e.ask.tariff is not None
        for begin, end, price in e.ask.tariff:
            cover = np.clip(np.minimum(edges[1:], end.timestamp())
                            - np.maximum(edges[:-1], begin.timestamp()), 0.0, None)
            out[e.ask.site] += price * cover / slot.total_seconds()
    return out


def figures(events: Sequence[SimEvent], h: float, load: FloatArray, own_green: FloatArray,
            baseline_load: FloatArray, tariff: FloatArray | None = None) -> EventFigures:
    """What ``load`` delivered against ``events`` (the module doc's formulas), and what its
    grid power cost under ``tariff`` (:func:`tariff_per_kwh`)."""
    n = min(load.shape[1], baseline_load.shape[1], own_green.shape[1])
    imports = np.maximum(load[:, :n] - own_green[:, :n], 0.0)
    base = np.maximum(baseline_load[:, :n] - own_green[:, :n], 0.0)
    shed = asked = delivered = absorbed = offered = 0.0
    for e in events:
        q, at = e.ask, slice(e.first, min(e.last, n))
        if q.tariff is not None:  # (refused by parse_events: not simulated yet)
            continue
        i, b = imports[q.site, at], base[q.site, at]
        if q.absorb_kw is not None:
            fed = np.minimum(q.absorb_kw, np.maximum(load[q.site, at] - own_green[q.site, at],
                                                     0.0))
            absorbed += float(fed.sum()) * h
            offered += q.absorb_kw * (at.stop - at.start) * h
            continue
        shed += float(np.maximum(b - i, 0.0).sum()) * h
        if q.ceiling_kw is not None:
            over = float(np.maximum(i - q.ceiling_kw, 0.0).sum()) * h
            ask = max(float(np.maximum(b - q.ceiling_kw, 0.0).sum()) * h, over)
            asked += ask
            delivered += ask - over
        else:
            wanted = q.reduced(b)
            asked += float(wanted.sum()) * h
            delivered += float(np.minimum(wanted, np.maximum(b - i, 0.0)).sum()) * h
    cost = None
    if tariff is not None:  # the surplus is free: only what is drawn beyond it is paid
        m = min(n, tariff.shape[1])
        paid = np.maximum(imports[:, :m] - surplus_kw(events, load.shape[0], m), 0.0)
        cost = float((paid * tariff[:, :m]).sum()) * h
    return EventFigures(shed_kwh=shed, shed_asked_kwh=asked, shed_delivered_kwh=delivered,
                        absorbed_kwh=absorbed, absorb_offered_kwh=offered, cost=cost)

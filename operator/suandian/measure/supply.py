"""Which power a job's energy came from, slot by slot: green first, then the grid.

Facility energy is IT energy × the site's PUE. In each slot the job's green share is
the site's as observed at the forecast refreshes taken in that slot (green supply over
the compute power its jobs drew, capped at 1, averaged), else at the last refresh before
the slot if at most ``max_age`` old, else the plan's expected share; grid intensity
likewise, else the site's configured one. The green part is split across the site's
green sources (``solar``, ``wind``, ``hydro``, ``directGreen``, ``storage``) in
proportion to what each supplied in that slot as observed, else in proportion to the
site's configured capacities (``fallback_mix``); the rest is ``grid``. A slot whose
green share is positive but whose site names no green source counts as grid: green
that cannot be named is not claimed. The kWh by source therefore sum to the job's
facility energy.

    emissions = Σ_slots facility kWh × (1 − green share) × grid intensity   (g)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np

from suandian.api.powersite import SourceType
from suandian.measure.energy import JOULES_PER_KWH, SlotEnergy

__all__ = ["GREEN_SOURCES", "LEDGER_SOURCES", "Account", "SampleLike", "account",
           "slot_supply"]

GREEN_SOURCES = (*(s.value for s in SourceType), "storage")
"""Where a job's green energy came from: each supply type, and battery discharge."""
LEDGER_SOURCES = (*GREEN_SOURCES, "grid")
"""The ledger's ``source``: the green sources, and the grid."""


class SampleLike(Protocol):
    """What a site observation offers (``suandian.controllers.context.Sample``)."""

    @property
    def at(self) -> datetime: ...
    @property
    def green_share(self) -> float: ...
    @property
    def carbon_g_per_kwh(self) -> float: ...
    @property
    def green_by_source_kw(self) -> Mapping[str, float]: ...


@dataclass(frozen=True, eq=False)
class SlotSupply:
    """Per slot: green share (0..1), grid intensity (g/kWh), the green mix (shares of
    :data:`GREEN_SOURCES`, summing to 1, or empty) and whether it was observed."""

    green_share: np.ndarray
    carbon: np.ndarray
    mix: list[dict[str, float]]
    observed: np.ndarray


def _mix(by_source: Mapping[str, float]) -> dict[str, float]:
    parts = {k: max(0.0, float(by_source.get(k, 0.0))) for k in GREEN_SOURCES}
    total = sum(parts.values())
    return {k: v / total for k, v in parts.items() if v > 0} if total > 0 else {}


def slot_supply(edges: np.ndarray, samples: Sequence[SampleLike], *, max_age_s: float,
                planned_share: float, configured_carbon: float,
                fallback_mix: Mapping[str, float]) -> SlotSupply:
    """The site's supply in each slot between ``edges`` (see the module docstring)."""
    stamps = np.array([s.at.timestamp() for s in samples], dtype=float)
    n = len(edges) - 1
    share, carbon = np.empty(n), np.empty(n)
    observed = np.zeros(n, dtype=bool)
    mixes: list[dict[str, float]] = []
    fallback = _mix(fallback_mix)
    for k in range(n):
        a, b = float(edges[k]), float(edges[k + 1])
        inside = np.flatnonzero((stamps >= a) & (stamps < b))  # a sample at b is the next's
        if inside.size == 0:
            before = np.flatnonzero((stamps <= a) & (stamps >= a - max_age_s))
            inside = before[-1:]
        if inside.size:
            chosen = [samples[int(i)] for i in inside]
            share[k] = float(np.mean([s.green_share for s in chosen]))
            carbon[k] = float(np.mean([s.carbon_g_per_kwh for s in chosen]))
            totals: dict[str, float] = {}
            for s in chosen:
                for key, kw in s.green_by_source_kw.items():
                    totals[key] = totals.get(key, 0.0) + float(kw)
            mixes.append(_mix(totals) or fallback)
            observed[k] = True
        else:
            share[k], carbon[k] = planned_share, configured_carbon
            mixes.append(fallback)
    return SlotSupply(np.clip(share, 0.0, 1.0), carbon, mixes, observed)


@dataclass(frozen=True)
class Account:
    """A finished run's figures: IT and facility kWh, green share of the facility
    energy, emissions (g), kWh by :data:`LEDGER_SOURCES`, the share of slots observed."""

    it_kwh: float
    energy_kwh: float
    green_share: float
    emissions_g: float
    kwh_by_source: dict[str, float]
    observed_share: float

    @property
    def green_kwh(self) -> float:
        return self.energy_kwh - self.kwh_by_source.get("grid", 0.0)

    @property
    def grid_kwh(self) -> float:
        return self.kwh_by_source.get("grid", 0.0)


def account(energy: SlotEnergy, supply: SlotSupply, pue: float) -> Account:
    """Facility energy split green first, then grid, slot by slot."""
    facility = energy.it_j / JOULES_PER_KWH * pue
    by_source = dict.fromkeys(LEDGER_SOURCES, 0.0)
    emissions = 0.0
    for k, kwh in enumerate(facility):
        mix = supply.mix[k]
        green = float(kwh) * float(supply.green_share[k]) if mix else 0.0
        for name, part in mix.items():
            by_source[name] += green * part
        grid = float(kwh) - green
        by_source["grid"] += grid
        emissions += grid * float(supply.carbon[k])
    total = float(facility.sum())
    green_total = total - by_source["grid"]
    n = len(supply.observed)
    return Account(it_kwh=energy.it_kwh, energy_kwh=total,
                   green_share=min(1.0, max(0.0, green_total / total)) if total > 0 else 0.0,
                   emissions_g=emissions, kwh_by_source=by_source,
                   observed_share=float(supply.observed.sum()) / n if n else 0.0)

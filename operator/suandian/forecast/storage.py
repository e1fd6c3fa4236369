"""A site battery that stores green surplus and offers it later as extra green supply.

The assumption (the planner relies on it; keep it in sync with docs/forecasting.md):

* The battery charges only from green power above the site's **reference draw**
  ``draw_kw`` (never from the grid), at most ``maxPowerKW``, until full.
* When green power falls below ``draw_kw`` it discharges to fill the gap, at most
  ``maxPowerKW``, never below ``minStateOfCharge``. What it can deliver in a slot is
  ``storage_kw``: extra green supply on top of ``green_total_kw``.
* The reference draw is the site's current compute draw when known; otherwise (the
  built-in forecasts) the mean green power over the horizon, i.e. a site sized to its
  own average green supply. ``storage_kw`` is therefore conditional: the surplus above
  the reference draw in earlier slots is assumed to go into the battery, not into
  extra compute. The planner must not count both.

Round-trip losses are taken on the way in (``charge x efficiency`` is stored), so a kWh
offered is a kWh deliverable. The recurrence over slots is inherently sequential; it is
vectorised over sites, so 50 sites x 192 slots is 192 small numpy steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suandian.api.powersite import Storage

__all__ = ["Battery", "BatteryRun", "run_batteries"]


@dataclass(frozen=True)
class Battery:
    """The parameters of one battery (kWh, kW, fractions)."""

    capacity_kwh: float
    max_power_kw: float
    round_trip_efficiency: float
    min_soc: float = 0.1
    initial_soc: float = 0.5

    @classmethod
    def from_spec(cls, spec: Storage) -> Battery:
        return cls(spec.capacity_kwh, spec.max_power_kw, spec.round_trip_efficiency,
                   spec.min_state_of_charge, spec.initial_state_of_charge)


@dataclass(frozen=True)
class BatteryRun:
    """Per site x slot: what the battery offers (kW), takes in (kW), and its SoC (0..1)
    at the end of each slot."""

    discharge_kw: np.ndarray
    charge_kw: np.ndarray
    soc: np.ndarray


def run_batteries(green_kw: np.ndarray, draw_kw: np.ndarray, batteries: list[Battery | None],
                  slot_hours: float, soc0: np.ndarray | None = None) -> BatteryRun:
    """Simulate each site's battery against its green supply and reference draw.

    ``green_kw`` is sites x slots; ``draw_kw`` is per site (or sites x slots). A site
    without a battery (``None``) offers 0 kW everywhere.
    """
    n_sites, n_slots = green_kw.shape
    has = np.array([b is not None for b in batteries], dtype=bool)
    cap = np.array([b.capacity_kwh if b else 1.0 for b in batteries])
    pmax = np.array([b.max_power_kw if b else 0.0 for b in batteries])
    eff = np.array([b.round_trip_efficiency if b else 1.0 for b in batteries])
    floor = np.array([b.min_soc if b else 0.0 for b in batteries]) * cap
    energy = (np.array([b.initial_soc if b else 0.0 for b in batteries])
              if soc0 is None else np.asarray(soc0, dtype=np.float64)) * cap
    energy = np.maximum(energy, 0.0)
    draw = np.broadcast_to(np.asarray(draw_kw, dtype=np.float64).reshape(n_sites, -1),
                           (n_sites, n_slots))
    net = green_kw - draw
    out = np.zeros((n_sites, n_slots))
    inn = np.zeros((n_sites, n_slots))
    soc = np.zeros((n_sites, n_slots))
    for t in range(n_slots):
        surplus = np.maximum(net[:, t], 0.0)
        deficit = np.maximum(-net[:, t], 0.0)
        charge = np.minimum(np.minimum(surplus, pmax), (cap - energy) / (eff * slot_hours))
        discharge = np.minimum(np.minimum(deficit, pmax),
                               np.maximum(energy - floor, 0.0) / slot_hours)
        energy = energy + (charge * eff - discharge) * slot_hours
        inn[:, t] = charge
        out[:, t] = discharge
        soc[:, t] = energy / cap
    out[~has] = 0.0
    inn[~has] = 0.0
    soc[~has] = 0.0
    return BatteryRun(out, inn, soc)


def battery_loop_reference(green_kw: list[float], draw_kw: float, b: Battery,
                           slot_hours: float) -> list[float]:
    """The same recurrence for one site in plain Python (tests and the benchmark baseline)."""
    energy = b.initial_soc * b.capacity_kwh
    floor = b.min_soc * b.capacity_kwh
    out: list[float] = []
    for g in green_kw:
        net = g - draw_kw
        charge = min(max(net, 0.0), b.max_power_kw,
                     (b.capacity_kwh - energy) / (b.round_trip_efficiency * slot_hours))
        discharge = min(max(-net, 0.0), b.max_power_kw, max(energy - floor, 0.0) / slot_hours)
        energy += (charge * b.round_trip_efficiency - discharge) * slot_hours
        out.append(discharge)
    return out

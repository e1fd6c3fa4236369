"""The ledger: green supply, grid import and capacity left at every site and slot.

Decisions consume it as they are made, so the next job sees only what is left. Arrays
are padded past the horizon (no green, mean grid intensity, last import limit and
capacity) so windows never run off the end. The ledger also keeps each site's lowest
free capacity and import over the padded horizon, so the common case (plenty of room)
skips the per-slot capacity check entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suandian.planner.model import FloatArray, Snapshot

__all__ = ["Ledger", "Slots"]

Slots = slice | np.ndarray
"""Slot indices: a slice for a contiguous window (a view, no copy), else an index array."""


def as_slots(slots: np.ndarray) -> Slots:
    """A contiguous, increasing run of indices as a slice; anything else unchanged."""
    if slots.size and int(slots[-1]) - int(slots[0]) == slots.size - 1:
        return slice(int(slots[0]), int(slots[-1]) + 1)
    return slots


@dataclass
class Ledger:
    """What is left, mutated by :meth:`commit`."""

    green50: FloatArray  # (S, T+pad) kW, never negative
    green10: FloatArray  # never above green50
    carbon: FloatArray
    imports: FloatArray
    capacity: FloatArray  # (S, R, T+pad)
    load: FloatArray
    used: FloatArray
    pue: FloatArray  # (S,)
    h: float
    capacity_min: FloatArray  # (S, R): lowest free capacity over the padded horizon
    imports_min: FloatArray  # (S,)
    carbon_h: FloatArray  # carbon · h: grams per kW over one slot
    delay_h: FloatArray  # (T+pad,): hours from now to each slot
    supply50: FloatArray  # the green supply before any job (for release)
    supply10: FloatArray
    import_limit: FloatArray

    @classmethod
    def from_snapshot(cls, snap: Snapshot, pad: int) -> Ledger:
        def padded(name: str, fill: FloatArray | float) -> FloatArray:
            arr = snap.stacked(name)
            tail = np.broadcast_to(np.asarray(fill, dtype=float).reshape(-1, 1), (len(arr), pad))
            return np.concatenate([arr, tail], axis=1)

        carbon = snap.stacked("carbon_g_per_kwh")
        cap = np.stack([np.asarray(s.capacity, dtype=float) for s in snap.sites])
        cap = np.concatenate([cap, np.repeat(cap[:, :, -1:], pad, axis=2)], axis=2)
        g50 = np.maximum(padded("green_p50_kw", 0.0), 0.0)
        carbon_padded = padded("carbon_g_per_kwh", carbon.mean(axis=1))
        imports = padded("import_limit_kw", snap.stacked("import_limit_kw")[:, -1])
        return cls(
            green50=g50,
            green10=np.clip(padded("green_p10_kw", 0.0), 0.0, g50),
            carbon=carbon_padded,
            imports=imports,
            capacity=cap,
            load=np.zeros_like(g50),
            used=np.zeros_like(g50),
            pue=np.array([s.pue for s in snap.sites], dtype=float),
            h=snap.slot_hours,
            capacity_min=cap.min(axis=2),
            imports_min=imports.min(axis=1),
            carbon_h=carbon_padded * snap.slot_hours,
            supply50=g50.copy(),
            supply10=np.clip(padded("green_p10_kw", 0.0), 0.0, g50),
            import_limit=imports.copy(),
            delay_h=np.arange(g50.shape[1], dtype=np.float64) * snap.slot_hours,
        )

    @property
    def width(self) -> int:
        """Slots in the padded horizon."""
        return int(self.green50.shape[1])

    def room_everywhere(self, sites: slice | np.ndarray, request: FloatArray, q: FloatArray
                        ) -> bool:
        """True when every slot of every given site has room for the job (capacity and
        grid import even with no green), so per-slot checks can be skipped."""
        return bool((self.capacity_min[sites] >= request - 1e-9).all()
                    and (self.imports_min[sites] >= q - 1e-9).all())

    def commit(self, site: int, slots: np.ndarray, q: float, request: FloatArray) -> None:
        """Take green first, then grid import, and capacity, for ``q`` kW over ``slots``."""
        at = as_slots(slots)
        u50 = np.minimum(q, self.green50[site, at])
        u10 = np.minimum(q, self.green10[site, at])
        self.green50[site, at] -= u50
        self.green10[site, at] -= u10
        self.imports[site, at] -= q - u50
        self.load[site, at] += q
        self.used[site, at] += u50
        self.imports_min[site] = min(self.imports_min[site], float(self.imports[site, at].min()))
        if request.any():
            self.capacity[site][:, at] -= request[:, None]
            self.capacity_min[site] = np.minimum(self.capacity_min[site],
                                                 self.capacity[site][:, at].min(axis=1))

    def release(self, site: int, slots: np.ndarray, q: float, request: FloatArray) -> None:
        """Undo a :meth:`commit`: what is left is recomputed from the load, since
        green-first makes it ``max(G − L, 0)`` whatever the order jobs were added in."""
        at = as_slots(slots)
        self.load[site, at] -= q
        load = np.maximum(self.load[site, at], 0.0)
        self.used[site, at] = np.minimum(load, self.supply50[site, at])
        self.green50[site, at] = np.maximum(self.supply50[site, at] - load, 0.0)
        self.green10[site, at] = np.maximum(self.supply10[site, at] - load, 0.0)
        self.imports[site, at] = self.import_limit[site, at] - (load - self.used[site, at])
        self.imports_min[site] = float(self.imports[site].min())
        if request.any():
            self.capacity[site][:, at] += request[:, None]
            self.capacity_min[site] = self.capacity[site].min(axis=1)

    def emissions(self, site: int, slots: np.ndarray, q: float) -> tuple[float, float]:
        """P50 emissions (g) and green fraction of ``q`` kW over ``slots`` at ``site``, now:
        ``Σ (q − min(q, G)) · c · h`` and ``Σ min(q, G) / (q · n)``."""
        at = as_slots(slots)
        u = np.minimum(q, self.green50[site, at])
        grams = float(((q - u) * self.carbon[site, at]).sum() * self.h)
        energy = q * len(slots)
        return grams, float(u.sum() / energy) if energy > 0 else 1.0

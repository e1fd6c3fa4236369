"""The ledger: green supply, grid import and capacity left at every site and slot.

Decisions consume it as they are made, so the next job sees only what is left. Arrays
are padded past the horizon (no green, mean grid intensity, last import limit and
capacity) so windows never run off the end. """

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from suandian.planner.model import FloatArray, Snapshot

__all__ = ["Ledger", "Slots"]

_EPS = 1e-9

Slots = slice | np.ndarray
"""Slot indices: a slice for a contiguous window (a view, no copy), else an index array."""


_sum = np.add.reduce  # what ``ndarray.sum`` calls, without its Python layer
# a row's least value as ``x[x.argmin()]``: a sixth of the cost of ``np.minimum.reduce``
# on a small array, and the same value (NaN included)


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
    pue: FloatArray  # (S,)
    h: float
    carbon_h: FloatArray  # carbon · h: grams per kW over one slot
    delay_h: FloatArray  # (T+pad,): hours from now to each slot
    delay_rate: FloatArray  # (S,): delay cost per site, g/kWh per hour (scoring.delay_rate)
    delay_rate_column: FloatArray  # the same as a (S, 1) column, to broadcast over slots
    supply50: FloatArray  # the green supply before any job (for release)
    supply10: FloatArray
    import_limit: FloatArray
    reserved: FloatArray  # grid import held for expected arrivals (:meth:`reserve`)
    holds: dict[int, FloatArray]  # what each expected arrival holds, by term index
    # caches of what depends on the delay rate only (:meth:`bounds_hold`, :meth:`delay_factor`)
    _bounds: tuple[FloatArray, bool] | None = field(
        default=None, init=False, repr=False, compare=False)
    _carbon_finite: bool | None = field(default=None, init=False, repr=False, compare=False)
    _scratch: FloatArray | None = field(default=None, init=False, repr=False, compare=False)
    _factors: tuple[FloatArray, dict[int, FloatArray]] | None = field(
        default=None, init=False, repr=False, compare=False)
    pue_of: list[float] = field(default_factory=list, init=False, repr=False, compare=False)
    """``pue`` as Python floats: a job's facility kW at one site is a float product, not
    a numpy scalar's (the same value, at a tenth of the cost)."""

    green: FloatArray = field(default=None, init=False, repr=False, compare=False)  # type: ignore[arg-type]
    """``(S, 2, T+pad)``: ``green50`` and ``green10`` are its two rows at each site (views),
    so a commit or a score takes or reads both in one numpy call."""
    room: FloatArray = field(default=None, init=False, repr=False, compare=False)  # type: ignore[arg-type]
    """``(S, 1+R, T+pad)``: ``imports`` then ``capacity`` (views): one window of a site is
    one view and one comparison for both (a job's ``room_floor``, :mod:`.terms`)."""

    def __post_init__(self) -> None:
        self.pue_of = self.pue.tolist()
        sites, width = self.green50.shape
        green = np.empty((sites, 2, width))
        green[:, 0], green[:, 1] = self.green50, self.green10
        self.green, self.green50, self.green10 = green, green[:, 0], green[:, 1]
        room = np.empty((sites, 1 + self.capacity.shape[1], width))
        room[:, 0], room[:, 1:] = self.imports, self.capacity
        self.room, self.imports, self.capacity = room, room[:, 0], room[:, 1:]

    @classmethod
    def from_snapshot(cls, snap: Snapshot, pad: int) -> Ledger:
        """The ledger of an empty plan (no delay cost: the planner sets ``delay_rate``)."""
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
            pue=np.array([s.pue for s in snap.sites], dtype=float),
            h=snap.slot_hours,
            carbon_h=(carbon_padded + _tariff(snap, pad)) * snap.slot_hours,
            supply50=g50.copy(),
            supply10=np.clip(padded("green_p10_kw", 0.0), 0.0, g50),
            import_limit=imports.copy(),
            reserved=np.zeros_like(g50),
            holds={},
            delay_h=np.arange(g50.shape[1], dtype=np.float64) * snap.slot_hours,
            delay_rate=np.zeros(len(snap.sites)),
            delay_rate_column=np.zeros((len(snap.sites), 1)),
        )

    def bounds_hold(self) -> bool:
        """True when no slot's cost is negative and the delay cost never falls with a
        later start: carbon intensity and delay rates finite and not negative, hours of
        delay not decreasing. :mod:`~suandian.planner.choose` then bounds a window's cost
        from below by its delay cost alone. Computed once per delay rate (the planner sets
        it once per round, after building the ledger)."""
        cached = self._bounds
        if cached is None or cached[0] is not self.delay_rate:
            ok = bool(np.isfinite(self.carbon_h).all() and (self.carbon_h >= 0).all()
                      and np.isfinite(self.delay_rate).all() and (self.delay_rate >= 0).all()
                      and (np.diff(self.delay_h) >= 0).all() and (self.delay_h >= 0).all())
            cached = self._bounds = (self.delay_rate, ok)
        return cached[1]

    @property
    def pue_column(self) -> FloatArray:
        """PUE as a ``(sites, 1)`` column, to broadcast a job's power over sites × slots."""
        return self.pue[:, None]

    @property
    def width(self) -> int:
        """Slots in the padded horizon."""
        return int(self.green50.shape[1])

    def fits(self, site: int, start: int, n: int, q: float, request_floor: FloatArray
             ) -> bool:
        """True when ``q`` kW and the request fit at ``site`` in every slot of the window
        ``[start, start + n)``: the grid share ``q − min(q, G)`` within the import left and
        every resource within the free capacity (the same test as
        :func:`suandian.planner.scoring.infeasible_slots`, for one window).
        ``request_floor`` is ``(request − 1e-9)`` as a ``(resources, 1)`` column."""
        w = slice(start, start + n)
        # capacity first: it is what is short when anything is (count_nonzero is the
        # cheapest reduction to call on a small array)
        if np.count_nonzero(self.capacity[site, :, w] < request_floor):
            return False
        grid = q - np.minimum(q, self.green50[site, w])
        return not np.count_nonzero(grid > self.imports[site, w] + _EPS)

    def _sum_of(self, q: float, n: int) -> float:
        """``n`` copies of ``q`` summed as numpy sums an array of them (its pairwise
        order, so the same float as ``np.minimum(q, G).sum()`` where ``G ≥ q``), in a
        scratch row instead of a new array."""
        scratch = self._scratch
        if scratch is None or scratch.size < n:
            scratch = self._scratch = np.empty(max(n, self.width))
        row = scratch[:n]
        row.fill(q)
        return float(_sum(row))

    def carbon_finite(self) -> bool:
        """True when every grid intensity is finite (then no grid power emits nothing:
        ``0 · c = 0``). The intensities never change: checked once."""
        if self._carbon_finite is None:
            self._carbon_finite = bool(np.isfinite(self.carbon).all())
        return self._carbon_finite

    def fits_green(self, site: int, window: slice, room_floor: FloatArray) -> bool:
        """:meth:`fits` for a load the green supply left covers in every slot of
        ``window`` (``q ≤ G``): its grid share is 0, so only the import left must not be
        below ``-1e-9`` (``0 > I + 1e-9`` exactly when ``I < -1e-9``) and the request
        within the free capacity: one comparison of the site's :attr:`room` with the
        job's ``room_floor`` (``-1e-9``, then ``request − 1e-9``, a column). The caller
        knows the green covers it."""
        return not np.count_nonzero(self.room[site, :, window] < room_floor)

    def delay_factor(self, n: int) -> FloatArray:
        """``delay_rate_column · (n·h)``, ``(sites, 1)``: the delay cost's factor of a
        window of ``n`` slots before its power and hours of delay, cached by ``n`` for the
        delay rate the ledger holds."""
        cache = self._factors
        if cache is None or cache[0] is not self.delay_rate_column:
            cache = self._factors = (self.delay_rate_column, {})
        factor = cache[1].get(n)
        if factor is None:
            factor = cache[1][n] = self.delay_rate_column * (n * self.h)
        return factor

    def commit(self, site: int, slots: np.ndarray, q: float, request: FloatArray | None
               ) -> tuple[float, float]:
        """Take green first, then grid import, and capacity (``None``: no request), for
        ``q`` kW over ``slots``. Returns what the job emits there against what was left
        before it, as :meth:`emissions` would: ``(grams, green fraction)``."""
        at = as_slots(slots)
        if isinstance(at, slice):  # a view of both green rows, indexed once
            both = self.green[site, :, at]
            low = self.green10[site, at]
            if low[low.argmin()] >= q and self.carbon_finite():
                # green covers it in every slot (P50 is never below P10): it takes q of
                # each, no grid, so the same arithmetic as below comes to this
                both -= q
                self.load[site, at] += q
                if request is not None:
                    self.capacity[site, :, at] -= request[:, None]
                energy = q * len(slots)
                return 0.0, self._sum_of(q, len(slots)) / energy if energy > 0 else 1.0
            used = np.minimum(q, both)  # min(q, G50) and min(q, G10) in one call
            u50 = used[0]
            grid = q - u50
            grams = float(grid.dot(self.carbon[site, at])) * self.h
            both -= used
        else:
            rows = self.green[site]
            used = np.minimum(q, rows[:, at])
            u50 = used[0]
            grid = q - u50
            grams = float(np.dot(grid, self.carbon[site, at])) * self.h
            rows[:, at] -= used
        energy = q * len(slots)
        share = float(_sum(u50)) / energy if energy > 0 else 1.0
        self.imports[site, at] -= grid
        self.load[site, at] += q
        if request is not None:
            self.capacity[site][:, at] -= request[:, None]
        return grams, share

    def release(self, site: int, slots: np.ndarray, q: float, request: FloatArray | None
                ) -> None:
        """Undo a :meth:`commit`: what is left is recomputed from the load, since
        green-first makes it ``max(G − L, 0)`` whatever the order jobs were added in."""
        at = as_slots(slots)
        self.load[site, at] -= q
        load = np.maximum(self.load[site, at], 0.0)
        used = np.minimum(load, self.supply50[site, at])
        self.green50[site, at] = np.maximum(self.supply50[site, at] - load, 0.0)
        self.green10[site, at] = np.maximum(self.supply10[site, at] - load, 0.0)
        self.imports[site, at] = (self.import_limit[site, at] - (load - used)
                                  - self.reserved[site, at])
        if request is not None:
            self.capacity[site][:, at] += request[:, None]

    def reserve(self, key: int, site: int, slots: np.ndarray, q: float,
                request: FloatArray | None) -> None:
        """Hold room for work expected to arrive, ``key`` its term: capacity, and the grid
        import ``q`` kW would need beyond the green supply left now (at most the import
        left), but none of the green supply, which goes to the jobs that exist."""
        at = as_slots(slots)
        need = np.clip(q - self.green50[site, at], 0.0, np.maximum(self.imports[site, at], 0.0))
        self.imports[site, at] -= need
        self.reserved[site, at] += need
        self.holds[key] = need
        if request is not None:
            self.capacity[site][:, at] -= request[:, None]

    def unreserve(self, key: int, site: int, slots: np.ndarray, request: FloatArray | None
                  ) -> None:
        """Undo :meth:`reserve` of ``key`` at the same site and slots."""
        at = as_slots(slots)
        need = self.holds.pop(key)
        self.imports[site, at] += need
        self.reserved[site, at] -= need
        if request is not None:
            self.capacity[site][:, at] += request[:, None]

    @property
    def used(self) -> FloatArray:
        """Green power taken at each site and slot: supply minus what is left, kW."""
        return np.maximum(self.supply50 - self.green50, 0.0)

    def emissions(self, site: int, slots: Slots, q: float) -> tuple[float, float]:
        """P50 emissions (g) and green fraction of ``q`` kW over ``slots`` at ``site``, now:
        ``Σ (q − min(q, G)) · c · h`` and ``Σ min(q, G) / (q · n)``."""
        at = slots if isinstance(slots, slice) else as_slots(slots)
        green = self.green50[site, at]
        if isinstance(at, slice) and green.size and green[green.argmin()] >= q and (
                self.carbon_finite()):  # all green: no grams, the share as summed below
            return 0.0, self._sum_of(q, green.size) / (q * green.size) if q > 0 else 1.0
        u = np.minimum(q, green)
        grams = float((q - u).dot(self.carbon[site, at])) * self.h
        energy = q * u.size
        return grams, float(_sum(u) / energy) if energy > 0 else 1.0


def _tariff(snap: Snapshot, pad: int) -> FloatArray:
    """Each site's tariff as grams per kWh of grid power (0 without one), padded: the
    choices' cost (``carbon_h``) adds it to carbon; the grams reported are carbon's."""
    out = np.zeros((len(snap.sites), snap.slots + pad))
    for i, site in enumerate(snap.sites):
        if site.tariff_g_per_kwh is not None:
            out[i, :snap.slots] = np.asarray(site.tariff_g_per_kwh, dtype=float)
    return out

"""Scores of (job, site, slot) choices: small pure functions, vectorised over sites × slots.

Notation: ``q`` is the job's facility power in kW (IT power × PUE) at each site, ``G`` the
green supply left at a site in a slot (kW), ``c`` the grid's carbon intensity (g/kWh),
``h`` the slot length in hours, ``n`` the job's length in slots. Every function takes
arrays shaped ``(sites, slots)`` (with ``q`` shaped ``(sites, 1)``) and loops over nothing.
"""

from __future__ import annotations

import numpy as np

from suandian.planner.model import FloatArray

__all__ = [
    "capacity_pressure",
    "cheapest_slots",
    "cheapest_sums",
    "delay_rate",
    "green_used",
    "infeasible_slots",
    "move_threshold",
    "slot_cost",
    "slot_emissions",
    "window_sums",
]

_EPS = 1e-9
_DIRECT_WINDOW = 4


def green_used(q: FloatArray, green: FloatArray) -> FloatArray:
    """Green power a job would take in each slot: ``u = min(q, G)`` (``G ≥ 0``).

    Green first: a load draws on the site's green supply before the grid, and never more
    than is left, so the same green kW is never counted for two jobs.
    """
    return np.minimum(q, green)


def slot_emissions(q: FloatArray, used: FloatArray, carbon: FloatArray, h: float) -> FloatArray:
    """Emissions of one slot, grams: ``e = (q - u) · c · h`` (grid fills what green does not)."""
    return (q - used) * carbon * h


def slot_cost(
    q: FloatArray,
    used_p50: FloatArray,
    used_p10: FloatArray,
    carbon_h: FloatArray,
    risk_aversion: float,
) -> FloatArray:
    """Risk-weighted emissions of one slot: ``(1-ρ)·e(P50) + ρ·e(P10)``, that is
    ``(q − ((1−ρ)·u50 + ρ·u10)) · c·h`` with ``carbon_h = c·h``.

    With ρ > 0 a window whose green supply only holds in the median forecast costs more
    than one whose pessimistic (P10) supply still covers the job.
    """
    if risk_aversion == 0.0:
        return (q - used_p50) * carbon_h
    used = used_p50 + risk_aversion * (used_p10 - used_p50)
    return (q - used) * carbon_h


def infeasible_slots(
    grid_kw: FloatArray,
    import_left_kw: FloatArray,
    capacity_left: FloatArray,
    request: FloatArray,
) -> FloatArray:
    """1.0 where a slot cannot take the job, else 0.0.

    A slot is infeasible when the grid share ``q - u`` exceeds the import left, or any
    resource request exceeds the free capacity: ``any_r(req_r > C_r,t)``.
    ``capacity_left`` is ``(sites, resources, slots)``, ``request`` is ``(resources,)``.
    """
    over_import = grid_kw > import_left_kw + _EPS
    over_capacity = np.any(capacity_left < request[None, :, None] - _EPS, axis=1)
    bad: FloatArray = (over_import | over_capacity).astype(np.float64)
    return bad


def move_threshold(held_cost: float, grams: float, share: float) -> float:
    """What a move must save to replace a decision a job already holds, grams:
    ``θ = max(θ_g, θ_s · max(e_held, 0))``, ``e_held`` the held decision's cost now.

    The held choice's cost is lowered by ``θ`` before the cheapest is taken, so another
    window (or site) wins only when it is cheaper by more than ``θ``; one that is no
    longer feasible loses anyway. Without it, ties and gram-sized differences reshuffle
    deferred jobs every round as the clock moves, each move three API writes and a
    different story told to the user.
    """
    return max(grams, share * max(held_cost, 0.0))


def delay_rate(carbon: FloatArray, green: FloatArray, pressure: FloatArray,
               share_per_h: float, grams_per_h: float) -> FloatArray:
    """Each site's delay cost, grams per kWh per hour of delay, ``(sites,)``:
    ``r_s = r_g + δ · w_s · (max_t c[s,t] − min_t c̃[s,t])`` with ``c̃ = 0`` where the
    site has green supply, else ``c``: ``δ`` (``share_per_h``) of the spread of what a
    kWh can cost there over the horizon, plus ``r_g`` (``grams_per_h``) absolute.
    ``w_s = 1`` at a site with green supply, else ``min(1, 4·p_s)``, ``p_s`` the
    pressure on its capacity (:func:`capacity_pressure`).

    Why a delay cost at all: planning online, what a job takes later is what jobs not
    yet submitted would have needed. Green supply is always finite, so waiting for it
    costs the jobs to come; on a grid-only site the grid's clean hours can take any
    number of jobs, and waiting deprives no one until capacity runs short. Without
    contention a job there takes its cleanest window, as per-job best-window does.
    Relative, not in absolute grams: 0.5 g/kWh per hour is noise on a 600 g grid and,
    over 8 hours, half the spread of a 50 g one.
    """
    dirty = carbon.max(axis=1)
    clean = np.where(green > 0, 0.0, carbon).min(axis=1)
    weight = np.where((green > 0).any(axis=1), 1.0, np.minimum(1.0, 4.0 * pressure))
    rate: FloatArray = grams_per_h + share_per_h * weight * np.maximum(dirty - clean, 0.0)
    return rate


def capacity_pressure(demand: FloatArray, capacity: FloatArray) -> FloatArray:
    """How much of each site's free capacity the waiting jobs ask for, ``(sites,)``:
    ``p_s = max_r D[s,r] / Σ_t C[s,r,t]``, ``D[s,r]`` the resource-slots the jobs that
    may run at ``s`` request (each job's ``request · n`` shared evenly among its allowed
    sites), ``C`` the free capacity ``(sites, resources, slots)`` (unbounded: 0)."""
    total = capacity.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(total) & (total > 0), demand / total, 0.0)
    ratio = np.where((total <= 0) & (demand > 0), np.inf, ratio)
    pressure: FloatArray = ratio.max(axis=1) if ratio.size else np.zeros(len(capacity))
    return pressure


def window_sums(per_slot: FloatArray, n: int, starts: int) -> FloatArray:
    """Sum over each window of ``n`` slots: ``W[s, k] = Σ_{t=k}^{k+n-1} x[s, t]``.

    Prefix sums make it O(slots) whatever ``n``: ``W = P[:, k+n] - P[:, k]`` with
    ``P = [0, cumsum(x)]``; ``starts`` windows are returned (``k = 0 .. starts-1``).
    A cumulative sum costs several times an elementwise add per cell (it cannot be
    vectorised across the slot axis), so short windows (``n ≤ 4``) add ``n`` shifted
    slices instead, left to right, as a plain loop would.
    """
    if n <= _DIRECT_WINDOW:
        out = per_slot[:, :starts].copy()
        for i in range(1, n):
            out += per_slot[:, i : i + starts]
        return out
    prefix = np.zeros((per_slot.shape[0], per_slot.shape[1] + 1))
    per_slot.cumsum(axis=1, out=prefix[:, 1:])  # the method: no Python wrapper
    return prefix[:, n : n + starts] - prefix[:, :starts]


def cheapest_slots(cost: FloatArray, n: int) -> tuple[FloatArray, np.ndarray]:
    """For an interruptible job: the ``n`` cheapest slots per site and their summed cost.

    ``cost`` is ``(sites, slots)`` with ``inf`` where a slot is infeasible; a site with fewer
    than ``n`` finite slots sums to ``inf``. Returns ``(sums (sites,), indices (sites, n))``.
    """
    idx = np.argpartition(cost, n - 1, axis=1)[:, :n]
    picked = np.take_along_axis(cost, idx, axis=1)
    return picked.sum(axis=1), idx


def cheapest_sums(cost: FloatArray, n: int) -> FloatArray:
    """The summed cost of each site's ``n`` cheapest slots, ``(sites,)``: the same sums as
    :func:`cheapest_slots` (same selection, same order of addition) without gathering
    their indices; take the chosen site's with :func:`cheapest_of_row`."""
    summed: FloatArray = np.partition(cost, n - 1, axis=1)[:, :n].sum(axis=1)
    return summed


def cheapest_of_row(row: FloatArray, n: int) -> np.ndarray:
    """Indices of the ``n`` cheapest slots of one site's costs (as :func:`cheapest_slots`
    selects them for that row)."""
    return np.argpartition(row, n - 1)[:n]

"""Decisions jobs already hold (:class:`~suandian.planner.model.Incumbent`): kept
unless moving saves more than the move threshold, or they no longer hold.

A full round re-plans every waiting job. Planned afresh, the greedy pass lets a job take
supply that another holds and pushes that one out, and ties or gram-sized differences
pick another window as the clock moves: decisions reshuffled with nothing changed, each
move three API writes and a different story told to the user. So, in :func:`plan`:

1. the jobs that must start now are decided first (the deadline guarantee);
2. :func:`hold` commits every other held decision that still fits;
3. the jobs holding nothing are planned around them (as an arrival round is);
4. each held job is taken out and decided again with all others in place, its held
   choice cheaper by the threshold (:func:`favour_held_window`, :func:`keep_held_slots`):
   it moves only when that saves more than ``max(θ_g, θ_s · its cost)``
   (:func:`~suandian.planner.scoring.move_threshold`).

The improvement passes use the same rule with each job's current place as its
incumbent, and stop when a pass moves nobody: the plan is then one that the next round,
with the same inputs and these decisions held, leaves as it is.
"""

from __future__ import annotations

import numpy as np

from suandian.planner import scoring
from suandian.planner.ledger import Ledger
from suandian.planner.model import FloatArray, PlanParams
from suandian.planner.terms import Terms, moved_g, sites_of

__all__ = ["favour_held_window", "held_row", "hold", "keep_held_slots", "runs", "set_cost"]


def hold(ledger: Ledger, pending: list[Terms], all_sites: np.ndarray
         ) -> dict[int, tuple[int, float]]:
    """Commit the decisions jobs hold that still fit, in order; ``{index: (site, kW)}``.

    The jobs without one are then planned around them (as an arrival round plans around
    the decisions handed out), and each held one is revisited with all others in place.
    Greedy in a fresh order instead would let a job take supply another holds and push
    that one out: decisions reshuffled although nothing but the clock moved.
    """
    out: dict[int, tuple[int, float]] = {}
    for t in pending:
        slots = t.held
        if slots is None or int(slots[0]) < t.earliest or int(slots[-1]) >= min(
                t.end, ledger.width):
            continue
        contiguous = int(slots[-1]) - int(slots[0]) + 1 == slots.size
        gaps_ok = t.demand.interruptible and t.demand.policy == "Optimize"
        if slots.size != t.n or not (contiguous or gaps_ok):
            continue  # the job is not the one that was planned (its spec changed)
        if int(slots[0]) > t.latest and not gaps_ok:
            continue  # past the latest start: it must move
        site = t.held_site
        if site not in sites_of(t, all_sites) or (
                t.data is not None and int(slots[0]) < int(t.data.first[site])):
            continue
        q = t.power_kw * float(ledger.pue[site])
        spans = [(int(slots[0]), int(slots[-1]) + 1)] if contiguous else runs(slots)
        if all(ledger.fits(site, a, b - a, q, t.request_floor) for a, b in spans):
            ledger.commit(site, slots, q, t.request if t.takes_capacity else None)
            out[t.index] = (site, q)
    return out


def runs(slots: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of sorted slot indices as ``[a, b)`` pairs."""
    breaks = np.flatnonzero(np.diff(slots) != 1) + 1
    return [(int(r[0]), int(r[-1]) + 1) for r in np.split(slots, breaks)]


def favour_held_window(cost: FloatArray, params: PlanParams, t: Terms, sites: np.ndarray,
                       first: int, last: int) -> None:
    """Lower the cost of the window the job holds by the move threshold (in place), if
    that window is still a candidate: same length, start within reach, an allowed site."""
    held = t.held
    assert held is not None
    k0 = int(held[0])
    if len(held) != t.n or int(held[-1]) - k0 != t.n - 1 or not first <= k0 <= last:
        return
    s = held_row(t, sites)
    if s is None or not np.isfinite(cost[s, k0 - first]):
        return
    c = float(cost[s, k0 - first])
    cost[s, k0 - first] = c - scoring.move_threshold(
        c, params.move_threshold_g, params.move_threshold_share)


def keep_held_slots(
    ledger: Ledger, params: PlanParams, t: Terms, sites: np.ndarray,
    choice: tuple[int | None, np.ndarray, bool, bool],
) -> tuple[int | None, np.ndarray, bool, bool]:
    """Interruptible job: the slots it holds instead of ``choice`` (its cheapest) when
    they still fit, meet its green floor and cost at most the move threshold more. The
    whole set against the whole set: a threshold spread over slots would let a mix of
    held and new slots win."""
    held, site = t.held, t.held_site
    if held is None or len(held) != t.n or int(held[0]) < t.earliest or int(
            held[-1]) >= min(t.end, ledger.width) or site not in sites or (
            t.data is not None and int(held[0]) < int(t.data.first[site])):
        return choice
    q = t.power_kw * float(ledger.pue[site])
    if not all(ledger.fits(site, a, b - a, q, t.request_floor) for a, b in runs(held)):
        return choice
    held_cost, held_green = set_cost(ledger, params, site, held, q)
    if held_green < t.demand.min_green_fraction - 1e-9:
        return choice
    if t.data is not None:
        held_cost += moved_g(t, ledger.carbon, site, int(held[0]))
    if choice[0] is not None:
        chosen_cost, _ = set_cost(ledger, params, choice[0], choice[1],
                                  t.power_kw * float(ledger.pue[choice[0]]))
        if t.data is not None:
            chosen_cost += moved_g(t, ledger.carbon, choice[0], int(choice[1][0]))
        if held_cost - scoring.move_threshold(held_cost, params.move_threshold_g,
                                              params.move_threshold_share) > chosen_cost:
            return choice
    return site, held, False, False


def set_cost(ledger: Ledger, params: PlanParams, site: int, slots: np.ndarray, q: float
             ) -> tuple[float, float]:
    """Risk-weighted cost (as the planner scores slots) and P50 green fraction of
    ``q`` kW over ``slots`` at ``site``, against what is left."""
    kw = np.full(slots.size, q)
    u50 = np.minimum(kw, ledger.green50[site, slots])
    u10 = np.minimum(kw, ledger.green10[site, slots])
    cost = scoring.slot_cost(kw, u50, u10, ledger.carbon_h[site, slots], params.risk_aversion)
    delay = ledger.delay_rate[site] * q * ledger.h * ledger.delay_h[slots]
    return float((cost + delay).sum()), float(u50.sum() / (q * slots.size)) if q > 0 else 1.0


def held_row(t: Terms, sites: np.ndarray) -> int | None:
    """The row of the incumbent's site among the job's candidate sites (None: not one)."""
    rows = np.flatnonzero(sites == t.held_site)
    return int(rows[0]) if rows.size else None

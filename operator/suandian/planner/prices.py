"""Priced construction: a start for contended rounds from the Lagrangian of the round.

The greedy pass places jobs one after another, each where it is cheapest given those
before it; when capacity binds, the order decides who gets the clean hours, and the
local searches after it (:func:`~suandian.planner.core._improve`, :mod:`.exchange`)
move one job, or one job and those in its way, at a time. On a contended grid-only site
(40 jobs a night for room for 10) that stopped at 95% of the proven optimum's saving
with every job known: the optimum hands the clean valley to a set of jobs that no
sequence of such moves reaches.

Prices find that set. The round's limits are relaxed into prices per site and slot —
``ν`` per kWh of energy (between 0 where green supply is left and the grid intensity
``c`` where it is not), ``μ`` per kWh over the import limit, ``λ_r`` per unit of each
resource — and each job alone takes its cheapest place at those prices:

    cost_j(s, W) = Σ_{t∈W} q_js·h·(ν_st + μ_st + r_s·d_t) + Σ_r req_jr·λ_srt

(``q_js`` its facility power at site ``s``, ``r_s·d_t`` the delay cost per kWh, as
:func:`~suandian.planner.scoring.delay_rate` sets it). The prices follow the
subgradient (over-used slots dearer, idle ones cheaper) with Polyak's step towards the
cost of the plan the greedy pass found. The dual value is a lower bound on what the
jobs can emit; on that site it came within 0.01% of the proven optimum.

The relaxed choices break the limits, so the prices are turned into a schedule by
**fixing**: after each block of iterations the jobs whose chosen cells are nowhere over a
limit are kept, their use taken from the limits, and the prices go on for the others;
the last ones are placed cheapest-at-the-prices first in least-slack order where they
fit. Decisions jobs hold from the last round are not priced: they stay held
(:func:`~suandian.planner.core._construct`), since prices found again each round would
move them with nothing changed.

Pure numpy, deterministic (a count of iterations, not a time), no state between rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from suandian.planner.ledger import Ledger
from suandian.planner.model import FloatArray, PlanParams
from suandian.planner.terms import Terms, sites_of

__all__ = ["MAX_CELLS", "Placement", "eligible", "priced_start"]

MAX_CELLS = 4_000_000
"""Jobs × sites × slots above which no prices are worked out (each step prices every
cell: at this size some 30 MB of arrays a step)."""
_BIG = 1e30  # an impossible cell's price (inf would turn sums into NaN)
_EPS = 1e-9

Placement = tuple[Terms, int, np.ndarray]
"""A job, the site and the slots the priced construction gives it."""


def eligible(t: Terms, width: int) -> bool:
    """Whether the prices place this job: an ``Optimize`` job not forced to start,
    without a green floor or data to move (their rules are the greedy pass's), with a
    window that starts within the ledger."""
    return (t.demand.policy == "Optimize" and not t.forced and t.demand.running_site is None
            and t.demand.min_green_fraction <= 0 and t.data is None
            and t.earliest + t.n <= width)


@dataclass
class _Jobs:
    """The eligible jobs as arrays: rows in the order given."""

    terms: list[Terms]
    q: FloatArray  # (J, S) facility kW at each site
    allowed: np.ndarray  # (J, S) bool
    req: FloatArray  # (J, B) resources on the binding rows, in units of their scale
    lo: np.ndarray  # (J,) first slot usable
    hi: np.ndarray  # (J,) slots usable end here (exclusive)
    last: np.ndarray  # (J,) latest start (contiguous jobs)
    n: np.ndarray  # (J,)
    interruptible: np.ndarray  # (J,) bool


def priced_start(ledger: Ledger, params: PlanParams, terms: Sequence[Terms],
                 all_sites: np.ndarray, target_g: float) -> list[Placement]:
    """Places for ``terms`` (each :func:`eligible`), in the order to commit them, against
    what ``ledger`` has left. ``target_g``: what a known plan makes them emit (the
    Polyak step's aim). Jobs the construction could not fit are left out: the greedy
    pass places them."""
    width = ledger.width
    placeable = [t for t in terms if eligible(t, width)]
    if not placeable or len(placeable) * ledger.green50.size > MAX_CELLS:
        return []
    jobs = _arrays(ledger, placeable, all_sites)
    n_sites = ledger.green50.shape[0]
    risk = params.risk_aversion
    green = ledger.green50 - risk * (ledger.green50 - ledger.green10)  # (S, W)
    head = ledger.green50 + np.maximum(ledger.imports, 0.0)  # load the import allows
    rows = _binding_rows(ledger)
    scale = _scales(ledger, rows)
    cap = ledger.capacity[:, rows, :] / scale[:, :, None]  # (S, B, W)
    ceiling = ledger.carbon  # ν never above the grid intensity (read only)
    delay = ledger.delay_rate[:, None] * ledger.delay_h[None, :] if ledger.delay_rate.any() \
        else np.zeros((n_sites, width))
    energy = float(np.mean(jobs.q[jobs.allowed])) * ledger.h  # kWh of a typical slot
    # every limit in units of itself (use over limit, times a typical job-slot's kWh),
    # so that no family of limits takes the whole step because its units are larger;
    # ν and μ are kept in g/kWh, their subgradients scaled alike
    typical = energy / ledger.h
    e_scale = np.maximum(green.max(axis=1, initial=0.0), typical)[:, None]  # (S, 1) kW
    i_scale = np.maximum(head.max(axis=1, initial=0.0), typical)[:, None]
    nu = np.where(green > 0, 0.0, ceiling)
    mu = np.zeros((n_sites, width))
    lam = np.zeros(cap.shape)
    todo = np.arange(len(jobs.terms))
    out: list[Placement] = []
    rounds = max(1, params.price_rounds)
    per_round = max(1, params.price_iterations // rounds)
    for _ in range(rounds):
        sub = _take(jobs, todo)
        step = 1.0
        site = cells = over = None
        for _ in range(per_round):
            site, cells, total = _choose(sub, nu, mu, lam, delay, ledger.h, energy)
            load, use = _usage(sub, site, cells, n_sites)
            dual = total - float((nu * green).sum() + (mu * head).sum()) * ledger.h \
                - float((lam * cap).sum()) * energy
            # in units of a price's own effect on the dual: ν·(L−G)·h = (ν·G_s·h/E)·g
            g_nu = (load - green) / e_scale * energy
            g_mu = (load - head) / i_scale * energy
            g_lam = (use - cap) * energy
            g_nu[((nu <= 0) & (g_nu < 0)) | ((nu >= ceiling) & (g_nu > 0))] = 0.0
            g_mu[(mu <= 0) & (g_mu < 0)] = 0.0
            g_lam[(lam <= 0) & (g_lam < 0)] = 0.0
            norm = float((g_nu ** 2).sum() + (g_mu ** 2).sum() + (g_lam ** 2).sum())
            over = (use > cap + _EPS).any(axis=1) | (load > head + _EPS)
            if norm <= 0 or not over.any():
                break
            gap = max(target_g - dual, 1e-3 * abs(target_g), 1e-6)
            alpha = step * gap / norm
            step *= 0.98
            to_grams = energy / (e_scale * ledger.h)  # a scaled step, back in g/kWh
            nu = np.clip(nu + alpha * g_nu * to_grams, 0.0, ceiling)
            mu = np.maximum(mu + alpha * g_mu * energy / (i_scale * ledger.h), 0.0)
            lam = np.maximum(lam + alpha * g_lam, 0.0)
        assert site is not None
        assert cells is not None
        assert over is not None
        clash = (over[site] & cells).any(axis=1)
        free: list[int] = [int(i) for i in np.flatnonzero(~clash)]
        if not free:  # every choice meets another: the one that fits and weighs most
            fit = [i for i in range(site.size) if _fits_left(
                sub, i, int(site[i]), np.flatnonzero(cells[i]), cap, head)]
            if not fit:
                break
            free = [max(fit, key=lambda i: (float(sub.q[i, site[i]]) * int(sub.n[i]), -i))]
        for i in free:
            s, slots = int(site[i]), np.flatnonzero(cells[i])
            j = int(todo[i])
            out.append((jobs.terms[j], s, slots))
            q = jobs.q[j, s]
            green[s, slots] -= q
            head[s, slots] -= q
            cap[s, :, slots] -= jobs.req[j, s]
            target_g -= q * ledger.h * float(ledger.carbon[s, slots].sum())
        kept = np.ones(todo.size, dtype=bool)
        kept[free] = False
        todo = todo[kept]
        if not todo.size:
            return out
    out.extend(_fill(jobs, todo, nu, mu, lam, delay, ledger.h, energy, cap, head))
    return out


def _arrays(ledger: Ledger, kept: list[Terms], all_sites: np.ndarray) -> _Jobs:
    """The jobs as arrays, in the order given."""
    width = ledger.width
    n_sites = ledger.green50.shape[0]
    rows = _binding_rows(ledger)
    scale = _scales(ledger, rows)
    count = len(kept)
    q = np.zeros((count, n_sites))
    allowed = np.zeros((count, n_sites), dtype=bool)
    req = np.zeros((count, n_sites, rows.size))
    for i, t in enumerate(kept):
        allowed[i, sites_of(t, all_sites)] = True
        q[i] = t.power_kw * ledger.pue
        req[i] = t.request[rows][None, :] / scale
    n = np.array([t.n for t in kept], dtype=int)
    lo = np.array([t.earliest for t in kept], dtype=int)
    hi = np.minimum(np.array([t.end for t in kept], dtype=int), width)
    last = np.minimum(np.array([t.latest for t in kept], dtype=int), hi - n)
    return _Jobs(kept, q, allowed, req, lo, hi, np.maximum(last, lo), n,
                 np.array([t.demand.interruptible for t in kept], dtype=bool))


def _binding_rows(ledger: Ledger) -> np.ndarray:
    """The resources with a finite capacity somewhere (an infinite one never binds)."""
    finite = np.isfinite(ledger.capacity).all(axis=(0, 2))
    return np.flatnonzero(finite)


def _scales(ledger: Ledger, rows: np.ndarray) -> FloatArray:
    """Each site's capacity of each binding resource, its unit (1 where there is none)."""
    top = ledger.capacity[:, rows, :].max(axis=2) if rows.size else np.zeros(
        (ledger.capacity.shape[0], 0))
    return np.where(top > 0, top, 1.0)


def _take(jobs: _Jobs, idx: np.ndarray) -> _Jobs:
    return _Jobs([jobs.terms[int(i)] for i in idx], jobs.q[idx], jobs.allowed[idx],
                 jobs.req[idx], jobs.lo[idx], jobs.hi[idx], jobs.last[idx], jobs.n[idx],
                 jobs.interruptible[idx])


def _cell_prices(jobs: _Jobs, nu: FloatArray, mu: FloatArray, lam: FloatArray,
                 delay: FloatArray, h: float, energy: float) -> tuple[FloatArray, np.ndarray]:
    """``(J, S, W)``: each job's price of each site and slot (0 where it may not run),
    and where it may not (outside its window, at a site it may not use)."""
    per_kwh = (nu + mu + delay) * h  # (S, W)
    price = jobs.q[:, :, None] * per_kwh[None] + np.einsum(
        "jsb,sbw->jsw", jobs.req, lam) * energy
    width = nu.shape[1]
    slot = np.arange(width)[None, None, :]
    barred = (slot < jobs.lo[:, None, None]) | (slot >= jobs.hi[:, None, None]) | (
        ~jobs.allowed[:, :, None])
    price[barred] = 0.0
    return price, barred


def _windows(price: FloatArray, barred: np.ndarray, n: int, lo: np.ndarray,
             last: np.ndarray) -> FloatArray:
    """``(G, S, starts)``: the price of every window of ``n`` slots of the rows given,
    :data:`_BIG` for one that starts outside ``[lo, last]`` or meets a barred cell.
    Sums are differences of running sums of finite prices only (a running sum through
    a huge value would lose every digit after it)."""
    zero = np.zeros((*price.shape[:-1], 1))
    cs = np.concatenate([zero, np.cumsum(price, axis=-1)], axis=-1)
    cb = np.concatenate([zero, np.cumsum(barred, axis=-1)], axis=-1)
    win = cs[..., n:] - cs[..., :-n]
    start = np.arange(win.shape[-1])
    bad = (cb[..., n:] - cb[..., :-n] > 0) | (
        (start < lo[:, None]) | (start > last[:, None]))[:, None, :]
    return np.where(bad, _BIG, win)


def _choose(jobs: _Jobs, nu: FloatArray, mu: FloatArray, lam: FloatArray,
            delay: FloatArray, h: float, energy: float
            ) -> tuple[np.ndarray, np.ndarray, float]:
    """Each job's cheapest place at the prices, as its site ``(J,)`` and its slots
    ``(J, W)`` (a mask), and the sum of their prices."""
    price, barred = _cell_prices(jobs, nu, mu, lam, delay, h, energy)
    count, width = len(jobs.terms), price.shape[2]
    site = np.zeros(count, dtype=int)
    cells = np.zeros((count, width), dtype=bool)
    total = 0.0
    slot = np.arange(width)
    for split in (False, True):
        kind = np.flatnonzero(jobs.interruptible == split)
        for n in np.unique(jobs.n[kind]):
            group = kind[jobs.n[kind] == n]
            rows = np.arange(group.size)
            if split:  # the n cheapest slots at each site
                row = np.where(barred[group], _BIG, price[group])
                order = np.argsort(row, axis=2, kind="stable")[:, :, :n]  # (G, S, n)
                cost = np.take_along_axis(row, order, axis=2).sum(axis=2)  # (G, S)
                best_site = cost.argmin(axis=1)
                chosen = np.zeros((group.size, width), dtype=bool)
                np.put_along_axis(chosen, order[rows, best_site], True, axis=1)
                cells[group] = chosen
                site[group] = best_site
                total += float(cost[rows, best_site].sum())
            else:  # the cheapest window
                win = _windows(price[group], barred[group], int(n), jobs.lo[group],
                               jobs.last[group])
                flat = win.reshape(group.size, -1).argmin(axis=1)
                sites, starts = np.divmod(flat, win.shape[2])
                site[group] = sites
                cells[group] = (slot >= starts[:, None]) & (slot < starts[:, None] + n)
                total += float(win.reshape(group.size, -1)[rows, flat].sum())
    return site, cells, total


def _usage(jobs: _Jobs, site: np.ndarray, cells: np.ndarray, n_sites: int
           ) -> tuple[FloatArray, FloatArray]:
    """The load ``(S, W)`` kW and the resource use ``(S, B, W)`` (in units of the
    scale) the places add up to."""
    at = np.zeros((site.size, n_sites))
    at[np.arange(site.size), site] = 1.0
    mask = cells.astype(float)
    load = np.einsum("js,jw->sw", at * jobs.q, mask)
    use = np.einsum("js,jsb,jw->sbw", at, jobs.req, mask)
    return load, use


def _fits_left(jobs: _Jobs, i: int, s: int, slots: np.ndarray, cap: FloatArray,
               head: FloatArray) -> bool:
    """Whether job ``i``'s place fits the capacity and import left."""
    return bool((cap[s][:, slots] >= jobs.req[i, s][:, None] - _EPS).all()
                and (head[s, slots] >= jobs.q[i, s] - _EPS).all())


def _fill(jobs: _Jobs, todo: np.ndarray, nu: FloatArray, mu: FloatArray, lam: FloatArray,
          delay: FloatArray, h: float, energy: float, cap: FloatArray, head: FloatArray
          ) -> list[Placement]:
    """The jobs fixing left, those that cannot be split first, then least slack first
    (the most constrained take their places while there are some), each at its
    cheapest place at the prices among those that fit what is left; one that fits
    nowhere is left to the greedy pass."""
    out: list[Placement] = []
    sub = _take(jobs, todo)
    price, barred = _cell_prices(sub, nu, mu, lam, delay, h, energy)
    slack = sub.hi - sub.lo - sub.n
    for i in np.lexsort((np.arange(todo.size), slack, sub.interruptible)):
        j = int(todo[i])
        full = barred[i] | (cap < jobs.req[j][:, :, None] - _EPS).any(axis=1) | (
            head < jobs.q[j][:, None] - _EPS)
        n = int(jobs.n[j])
        if jobs.interruptible[j]:
            row = np.where(full, _BIG, price[i])
            order = np.argsort(row, axis=1, kind="stable")[:, :n]
            sums = np.take_along_axis(row, order, axis=1).sum(axis=1)
            s = int(np.argmin(sums))
            if sums[s] >= _BIG:
                continue
            slots = np.sort(order[s])
        else:
            win = _windows(price[i][None], full[None], n, jobs.lo[j:j + 1],
                           jobs.last[j:j + 1])[0]
            s, k = divmod(int(win.argmin()), win.shape[1])
            if win[s, k] >= _BIG:
                continue
            slots = np.arange(k, k + n)
        out.append((jobs.terms[j], s, slots))
        cap[s, :, slots] -= jobs.req[j, s]
        head[s, slots] -= jobs.q[j, s]
    return out

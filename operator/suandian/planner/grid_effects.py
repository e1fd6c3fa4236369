"""What answering the grid does to carbon and to the bill, job by job, shared out among
the requests that moved each job.

Against the plan without requests (``U``) the answered plan (``A``) moves some jobs; for
each moved job ``j`` at site ``s`` with facility energy ``e`` per slot it runs:

    moved_g[j]    = E_A(j) − E_U(j)        the decisions' expected emissions, grams
    cost_P(j)     = Σ_{k ∈ slots_P(j)} e · p[s, k] · I_P[s, k] / L_P[s, k]
    moved_cost[j] = cost_A(j) − cost_U(j)  in the tariffs' currency

``p``: the tariffs' price per kWh of grid power (the Price requests', summed where they
overlap); ``I_P / L_P``: the share of the site's load that plan imports in that slot, so
a job pays for the grid power in proportion to its draw. Above 0 answering costs, below
0 it saves (an absorb saves carbon; a tariff saves money).

A job moved while ``n`` answered requests touch its sites (the one it left or the one it
went to) counts ``1/n`` of its effect to each: a job that two events move together (a
shed and a tariff at one site, or an event's two sites as it moves between them) is not
counted twice. (A knock-on move, a job pushed between two sites no answered request
touches, is in no request's effect.)

An answer has cost figures only when a job it moved runs, or would have run, at a site
with a tariff; with tariffs in more than one currency in a round there is no one bill:
none at all (``AskAnswer.currency`` None). Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from suandian.planner.model import FloatArray, JobDecision, Plan, Snapshot

if TYPE_CHECKING:
    from suandian.planner.grid import AskAnswer, GridAsk

__all__ = ["attribute", "job_cost", "tariffs_per_kwh"]


def tariffs_per_kwh(snap: Snapshot, asks: Sequence[GridAsk]) -> dict[int, FloatArray]:
    """The Price requests' prices per kWh by site, per slot of ``snap`` (0 outside their
    periods; a slot a period touches counts whole, as a window does)."""
    out: dict[int, FloatArray] = {}
    for ask in asks:
        if ask.tariff is None or ask.window(snap).start >= ask.window(snap).stop:
            continue
        prices = out.setdefault(ask.site, np.zeros(snap.slots))
        for begin, end, price in ask.tariff:
            period = replace(ask, tariff=None, absorb_kw=0.0, start=begin, end=end)
            prices[period.window(snap)] += price
    return out


def job_cost(result: Plan, decision: JobDecision, prices: dict[int, FloatArray]) -> float:
    """What a decision's grid power costs under ``prices`` (the module doc's
    ``cost_P``); 0 at a site without a tariff, or undecided."""
    site = decision.site_index
    if site is None or site not in prices or not decision.slots:
        return 0.0
    slots = np.asarray(decision.slots)
    slots = slots[slots < result.load_kw.shape[1]]
    load = result.load_kw[site, slots]
    imported = np.maximum(load - result.green_used_kw[site, slots], 0.0)
    share = np.divide(imported, load, out=np.zeros_like(load), where=load > 0)
    per_slot = decision.energy_kwh / len(decision.slots)
    return float((per_slot * share * prices[site][slots]).sum())


def attribute(answers: Sequence[AskAnswer], baseline: Plan, result: Plan,
              prices: dict[int, FloatArray], currency: str | None) -> list[AskAnswer]:
    """``answers`` with each accepted one's ``moved_g`` and ``moved_cost`` shared out
    (the module doc); a declined answer moved nothing. ``currency``: the tariffs' one
    currency (None: no cost figures); an answer none of whose jobs touch a tariffed
    site has none either."""
    counts = Counter(k for a in answers if a.accepted for k in a.moved_g)
    before, after = baseline.by_key, result.by_key
    out = []
    for a in answers:
        if not a.accepted:
            out.append(replace(a, moved_g={}, moved_cost={}, currency=None))
            continue
        grams = {k: g / counts[k] for k, g in a.moved_g.items()}
        priced = currency is not None and any(
            d.site_index in prices for k in a.moved_g for d in (before[k], after[k]))
        cost = {} if not priced else {
            k: (job_cost(result, after[k], prices) - job_cost(baseline, before[k], prices))
            / counts[k] for k in a.moved_g}
        out.append(replace(a, moved_g=grams, moved_cost=cost,
                           currency=currency if priced else None))
    return out

"""A GridEvent's ``status`` from the plan's answers and the measured load: a pure builder.

The planner answers each request per site (:class:`~suandian.planner.grid.AskAnswer`,
its arrays per slot of a round's grid); an event sums its sites slot by slot:

    asked_k     = Σ_sites asked_kw        committed_k = Σ_sites committed_kw
    committedKW = min_k committed_k       shortfallKW = Σ_sites shortfall_kw

Delivery is measured from the site's compute power (what runs there, by the operator's
account, times the PUE) against its green supply now, whenever the controller looks:

    shed:    delivered = max(0, B − max(0, load − green))   B: the plan's baseline now
    absorb:  delivered = min(P, max(0, load − green))          (green: the site's own)

kept as ``deliveringKW`` and integrated from its moment (``measuredAt``) to the next
one into ``deliveredKWh`` and each slot's time-weighted mean ``deliveredKW``. So a
restart resumes the count from the status: the time it was down counts at the rate
measured last. ``compliance = Σ_k min(delivered_k, asked_k) / Σ_k asked_k`` over the slots
measured so far. ``emissionsEffectGrams`` and ``costEffect`` are the plan's expectation
of what answering costs in carbon and in money (:func:`emissions_effect_g`,
:func:`cost_effect`), ``effect`` the two for people; ``deadlineMisses`` counts the jobs
the event moved that missed their deadline, as the caller found them (it never goes
down: a restart that no longer knows a job keeps the count written).

The phase: ``Pending`` until a round answers (or while no site is known); ``Completed``
from ``end``; ``Declined`` when the plan declined it; ``Active`` from ``start``; else
``Accepted``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from suandian.api import GridEvent
from suandian.api.gridevent import EventPhase
from suandian.gridasks import site_of
from suandian.k8s.decision import format_time, time_of
from suandian.k8s.status import with_condition
from suandian.planner.grid import TOLERANCE_KW, AskAnswer, met_reason
from suandian.planner.reasons import format_grams

__all__ = ["AFFECTED_LIMIT", "asked_text", "cost_effect", "effect_text", "emissions_effect_g",
           "event_status", "measured_kw", "phase_of"]

AFFECTED_LIMIT = 50
"""Jobs named in ``status.affectedJobs`` at most (``jobsAffected`` counts them all)."""


def asked_text(event: GridEvent) -> str:
    """The request for people: ``≤ 2,000 kW``, ``-1,500 kW``, ``-75%``, ``+20,000 kW``,
    ``3 periods``."""
    spec = event.spec
    if spec.shed is not None:
        if spec.shed.ceiling_kw is not None:
            return f"≤ {spec.shed.ceiling_kw:,.0f} kW"
        if spec.shed.reduction_percent is not None:
            return f"-{spec.shed.reduction_percent:g}%"
        return f"-{spec.shed.reduction_kw or 0:,.0f} kW"
    if spec.absorb is not None:
        return f"+{spec.absorb.power_kw:,.0f} kW"
    periods = len(spec.prices.periods) if spec.prices is not None else 0
    return f"{periods} period{'s' * (periods != 1)}"


def measured_kw(answer: AskAnswer, load_kw: float, green_kw: float, at: int) -> float:
    """What one site delivers now against its request (the module doc's formula), now
    being slot ``at`` of the answer's window."""
    imported = max(0.0, load_kw - green_kw)
    if answer.ask.absorb_kw is not None:
        return min(answer.ask.absorb_kw, imported)
    if not 0 <= at < len(answer.baseline_kw):
        return 0.0
    return max(0.0, float(answer.baseline_kw[at]) - imported)


def phase_of(event: GridEvent, answers: Sequence[AskAnswer], now: datetime) -> EventPhase:
    spec = event.spec
    if now >= spec.end:
        return EventPhase.COMPLETED
    if not answers:
        return EventPhase.PENDING
    if any(not a.accepted for a in answers):
        return EventPhase.DECLINED
    return EventPhase.ACTIVE if now >= spec.start else EventPhase.ACCEPTED


def event_status(event: GridEvent, answers: Mapping[str, AskAnswer], *, now: datetime,
                 slot0: datetime | None, slot: timedelta, known_sites: Collection[str],
                 delivered_kw: float | None, previous: Mapping[str, Any],
                 job_name: Callable[[str], str] = str, deadline_misses: int = 0
                 ) -> dict[str, Any]:
    """The status to write (see the module doc). ``answers``: the last full round's, by
    site, for this event's sites; ``slot0``: the start of that round's slot 0;
    ``delivered_kw``: measured now, summed over the sites (None: not measured now);
    ``job_name``: a planning key as people know the job (``namespace/name``);
    ``deadline_misses``: how many of the jobs the event moved missed their deadline."""
    spec, generation = event.spec, event.metadata.generation
    mine = [answers[s] for s in spec.sites if s in answers]
    unknown = [s for s in spec.sites if s not in known_sites]
    phase = phase_of(event, mine, now)
    slots = _slots(mine, slot0, slot, previous.get("slots") or [], now)
    status: dict[str, Any] = {"phase": phase.value, "asked": asked_text(event),
                              "observedGeneration": generation}
    if mine:
        shortfall = sum(a.shortfall_kw for a in mine)
        ahead = [s["committedKW"] for s in slots
                 if (time_of(s["start"]) or now) + slot > now]
        committed = ahead or [s["committedKW"] for s in slots]
        status["committedKW"] = round(min(committed), 1) if committed else 0.0
        status["shortfallKW"] = round(shortfall, 1)
        status["committed"] = ("declined" if phase is EventPhase.DECLINED else
                               "priced in" if spec.prices is not None else
                               f"{shortfall:,.0f} kW short" if shortfall > TOLERANCE_KW
                               else f"{status['committedKW']:,.0f} kW")
        # what the rounds since moved too: a later round's plan holds them where the
        # first put them, and its baseline with them (nothing moves against it)
        jobs = sorted({job_name(j) for a in mine for j in a.jobs}
                      | set(previous.get("affectedJobs") or []))
        status["jobsAffected"] = max(len(jobs), int(previous.get("jobsAffected") or 0))
        status["affectedJobs"] = jobs[:AFFECTED_LIMIT]
        effect = emissions_effect_g(mine, previous)
        if effect is not None:
            status["emissionsEffectGrams"] = effect
        cost, currency = cost_effect(mine, previous)
        if cost is not None:
            status["costEffect"], status["currency"] = cost, currency
        if effect is not None or cost is not None:
            status["effect"] = effect_text(effect, cost, currency)
        if phase is not EventPhase.DECLINED and shortfall <= TOLERANCE_KW and spec.shed:
            status["reason"] = met_reason(status["jobsAffected"])
        elif spec.prices is not None:
            status["reason"] = (f"priced in: {status['jobsAffected']} job(s) moved to "
                                "cheaper hours")
        else:  # each site's own: how far short, and why
            status["reason"] = "; ".join(f"{site_of(a.ask.key)}: {a.reason}"
                                         for a in mine)
    elif unknown:
        status["reason"] = f"no PowerSite named {', '.join(unknown)} yet: nothing planned"
    misses = max(deadline_misses, int(previous.get("deadlineMisses") or 0))
    if mine or misses or "deadlineMisses" in previous:  # (a miss may come after the end)
        status["deadlineMisses"] = misses

    status.update(_delivery(previous, slots, slot, now, delivered_kw, spec.start, spec.end))
    status["slots"] = slots
    conditions = previous.get("conditions")
    if mine:
        met = phase is not EventPhase.DECLINED
        conditions = with_condition(conditions, "Accepted", met,
                                    ("Met" if not status["shortfallKW"] else "Short") if met
                                    else "Declined", status["reason"], now, generation)
    conditions = with_condition(conditions, "SitesKnown", not unknown,
                                "Unknown" if unknown else "Known",
                                f"no PowerSite named {', '.join(unknown)}" if unknown else
                                "every site is a PowerSite", now, generation)
    if status.get("compliance") is not None and phase is EventPhase.ACTIVE:
        ok = status["compliance"] >= DELIVERING
        conditions = with_condition(conditions, "Delivering", ok,
                                    "Delivering" if ok else "Behind",
                                    f"delivered {status['delivered']} of what was asked so far",
                                    now, generation)
    status["conditions"] = conditions
    return status


DELIVERING = 0.9
"""Compliance so far under this is ``Delivering=False`` (reason ``Behind``)."""


def emissions_effect_g(answers: Sequence[AskAnswer], previous: Mapping[str, Any]
                       ) -> float | None:
    """What answering costs in carbon, as the plan expects it: the sum over the event's
    sites of each moved job's expected grams answered less unanswered
    (``AskAnswer.moved_g``; below 0 it saves carbon, as an absorb does). A round that
    moves nothing keeps the last estimate: its plan without requests already holds the
    jobs where the event put them, so it sees no move. None before any job moved."""
    moved = [g for a in answers if a.accepted for g in a.moved_g.values()]
    if moved:
        return round(float(sum(moved)), 1)
    last = previous.get("emissionsEffectGrams")
    return None if last is None else float(last)


def cost_effect(answers: Sequence[AskAnswer], previous: Mapping[str, Any]
                ) -> tuple[float | None, str | None]:
    """What answering costs in money, as the plan expects it, and its currency: the sum
    over the event's sites of each moved job's grid power at the tariffs, answered less
    unanswered (``AskAnswer.moved_cost``); as :func:`emissions_effect_g`, a round that
    moves nothing keeps the last estimate. (None, None) without a tariff. (One round's
    answers carry one currency or none: :func:`~suandian.planner.grid_effects.attribute`.)"""
    priced = [a for a in answers if a.accepted and a.currency is not None and a.moved_cost]
    if priced:
        return round(float(sum(c for a in priced for c in a.moved_cost.values())), 2), \
            priced[0].currency
    last, unit = previous.get("costEffect"), previous.get("currency")
    return (None, None) if last is None or unit is None else (float(last), str(unit))


def effect_text(grams: float | None, cost: float | None, currency: str | None) -> str:
    """The effects for people: ``+80 kgCO2, -180.00 CNY`` (a sign on each: above 0
    answering costs)."""
    parts = []
    if grams is not None:
        parts.append(("+" if grams > 0 else "") + format_grams(grams))
    if cost is not None:
        parts.append(f"{cost:+,.2f} {currency}")
    return ", ".join(parts)


def _slots(answers: Sequence[AskAnswer], slot0: datetime | None, slot: timedelta,
           previous: Sequence[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Each slot of the window, summed over the sites: a slot past now as the status has
    it (with its measurement), the others as the last answer plans them (with what was
    measured of the slot holding now)."""
    kept = {str(s["start"]): dict(s) for s in previous}
    fresh: dict[str, dict[str, Any]] = {}
    for a in answers if slot0 is not None else ():
        assert slot0 is not None
        for i in range(a.window.stop - a.window.start):
            start = format_time(slot0 + slot * (a.window.start + i))
            entry = fresh.setdefault(start, {"start": start, "askedKW": 0.0,
                                             "committedKW": 0.0})
            entry["askedKW"] += float(a.asked_kw[i])
            entry["committedKW"] += float(a.committed_kw[i])
    for start, entry in fresh.items():
        old = kept.get(start)
        if old is not None and (time_of(start) or now) + slot <= now:
            continue  # past: as it was
        new: dict[str, Any] = {"start": start, "askedKW": round(entry["askedKW"], 1),
                               "committedKW": round(entry["committedKW"], 1)}
        if old is not None and "deliveredKW" in old:
            new["deliveredKW"] = old["deliveredKW"]
        kept[start] = new
    return [kept[k] for k in sorted(kept)]


def _delivery(previous: Mapping[str, Any], slots: list[dict[str, Any]], slot: timedelta,
              now: datetime, delivered_kw: float | None, start: datetime, end: datetime
              ) -> dict[str, Any]:
    """``deliveredKWh``, ``measuredAt``, ``deliveringKW``, each slot's ``deliveredKW``,
    ``compliance`` and ``delivered`` (the module doc's integration): the time since the
    last measurement (or ``start``) to now (or ``end``) counts at the rate measured then
    (``deliveringKW``; the first, at the rate measured now)."""
    out: dict[str, Any] = {k: previous[k] for k in ("deliveredKWh", "measuredAt")
                           if previous.get(k) is not None}
    since = max(time_of(previous.get("measuredAt")) or start, start)
    until = min(now, end)
    rate = previous.get("deliveringKW")
    rate = float(rate) if rate is not None else delivered_kw
    if rate is not None and since < until:
        hours = (until - since).total_seconds() / 3600
        out["deliveredKWh"] = round(float(previous.get("deliveredKWh") or 0.0)
                                    + rate * hours, 3)
        out["measuredAt"] = format_time(until)
        for s in slots:
            begin = time_of(s["start"])
            if begin is None:
                continue
            close = begin + slot
            had = max(0.0, (min(since, close) - begin).total_seconds())  # measured before
            new = max(0.0, (min(until, close) - max(since, begin)).total_seconds())
            if new > 0:
                s["deliveredKW"] = round((float(s.get("deliveredKW") or 0.0) * had
                                          + rate * new) / (had + new), 1)
    if delivered_kw is not None and start <= now < end:
        out["deliveringKW"] = round(delivered_kw, 1)
        out.setdefault("measuredAt", format_time(now))
        out.setdefault("deliveredKWh", 0.0)
    measured = [s for s in slots if s.get("deliveredKW") is not None and s.get("askedKW")]
    asked = sum(float(s["askedKW"]) for s in measured)
    if asked > 0:
        compliance = sum(min(float(s["deliveredKW"]), float(s["askedKW"])) for s in measured
                         ) / asked
        out["compliance"] = round(compliance, 3)
        out["delivered"] = f"{compliance:.0%}"
    return out

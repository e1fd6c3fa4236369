"""GridEvent controller: the grid's requests into planning, the plan's answers into status.

- A watch handler parses each GridEvent (an invalid one gets ``Accepted=False``,
  reason ``InvalidSpec``, and a warning event, and is planned against not at all), keeps
  the valid ones in the :class:`~.gridbook.GridBook` that planning rounds read
  (``PlanningService.grid_asks``), and asks for a full round when one comes, changes or
  goes: every waiting job may move for it.
- A daemon per GridEvent (kopf stops it on a standby replica) writes the status
  (:func:`~suandian.k8s.gridstatus.event_status`) after each full round that answered it,
  at its start and end, and every :data:`MEASURE_EVERY` while it is on (delivery is
  measured then), and posts an event when its phase or its shortfall changes: the team
  hears before the window opens that a mandatory shed will fall short, and why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import kopf

from suandian import metrics
from suandian.api import GridEvent, parse_gridevent
from suandian.controllers.clock import first_of
from suandian.controllers.computejob import key_of
from suandian.controllers.context import Context, memo_context
from suandian.errors import InvalidSpecError, KubeApiError
from suandian.gridasks import ask_key
from suandian.k8s import events
from suandian.k8s.gridstatus import event_status, measured_kw
from suandian.k8s.status import with_condition
from suandian.metrics import SiteFigures
from suandian.planner.grid import TOLERANCE_KW, AskAnswer

__all__ = ["MEASURE_EVERY", "answers_for", "register", "site_figures"]

log = logging.getLogger(__name__)

MEASURE_EVERY = timedelta(minutes=5)
"""How often delivery is measured (and the status written) while an event is on."""


def answers_for(ctx: Context, event: GridEvent) -> dict[str, AskAnswer]:
    """The last full round's answers to the event, by site."""
    name = event.metadata.name or ""
    found = {s: ctx.planning.answers.get(ask_key(name, s)) for s in event.spec.sites}
    return {s: a for s, a in found.items() if a is not None}


def site_figures(ctx: Context, answers: Mapping[str, AskAnswer], now: datetime
                 ) -> dict[str, SiteFigures]:
    """Each site's request now: asked, committed, delivered (measured: the module doc of
    :mod:`~suandian.k8s.gridstatus`) and the shortfall, kW; only the sites whose answer
    holds the slot of now (none before the window opens or after it closes)."""
    grid = ctx.planning.answer_grid
    if grid is None:
        return {}
    slot0, slot = grid
    k = int((now - slot0) // slot)
    out = {}
    for site, answer in answers.items():
        entry = ctx.sites.get(site)
        at = k - answer.window.start
        if entry is None or not 0 <= at < answer.window.stop - answer.window.start or (
                now < answer.ask.start or now >= answer.ask.end):
            continue
        forecast = entry.forecast
        i = forecast.grid.index_of(now)
        green = forecast.green_total_kw + forecast.storage_kw
        green_kw = float(green[i]) if 0 <= i < len(green) else 0.0
        load_kw = ctx.planning.running_power_kw(site) * entry.site.spec.pue
        out[site] = SiteFigures(
            asked_kw=float(answer.asked_kw[at]), committed_kw=float(answer.committed_kw[at]),
            delivered_kw=measured_kw(answer, load_kw, green_kw, at),
            shortfall_kw=answer.shortfall_kw)
    return out


def register(registry: kopf.OperatorRegistry) -> None:
    """Add the GridEvent handlers to ``registry``."""

    @kopf.on.event("suandian.io", "v1alpha1", "gridevents", registry=registry)
    async def gridevent_changed(name: str, memo: kopf.Memo, type: str | None,
                                body: kopf.Body, **_: Any) -> None:
        ctx = memo_context(memo)
        ctx.handling(listed=type is None)
        if type == "DELETED":
            ctx.grid.delivering.pop(name, None)
            ctx.grid.written.pop(name, None)
            ctx.grid.affected.pop(name, None)
            if ctx.grid.events.pop(name, None) is not None:
                ctx.planning.replan()
            metrics.record_grid_event_removed(name)
            return
        raw = dict(body)
        try:
            event = parse_gridevent(raw)
        except InvalidSpecError as exc:
            if ctx.grid.events.pop(name, None) is not None:
                ctx.planning.replan()
            await _refuse(ctx, raw, name, exc)
            return
        old = ctx.grid.events.get(name)
        if old is None or old.spec != event.spec:  # not our own status writes
            ctx.grid.events[name] = event
            ctx.planning.replan()
            ctx.wake(f"gev/{name}")

    @kopf.daemon("suandian.io", "v1alpha1", "gridevents", registry=registry,
                 cancellation_timeout=5.0)
    async def gridevent(body: kopf.Body, name: str, memo: kopf.Memo,
                        stopped: kopf.DaemonStopped, **_: Any) -> None:
        ctx = memo_context(memo)
        waker = ctx.waker(f"gev/{name}")
        try:
            while not stopped:
                waker.clear()
                until = ctx.clock.now() + ctx.settings.replan_interval
                try:
                    until = await _report(ctx, dict(body), name)
                except KubeApiError as exc:  # retried at the next wake or interval
                    log.warning("could not write the status of GridEvent %s: %s", name, exc)
                await first_of(ctx.clock.sleep_until(until), stopped.wait(), waker.wait())
        finally:
            ctx.wakers.pop(f"gev/{name}", None)


async def _report(ctx: Context, raw: dict[str, Any], name: str) -> datetime:
    """Write the event's status if it changed; when to look again."""
    now = ctx.clock.now()
    event = ctx.grid.events.get(name)
    if event is None:  # invalid (refused by the watch handler), or not seen yet
        return now + ctx.settings.replan_interval
    previous = ctx.grid.written.get(name) or raw.get("status") or {}
    answers = answers_for(ctx, event)
    grid = ctx.planning.answer_grid
    slot = grid[1] if grid is not None else timedelta(minutes=15)
    figures = site_figures(ctx, answers, now)
    if figures:
        ctx.grid.delivering[name] = {s: f.delivered_kw for s, f in figures.items()}
    else:
        ctx.grid.delivering.pop(name, None)
    delivered = sum(f.delivered_kw for f in figures.values()) if figures else None
    affected = _affected(ctx, name, answers, previous)
    status = event_status(event, answers, now=now, slot0=grid[0] if grid else None,
                          slot=slot, known_sites=set(ctx.sites) | ctx.site_names,
                          delivered_kw=delivered, previous=previous, job_name=ctx.object_name,
                          deadline_misses=sum(map(ctx.missed_deadline, affected)))
    _announce(raw, previous, status)
    if any(previous.get(k) != v for k, v in status.items()):
        await ctx.api.patch_gridevent_status(name, status)
        ctx.grid.written[name] = {**previous, **status}
    metrics.record_grid_event(
        name, event.spec.type.value, status["phase"], figures,
        float(status.get("deliveredKWh") or 0.0) - float(previous.get("deliveredKWh") or 0.0))
    spec = event.spec
    if now < spec.start:
        return min(spec.start, now + ctx.settings.replan_interval)
    if now < spec.end:
        return min(spec.end, now + MEASURE_EVERY)
    return now + ctx.settings.replan_interval


def _affected(ctx: Context, name: str, answers: Mapping[str, AskAnswer],
              previous: Mapping[str, Any]) -> set[str]:
    """The planning keys of the jobs the event moved or held out of its window: those
    the rounds since the operator started answered it with (``moved_g``: every job the
    answered plan moved at its sites, whatever else moved it too; and a met answer's
    ``jobs``), and those its status names while it is met (after a restart the rounds
    name them no more: their plan holds the jobs where the event put them). A short
    answer's ``jobs`` are the ones that keep it short, which it did not move: left out."""
    keys = ctx.grid.affected.setdefault(name, set())
    for a in answers.values():
        if a.accepted:
            keys.update(a.moved_g)
            if a.shortfall_kw <= TOLERANCE_KW:
                keys.update(a.jobs)
    if (previous.get("shortfallKW") or 0.0) <= TOLERANCE_KW:
        named = set(previous.get("affectedJobs") or ()) - {ctx.object_name(k) for k in keys}
        if named:
            keys.update(key_of(uid) for uid in ctx.book.uids_named(named))
    return keys


def _announce(raw: Mapping[str, Any], previous: Mapping[str, Any],
              status: Mapping[str, Any]) -> None:
    """An event when the phase changes, or the shortfall does (a Warning naming it), and
    a Warning when a job the event moved misses its deadline."""
    phase, was = status.get("phase"), previous.get("phase")
    short, was_short = status.get("shortfallKW") or 0.0, previous.get("shortfallKW") or 0.0
    reason = str(status.get("reason") or "")
    if phase != was:
        if phase == "Declined":
            events.warning(raw, "Declined", reason)
        elif phase in ("Accepted", "Active", "Completed"):
            events.normal(raw, str(phase), _phase_message(status))
    if short > 0 and abs(short - was_short) >= max(1.0, 0.05 * short) and phase != "Declined":
        events.warning(raw, "ShortOfRequest", reason)
    misses = int(status.get("deadlineMisses") or 0)
    if misses > int(previous.get("deadlineMisses") or 0):
        events.warning(raw, "DeadlineMissed", f"{misses} job(s) the event moved missed "
                                              "their deadline (their ComputeJobs say how)")


def _phase_message(status: Mapping[str, Any]) -> str:
    phase = status.get("phase")
    if phase == "Completed":
        effect = f", {status['effect']}" if status.get("effect") else ""
        return (f"delivered {status.get('deliveredKWh') or 0:,.0f} kWh "
                f"({status.get('delivered') or 'not measured'} of what was asked){effect}; "
                f"{status.get('deadlineMisses') or 0} deadline(s) missed")
    return f"asked {status.get('asked')}, committed {status.get('committed')}: " \
           f"{status.get('reason') or ''}"


async def _refuse(ctx: Context, raw: Mapping[str, Any], name: str, exc: InvalidSpecError
                  ) -> None:
    """An invalid GridEvent: a warning and ``Accepted=False`` once per generation."""
    status = raw.get("status") or {}
    generation = (raw.get("metadata") or {}).get("generation")
    if status.get("observedGeneration") == generation:
        return
    events.warning(raw, "InvalidSpec", str(exc))
    conditions = with_condition(status.get("conditions"), "Accepted", False, "InvalidSpec",
                                str(exc), ctx.clock.now(), generation)
    try:
        await ctx.api.patch_gridevent_status(name, {
            "phase": "Declined", "reason": str(exc)[:1024], "conditions": conditions,
            "observedGeneration": generation})
    except KubeApiError as exc2:
        log.warning("could not write the status of GridEvent %s: %s", name, exc2)

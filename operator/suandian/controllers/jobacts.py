"""Performing a ComputeJob's actions: the API calls, events, metrics and status writes.

:func:`~suandian.controllers.next_action.next_action` decides what a step does; each
method here carries out one kind of :mod:`action <.actions>` and returns when to look
at the job next (``AGAIN``: decide again now, in the same step). What a method still
chooses depends on what the API answered (a namesake Job, a refusal, who holds an
admission) or is the wording of a status field, an event or a metric.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from suandian import metrics
from suandian.controllers.actions import (
    AwaitAdmission,
    MarkInvalid,
    MarkStarted,
    Move,
    ReportTrouble,
    ReportUnplaced,
    Start,
    Suspend,
    SyncStatus,
)
from suandian.controllers.book import JobRecord
from suandian.controllers.context import Context
from suandian.controllers.next_action import DEADLINE_GRACE, NO_SITES
from suandian.k8s import events
from suandian.k8s.decision import Decision, format_time, time_of
from suandian.k8s.status import with_condition

__all__ = ["ADMITTED", "AGAIN", "CHILD_CREATED", "REACHABLE", "JobActs", "Wake"]

CHILD_CREATED = "ChildJobCreated"
REACHABLE = "Reachable"  # False: the place a released child was sent to cannot be reached
ADMITTED = "Admitted"  # only once a released job waited for admission


class Again(enum.Enum):
    AGAIN = "again"


AGAIN = Again.AGAIN
Wake = datetime | None | Again


class JobActs:
    """One ComputeJob's actions, for one step (its state lives in the record and objects)."""

    def __init__(self, ctx: Context, record: JobRecord, key: str) -> None:
        self.ctx = ctx
        self.record = record
        self.key = key

    @property
    def status(self) -> dict[str, Any]:
        return self.record.status

    def child(self) -> dict[str, Any]:
        """The child Job the step observed (no await between observing and acting)."""
        child = self.ctx.cluster.child(self.record.uid)
        if child is None:
            raise LookupError(f"the child Job of {self.record.key} vanished mid-step")
        return child

    # -- the spec ------------------------------------------------------------------------

    async def mark_invalid(self, act: MarkInvalid, now: datetime) -> Wake:
        generation = self.record.generation
        events.warning(self.record.ref(), "InvalidSpec", act.message)
        await self.patch_status({
            "phase": "Pending", "reason": f"invalid spec: {act.message}"[:1024],
            "observedGeneration": generation,
            "conditions": with_condition(self.status.get("conditions"), "Valid", False,
                                         "InvalidSpec", act.message, now, generation),
        })
        return None

    async def clear_invalid(self, now: datetime) -> Wake:
        await self.patch_status({"conditions": self.valid(now)})
        return AGAIN

    async def rebuild(self, now: datetime) -> Wake:
        meta = self.child()["metadata"]
        await self.ctx.api.delete_job(meta["namespace"], meta["name"])
        self.ctx.cluster.set_child(self.record.uid, None)
        events.normal(self.record.ref(), "SpecChanged",
                      "the spec changed before the start: re-planning")
        return now

    # -- no decision ---------------------------------------------------------------------

    async def report_unplaced(self, act: ReportUnplaced) -> Wake:
        if act.warn:
            events.warning(self.record.ref(), "DeadlineAtRisk", act.reason)
        await self.patch_status({"phase": "Pending", "reason": act.reason,
                                  "latestStart": format_time(act.latest_start)})
        return act.until

    async def report_no_sites(self, until: datetime) -> Wake:
        await self.patch_status({"phase": "Pending", "reason": NO_SITES})
        return until

    # -- the child Job -------------------------------------------------------------------

    async def move(self, act: Move, now: datetime) -> Wake:
        ctx, record, decision = self.ctx, self.record, act.decision
        child, site = self.child(), ctx.sites[decision.site]
        ns, name = child["metadata"]["namespace"], child["metadata"]["name"]
        await ctx.backend.prepare(ctx.api, child, decision, site.site.spec.placement,
                                  dispatch=False)
        patch = ctx.backend.move(child, decision, site.site.spec.placement,
                                 record.user_affinity)
        if patch is None:  # the backend can only make it again, at the new site
            await ctx.api.delete_job(ns, name)
            ctx.cluster.set_child(record.uid, None)
            events.normal(record.ref(), "Moved", f"moving from {act.from_site} to "
                          f"{decision.site} (its Job made again): {decision.reason}")
            return now
        ctx.cluster.set_child(record.uid, await ctx.api.patch_job(ns, name, patch))
        events.normal(record.ref(), "Moved", f"moved from {act.from_site} to "
                      f"{decision.site}: {decision.reason}")
        return AGAIN

    # -- starts and stops ----------------------------------------------------------------

    async def start(self, act: Start, now: datetime) -> Wake:
        """Let the child go (the backend's release): it runs now, or, where another
        controller admits, it is ``Admitting`` until that one lets it run."""
        ctx, decision, trigger = self.ctx, act.decision, act.trigger
        child = self.child()
        meta = child["metadata"]
        site = ctx.sites.get(decision.site)
        await ctx.backend.prepare(ctx.api, child, decision,
                                  site.site.spec.placement if site else None, dispatch=True)
        ctx.cluster.set_child(self.record.uid, await ctx.api.patch_job(
            meta["namespace"], meta["name"], ctx.backend.release(child, decision, now)))
        if ctx.backend.admits:
            await self.patch_status({
                **decision.status_fields(), "phase": "Admitting",
                "conditions": with_condition(
                    self.status.get("conditions"), "Started", False, trigger.capitalize(),
                    f"released at {decision.site}; waiting for admission", now)})
            events.normal(self.record.ref(), "Released", f"released at {decision.site} "
                          f"({trigger}), waiting for admission: {decision.reason}")
        else:
            await self.patch_status({**decision.status_fields(), "phase": "Running",
                                      **self.started_fields(decision, trigger, now,
                                                             self.status.get("conditions"))})
        return act.until

    async def mark_started(self, act: MarkStarted, now: datetime) -> Wake:
        """Record a start seen after the fact (released before, or found running after a
        restart whose status write was lost): at the child Job's start, not at the step
        that saw it, which may be a restart later (and count a deadline missed that was
        not)."""
        started = time_of((self.child().get("status") or {}).get("startTime"))
        at = min(now, started) if started is not None else now
        fields = self.started_fields(act.decision, act.trigger, at,
                                      self.status.get("conditions"))
        if act.admitted:
            fields["conditions"] = with_condition(
                fields["conditions"], ADMITTED, True, "Admitted",
                f"admitted at {act.decision.site}", now)
        await self.patch_status(fields)
        return AGAIN

    async def suspend(self, act: Suspend) -> Wake:
        ctx, decision = self.ctx, act.decision
        child = self.child()
        meta = child["metadata"]
        ctx.cluster.set_child(self.record.uid, await ctx.api.patch_job(
            meta["namespace"], meta["name"], ctx.backend.hold(child, act.ran_s)))
        await self.patch_status({"phase": "Suspended", **decision.status_fields()})
        events.normal(self.record.ref(), "Suspended", f"green supply at {decision.site} "
                      f"is below plan; resuming at {format_time(act.until)}")
        metrics.record_suspension(decision.site)
        return act.until

    async def await_admission(self, act: AwaitAdmission, now: datetime) -> Wake:
        """Each message once: who holds it, or that its deadline is at risk."""
        ctx, status, decision = self.ctx, self.status, act.decision
        fields: dict[str, Any] = {"phase": "Admitting"} if act.set_phase else {}
        if act.overdue:
            why = await ctx.backend.waiting(ctx.api, self.child()) or "nobody says why"
            kind, message = "NotAdmitted", (
                f"released at {decision.site} at {format_time(act.released_at)}, not "
                f"admitted since: {why}")
            if act.at_risk:
                kind, message = "DeadlineAtRisk", (
                    f"deadline at risk: not admitted by its latest start "
                    f"{format_time(decision.latest_start)}: {why}")
            held = next((c for c in status.get("conditions") or []
                         if c.get("type") == ADMITTED), None)
            if held is None or held.get("message") != message:
                fields["conditions"] = with_condition(status.get("conditions"), ADMITTED,
                                                      False, kind, message, now)
                events.warning(self.record.ref(), kind, message)
                ctx.planning.replan()  # with what Kueue holds now, a site with room
        if fields:
            await self.patch_status(fields)
        return act.until

    async def report_trouble(self, act: ReportTrouble, now: datetime) -> Wake:
        """Say once that the place the job was sent to cannot be reached (or is again)."""
        ok = act.reason is None
        await self.patch_status({"conditions": with_condition(
            self.status.get("conditions"), REACHABLE, ok, act.reason or "Reachable",
            act.message, now)})
        if ok:
            events.normal(self.record.ref(), "Reachable", act.message)
        else:
            events.warning(self.record.ref(), act.reason or "Unreachable", act.message)
        return AGAIN

    async def sync_status(self, act: SyncStatus) -> Wake:
        fields = {**act.decision.status_fields(), "phase": act.phase}
        if self.record.generation is not None:
            fields["observedGeneration"] = self.record.generation
        await self.patch_status(fields)
        if act.announce:
            events.normal(self.record.ref(), "Deferred", act.decision.reason)
        return act.until

    # -- status --------------------------------------------------------------------------

    def valid(self, now: datetime) -> list[dict[str, Any]]:
        return with_condition(self.status.get("conditions"), "Valid", True, "SpecValid",
                              "the spec is valid", now, self.record.generation)

    def started_fields(self, decision: Decision, trigger: str, now: datetime,
                        conditions: Any) -> dict[str, Any]:
        """The status of a start (and its event and metrics): ``startedAt`` once, the
        ``Started`` condition with the trigger as its reason."""
        fields: dict[str, Any] = {"conditions": with_condition(
            conditions, "Started", True, trigger.capitalize(), decision.reason, now)}
        if not self.status.get("startedAt"):
            fields["startedAt"] = format_time(now)
        events.normal(self.record.ref(), "Resumed" if trigger == "resumed" else "Started",
                      f"started at {decision.site} ({trigger}): {decision.reason}")
        delay = max(0.0, (now - self.record.created).total_seconds())
        metrics.record_start(decision.site, trigger=trigger, delay_s=delay)
        if now > decision.latest_start + DEADLINE_GRACE:
            metrics.record_deadline_miss(decision.site)
            fields["deadlineMissed"] = True
        return fields

    def records(self) -> list[JobRecord]:
        """This step's record and, if a watch event replaced it meanwhile, the new one."""
        current = self.ctx.book.get(self.record.uid)
        return [self.record] + ([current] if current not in (None, self.record) else [])

    async def patch_status(self, fields: Mapping[str, Any]) -> None:
        record = self.record
        if record.power is not None and "plannedStart" in fields:
            # with every decision, the estimate its plan used (status.powerEstimate)
            estimate = record.power.status()
            if self.status.get("powerEstimate") != estimate:
                fields = {**fields, "powerEstimate": estimate}
        await self.ctx.api.patch_computejob(record.namespace, record.name,
                                            {"status": dict(fields)}, status=True)
        for current in self.records():
            current.wrote(fields)

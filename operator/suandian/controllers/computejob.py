"""ComputeJob controller: validate, plan, create the suspended child Job, start it on time.

The watch handler keeps each job's compact record (:mod:`.book`) and wakes the
operator's one :class:`~suandian.controllers.scheduler.Scheduler`, which runs
:func:`step` for the job: now, and again when the step says it is due. Each step reads
the truth from the objects (the ComputeJob's spec and status, the child Job as last
watched), so a restarted operator continues where the last stopped: a job whose planned
or latest start has passed starts at once; a started job is never started again
(unsuspending a running Job is a no-op).

A step is a thin loop: observe the job (:class:`~.next_action.Observed`), ask the pure
:func:`~.next_action.next_action` what to do, perform that (:mod:`.jobacts`,
:mod:`.creation`, :mod:`.completion`), and again until an action says when to look
next. The decisions, in order (each a row of ``tests/unit/controllers/test_next_action.py``):

1. a finished job rests; an invalid spec gets ``Valid=False`` naming the fields, a
   Warning, and nothing is made (fixed since: ``Valid=True``);
2. a finished child Job is accounted; a spec edited before the start rebuilds the child;
   a started child whose status holds no decision (the status write after its creation
   was lost: a ``kill -9`` between the two requests) has it read back from the child's
   annotations, since no round re-plans a started job;
3. the planning rounds are consulted: a decision comes from them, or is kept from the
   ``status`` while the job runs, or while a re-plan is pending (never past its latest
   start); with none, the status says why;
4. the child Job is created held, with the site required and ranked nodes preferred (free
   to run when it is due at once);
5. it moves (patched, or made again) if a re-plan picked another site and it never started;
6. it is let go at ``min(plannedStart, latestStart)``; where another controller admits,
   it is ``Admitting`` until that one does; interruptible jobs follow their run windows
   (suspended between them) and always resume by their latest start;
7. the child Job is followed to ``Succeeded``/``Failed`` and the actual run accounted.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import kopf

from suandian.controllers import actions as act
from suandian.controllers import completion, creation
from suandian.controllers.book import JobRecord
from suandian.controllers.completion import finished_late
from suandian.controllers.context import Context, memo_context
from suandian.controllers.jobacts import ADMITTED, AGAIN, CHILD_CREATED, REACHABLE, JobActs, Wake
from suandian.controllers.next_action import (
    Answer,
    Child,
    Observed,
    Refusal,
    Unplaced,
    next_action,
    same_decision,
)
from suandian.controllers.planning import Demand
from suandian.errors import KubeApiError, PlanningError
from suandian.k8s.decision import Decision, time_of
from suandian.k8s.jobs import ANNOTATION_RESUMED_AT, ANNOTATION_RUN_SECONDS, LABEL_SITE, job_state
from suandian.k8s.status import condition_status
from suandian.metrics import START_TRIGGERS
from suandian.planner import JobDecision

__all__ = ["JobDriver", "decision_from_plan", "finished_late", "has_started", "register",
           "same_decision", "step", "wake_owner"]

KIND = "cj"  # scheduler keys: "cj/<uid>"
MAX_ACTS = 8  # actions of one step (a few carry on: ClearInvalid, Move, MarkStarted)


def key_of(uid: str) -> str:
    """The job's key in the scheduler and in planning (one string object for both)."""
    return sys.intern(f"{KIND}/{uid}")


def decision_from_plan(d: JobDecision, earliest: datetime | None = None) -> Decision | None:
    """The planner's decision as stored in objects (None when it placed the job nowhere).

    The planner works in whole slots, so a job it starts at once has the start of the
    current slot as its planned start, minutes before the job even existed; ``earliest``
    (its creation, or ``notBefore``) is the true start of a job placed in that slot.
    """
    if d.site is None or d.planned_start is None:
        return None
    windows = tuple(d.windows)
    planned = d.planned_start
    if earliest is not None and planned < earliest:
        planned = earliest
        if windows and windows[0][0] < earliest < windows[0][1]:
            windows = ((earliest, windows[0][1]), *windows[1:])
    return Decision(
        site=d.site, planned_start=planned, latest_start=d.latest_start,
        reason=d.reason, windows=windows,
        node_preferences=tuple(d.node_preferences),
        expected_emissions_g=d.expected_emissions_g, run_now_emissions_g=d.run_now_emissions_g,
        expected_green_fraction=d.expected_green_fraction, energy_kwh=d.energy_kwh,
    )


def wake_owner(ctx: Context, uid: str) -> None:
    """A child Job changed: step its ComputeJob, if this replica knows it (a standby's
    feeds run too, and its scheduler must not queue every job it hears of)."""
    if ctx.book.get(uid) is not None:
        ctx.scheduler.wake(key_of(uid))


async def step(ctx: Context, key: str) -> datetime | None:
    """The scheduler's step for the ComputeJob ``cj/<uid>``."""
    record = ctx.book.get(key.partition("/")[2])
    if record is None:
        return None
    return await JobDriver(ctx, record).step()


class JobDriver(JobActs):
    """Drives one ComputeJob for one step: observe, decide, perform (module docstring)."""

    def __init__(self, ctx: Context, record: JobRecord) -> None:
        super().__init__(ctx, record, key_of(record.uid))

    async def step(self) -> datetime | None:
        """Act on what is due now; the time to act next (None: wait to be woken)."""
        answer: Answer | None = None
        for _ in range(MAX_ACTS):
            now = self.ctx.clock.now()
            seen = self.observe()
            action = next_action(seen, answer, now)
            if isinstance(action, act.ConsultPlanner):
                answer = self.consult(action.ask)
                continue
            wake = await self.perform(action, seen, now)
            if wake is not AGAIN:
                return wake
        raise RuntimeError(f"the step of {self.record.key} does not settle")

    async def perform(self, action: act.Action, seen: Observed, now: datetime) -> Wake:
        match action:
            case act.Wait(until):
                return until
            case act.MarkInvalid():
                return await self.mark_invalid(action, now)
            case act.ClearInvalid():
                return await self.clear_invalid(now)
            case act.Finish(succeeded) if seen.child is not None:
                await completion.finish(self, self.child(), seen.child, succeeded)
                return None
            case act.Rebuild():
                return await self.rebuild(now)
            case act.ReportUnplaced():
                return await self.report_unplaced(action)
            case act.ReportNoSites(until):
                return await self.report_no_sites(until)
            case act.Retry(message):
                raise PlanningError(message)
            case act.Create():
                return await self.making(creation.create(self, action, now), seen, now)
            case act.LookForChild():
                return await self.making(creation.look_for_child(self, action, now), seen,
                                         now)
            case act.ReadBack():
                return await creation.read_back(self, action, now)
            case act.Move():
                return await self.move(action, now)
            case act.Start():
                return await self.start(action, now)
            case act.MarkStarted():
                return await self.mark_started(action, now)
            case act.SyncStatus():
                return await self.sync_status(action)
            case act.Suspend():
                return await self.suspend(action)
            case act.AwaitAdmission():
                return await self.await_admission(action, now)
            case act.ReportTrouble():
                return await self.report_trouble(action, now)
        raise TypeError(f"no way to perform {action!r}")

    async def making(self, work: Awaitable[Wake], seen: Observed, now: datetime) -> Wake:
        """Making the child; a refusal of the API server is reported on the job."""
        try:
            return await work
        except KubeApiError as exc:
            if not exc.refused:
                raise  # the scheduler retries what may pass later
            return await creation.refused(self, exc, seen.refusal, now)

    def observe(self) -> Observed:
        """What the step decides on: the record, the status, the child Job as last
        watched, what the backend can do, the sites known, the settings."""
        ctx, record, status = self.ctx, self.record, self.status
        terms, job = record.terms, ctx.cluster.child(record.uid)
        conditions = status.get("conditions") or []
        refused = _condition(conditions, CHILD_CREATED)
        reach = _condition(conditions, REACHABLE)
        released_for = next((str(c["reason"]).lower() for c in conditions
                             if c.get("type") == "Started" and c.get("reason")
                             and str(c["reason"]).lower() in START_TRIGGERS), "planned")
        return Observed(
            created=record.created, generation=record.generation,
            invalid=None if terms is not None else record.problem or "invalid spec",
            phase=status.get("phase"), observed_generation=status.get("observedGeneration"),
            said_invalid=condition_status(conditions, "Valid") == "False",
            reason=status.get("reason"), latest_start=status.get("latestStart"),
            started_at=bool(status.get("startedAt")), stored=Decision.from_status(status),
            refusal=Refusal(time_of(refused.get("lastTransitionTime")), refused.get("message"))
            if refused is not None and refused.get("status") == "False" else None,
            not_admitted=condition_status(conditions, ADMITTED) == "False",
            released_for=released_for, template_kept=record.template is not None,
            child=self.child_view(job, status) if job is not None else None,
            interruptible=terms.interruptible if terms else False,
            duration=terms.duration if terms else timedelta(0),
            sites=frozenset(ctx.sites), can_suspend=ctx.backend.can_suspend,
            admits=ctx.backend.admits, replan_interval=ctx.settings.replan_interval,
            admission_timeout=ctx.settings.admission_timeout,
            trouble=ctx.backend.trouble(job) if job is not None else None,
            said_trouble=str(reach.get("message") or "") if reach is not None
            and reach.get("status") == "False" else None,
            sheds=ctx.sheds if terms is not None and terms.interruptible else ())

    def child_view(self, job: Mapping[str, Any], status: Mapping[str, Any]) -> Child:
        meta = job["metadata"]
        annotations = meta.get("annotations") or {}
        ran_before = annotations.get(ANNOTATION_RUN_SECONDS)
        resumed = time_of(annotations.get(ANNOTATION_RESUMED_AT))
        since = resumed if resumed is not None or ran_before else time_of(
            (job.get("status") or {}).get("startTime"))
        return Child(
            state=job_state(job), site=(meta.get("labels") or {}).get(LABEL_SITE),
            started=has_started(job, status), released=self.ctx.backend.released(job),
            resumed_at=resumed, ran_s=float(ran_before or 0.0),
            running_since=None if (job.get("spec") or {}).get("suspend") else since)

    def consult(self, ask: act.Ask) -> Answer:
        """Tell the planning rounds what ``ask`` says, and read what they answer."""
        ctx, record, planning = self.ctx, self.record, self.ctx.planning
        terms = record.terms
        assert terms is not None
        answer = Answer(kept=True)
        if ask.kind == "supply":
            planning.upsert(Demand(self.key, terms, record.created, running_site=ask.site,
                                   remaining=ask.remaining, until=ask.until))
        elif ask.kind == "plan":
            demand = Demand(self.key, terms.pinned(ask.site) if ask.site else terms,
                            record.created, remaining=ask.remaining,
                            runs_at=ask.site if ask.running else None)
            current = planning.current(self.key)
            if ctx.book.get(record.uid) is None:
                answer = Answer(gone=True)  # deleted while this step waited for the API
            elif current is None or planning.stale(self.key, demand) or planning.pending(
                    self.key):
                planning.upsert(demand, ctx.wake_on_decision)
                answer = Answer(waiting=True)
            else:
                answer = Answer(planned=decision_from_plan(
                    current, terms.window(record.created)[0]))
        current = planning.current(self.key)
        if current is not None and not planning.pending(self.key):
            answer = replace(answer, nowhere=Unplaced(current.reason, current.latest_start))
        return answer


def _condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def has_started(child: Mapping[str, Any] | None, status: Mapping[str, Any]) -> bool:
    """Whether the job's pods may have run: its child Job was ever unsuspended.

    Not the child's ``status.startTime`` alone: the Job controller stamps it a moment
    after the unsuspend (a step in between must not take the job for a waiting one and
    re-plan it elsewhere while its pods start), and clears it when a Job is suspended
    again (an interruptible job between windows has still run, and may not move).
    """
    if child is None:
        return False
    return bool(status.get("startedAt") or (child.get("status") or {}).get("startTime")
                or not (child.get("spec") or {}).get("suspend"))


def register(registry: kopf.OperatorRegistry) -> None:
    """Add the ComputeJob watch handler to ``registry`` (no daemons: the context's
    scheduler steps the jobs; child Jobs come from the cluster view's feed)."""

    @kopf.on.event("suandian.io", "v1alpha1", "computejobs", registry=registry)
    async def computejob_changed(uid: str, memo: kopf.Memo, type: str | None,
                                 body: kopf.Body, logger: Any, **_: Any) -> None:
        ctx = memo_context(memo)
        ctx.handling(listed=type is None)
        ctx.census.observe(uid, None if type == "DELETED" else body)
        if type == "DELETED":
            ctx.book.forget(uid)
            ctx.planning.remove(key_of(uid))
            ctx.scheduler.forget(key_of(uid))
            return
        before = ctx.book.get(uid)
        try:
            record = ctx.book.observe(body)
        except (KeyError, ValueError) as exc:
            logger.error("cannot read this ComputeJob's metadata: %s", exc)
            return
        if before is None or type in (None, "ADDED") or before.generation != record.generation:
            # new, listed (a restart or a resume), or edited: step it; not on the echo of
            # the status it wrote itself (that would step every job twice per write)
            ctx.scheduler.wake(key_of(uid))

"""ComputeJob controller: validate, plan, create the suspended child Job, start it on time.

The watch handler keeps each job's compact record (:mod:`.book`) and wakes the
operator's one :class:`~suandian.controllers.scheduler.Scheduler`, which runs
:func:`step` for the job: now, and again when the step says it is due. Each step reads
the truth from the objects (the ComputeJob's spec and status, the child Job as last
watched), so a restarted operator continues where the last stopped: a job whose planned
or latest start has passed starts at once; a started job is never started again
(unsuspending a running Job is a no-op). The step:

1. validate the spec (invalid: ``Valid=False`` naming the fields, a Warning, nothing made);
2. get a decision from the planning rounds (or keep the one in ``status`` while the job
   runs, or while a re-plan is pending: a job never waits past its latest start for one);
3. create the child Job suspended, with the site required and ranked nodes preferred;
4. move it (patch affinity) if a re-plan picked another site and it never started;
5. unsuspend it at ``min(plannedStart, latestStart)``; interruptible jobs follow their
   run windows (suspend between them) and always resume by their latest start;
6. follow the child Job to ``Succeeded``/``Failed`` and account the actual run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import kopf

from suandian import metrics
from suandian.api.units import parse_time
from suandian.controllers.accounting import account_run
from suandian.controllers.book import JobRecord
from suandian.controllers.context import Context, memo_context
from suandian.controllers.planning import Demand
from suandian.errors import KubeApiError, PlanningError
from suandian.k8s import events
from suandian.k8s.decision import Decision, format_grams, format_time
from suandian.k8s.jobs import (
    ANNOTATION_OWNER_UID,
    ANNOTATION_RESUMED_AT,
    ANNOTATION_RUN_SECONDS,
    LABEL_SITE,
    child_job_name,
    job_state,
)
from suandian.k8s.status import condition_status, with_condition
from suandian.planner import JobDecision, JobTerms

__all__ = ["JobDriver", "decision_from_plan", "has_started", "register", "same_decision",
           "step", "wake_owner"]

log = logging.getLogger(__name__)

KIND = "cj"  # scheduler keys: "cj/<uid>"
TERMINAL = ("Succeeded", "Failed")
DEADLINE_GRACE = timedelta(minutes=1)
"""How late a start or finish may be before it counts as a deadline miss: the scheduler
wakes a moment after the time it slept until, and times in objects are written to the
second."""
QUARTER = timedelta(minutes=15)


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


class JobDriver:
    """Drives one ComputeJob for one step; its state lives in the record and the objects."""

    def __init__(self, ctx: Context, record: JobRecord) -> None:
        self.ctx = ctx
        self.record = record
        self.key = key_of(record.uid)

    @property
    def status(self) -> dict[str, Any]:
        return self.record.status

    def child(self) -> dict[str, Any] | None:
        return self.ctx.cluster.child(self.record.uid)

    # -- the step ------------------------------------------------------------------------

    async def step(self) -> datetime | None:
        """Act on what is due now; the time to act next (None: wait to be woken)."""
        ctx, record = self.ctx, self.record
        now = ctx.clock.now()
        status = self.status
        if status.get("phase") in TERMINAL:
            return None
        terms = record.terms
        if terms is None:
            await self._invalid(record.problem or "invalid spec")
            return None
        if condition_status(status.get("conditions"), "Valid") == "False":
            await self._patch_status({"conditions": self._valid(now)})  # fixed since
        child = self.child()
        state = job_state(child) if child else None
        if state in ("Complete", "Failed") and child is not None:
            await self._finish(terms, child, state)
            return None
        started = has_started(child, status)
        if child is not None and not started and status.get("observedGeneration") not in (
                None, record.generation):
            # the spec changed while the job waited: rebuild the child from the new template
            await ctx.api.delete_job(child["metadata"]["namespace"], child["metadata"]["name"])
            ctx.cluster.set_child(record.uid, None)
            events.normal(record.ref(), "SpecChanged",
                          "the spec changed before the start: re-planning")
            return now
        decision = self._decision(terms, child, started, state)
        if decision is None:
            return await self._undecided(now)
        if child is None:
            try:
                child = await self._create(terms, decision)
            except KubeApiError as exc:
                if not exc.refused:
                    raise  # the scheduler retries what may pass later
                return await self._refused(exc, now)
            if child is None:
                return now
            # the status just written reaches the record with the next watch event
            return None if job_state(child) != "Suspended" else decision.start_by()
        return await self._act(terms, decision, child, state, started, now)

    def _decision(self, terms: JobTerms, child: dict[str, Any] | None, started: bool,
                  state: str | None) -> Decision | None:
        """The decision to act on now; registers the job with planning as it stands."""
        ctx, record = self.ctx, self.record
        stored = Decision.from_status(self.status)
        if started and child is not None:
            site = (child["metadata"].get("labels") or {}).get(LABEL_SITE) or (
                stored.site if stored else None)
            if site is None:
                return stored
            remaining = self._remaining(terms, child)
            if state == "Running" or not terms.interruptible or remaining <= timedelta(0):
                # it takes supply from now on for what is left (to the quarter hour: a new
                # round only when that changes, not at every step)
                left = QUARTER * max(1, -(-remaining // QUARTER))
                ctx.planning.upsert(Demand(self.key, terms, record.created,
                                           running_site=site, remaining=left))
                return stored
            demand = Demand(self.key, terms.pinned(site), record.created, remaining=remaining)
        else:
            demand = Demand(self.key, terms, record.created)
        if ctx.book.get(record.uid) is None:
            return None  # deleted while this step waited for the API: plan nothing
        current = ctx.planning.current(self.key)
        if (current is None or ctx.planning.stale(self.key, demand)
                or ctx.planning.pending(self.key)):
            ctx.planning.upsert(demand, ctx.wake_on_decision)
            # until the round answers, a child that exists keeps to the decision in the
            # status (never past latestStart); without a child there is nothing to act on
            return stored if child is not None else None
        return decision_from_plan(current, terms.window(record.created)[0])

    async def _undecided(self, now: datetime) -> datetime | None:
        """No decision yet: wait for the round; say why in the status when it placed the
        job nowhere, and look again after ``replan_interval``."""
        ctx = self.ctx
        current = ctx.planning.current(self.key)
        if current is not None and not ctx.planning.pending(self.key):
            reason = current.reason
            if now >= current.latest_start:  # said once, before the deadline passes
                reason = (f"deadline at risk: not placed by its latest start "
                          f"{format_time(current.latest_start)}: {current.reason}")
                if self.status.get("reason") != reason:
                    events.warning(self.record.ref(), "DeadlineAtRisk", reason)
            fields = {"phase": "Pending", "reason": reason,
                      "latestStart": format_time(current.latest_start)}
            if any(self.status.get(k) != v for k, v in fields.items()):
                await self._patch_status(fields)
            if now < current.latest_start:
                return min(now + ctx.settings.replan_interval, current.latest_start)
            return now + ctx.settings.replan_interval
        if not ctx.sites and self.status.get("reason") != NO_SITES:
            await self._patch_status({"phase": "Pending", "reason": NO_SITES})
        # the round wakes it; should that ever be lost, it looks again anyway
        return now + ctx.settings.replan_interval

    async def _create(self, terms: JobTerms, decision: Decision) -> dict[str, Any] | None:
        ctx, record = self.ctx, self.record
        site = ctx.sites.get(decision.site)
        if site is None:
            raise PlanningError(f"site {decision.site} vanished")
        if record.template is None:
            return await self._lost_child()
        now = ctx.clock.now()
        due = now >= decision.start_by() and not (
            self._interruptible_here(terms) and decision.windows
            and decision.window_at(now) is None)
        # due at once: created free to run (one request and one status write fewer than
        # creating it held and releasing it)
        body = ctx.backend.child(record.manifest(), decision, site.site.spec.node_selector,
                                 terms.duration, due=due, now=now)
        created, fresh_child = await ctx.api.create_job(body)
        owner = (created.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_OWNER_UID)
        if owner != record.uid:
            # a Job of that name that is not ours (another's, or a deleted namesake's
            # child the garbage collector has not removed yet): try again later
            events.warning(record.ref(), "NameTaken", f"a Job named "
                           f"{body['metadata']['name']} exists and is not this job's; "
                           "retrying")
            raise PlanningError(f"the Job name of {record.key} is taken")
        ctx.cluster.set_child(record.uid, created)  # the next step must not create it again
        if fresh_child:
            phase = "Deferred" if not due else "Admitting" if ctx.backend.admits else "Running"
            fields: dict[str, Any] = {
                **decision.status_fields(), "phase": phase,
                "jobName": body["metadata"]["name"], "observedGeneration": record.generation,
                "conditions": self._valid(now),
            }
            if condition_status(fields["conditions"], CHILD_CREATED) == "False":
                # refused before: say it is solved (jobs never refused carry no condition)
                fields["conditions"] = with_condition(
                    fields["conditions"], CHILD_CREATED, True, "Created",
                    f"the API server accepted the child Job {body['metadata']['name']}", now,
                    record.generation)
            if due and ctx.backend.admits:
                fields["conditions"] = with_condition(
                    fields["conditions"], "Started", False, "Immediate",
                    f"created free to run at {decision.site}; waiting for admission", now)
                events.normal(record.ref(), "Released", f"released at {decision.site} "
                              f"(immediate), waiting for admission: {decision.reason}")
            elif due:
                fields.update(self._started_fields(decision, "immediate", now,
                                                   fields["conditions"]))
            else:
                events.normal(record.ref(), "Deferred", decision.reason)
                metrics.record_deferral(decision.site)
            await self._patch_status(fields)
        for current in self._records():
            current.template = None  # the child has it now; ten thousand templates are heavy
        return created

    async def _lost_child(self) -> dict[str, Any] | None:
        """The status names a child Job this replica has not seen (its listing may just
        not have arrived: a restart or a failover), or one that is gone."""
        ctx, record = self.ctx, self.record
        name = child_job_name(record.name)
        found = await ctx.api.get_job(record.namespace, name)
        owner = ((found or {}).get("metadata", {}).get("annotations") or {}).get(
            ANNOTATION_OWNER_UID)
        if found is not None and owner == record.uid:
            ctx.cluster.set_child(record.uid, found)
            return None  # step again with it
        status = self.status
        if status.get("startedAt") or status.get("phase") in ("Running", "Suspended"):
            # it ran: making it again would run the work twice
            message = f"the child Job {name} was deleted after it started"
            await self._patch_status({
                "phase": "Failed", "reason": message,
                "conditions": with_condition(status.get("conditions"), "Complete", False,
                                             "ChildJobDeleted", message, ctx.clock.now())})
            events.warning(record.ref(), "ChildJobDeleted", message)
            ctx.planning.remove(self.key)
            return None
        # deleted before it started: forget it; the status write answers with the whole
        # ComputeJob, template included, and the next step makes the child again
        fresh = await ctx.api.patch_computejob(record.namespace, record.name,
                                               {"status": {"jobName": None}}, status=True)
        ctx.book.observe(fresh)
        return None

    async def _refused(self, exc: KubeApiError, now: datetime) -> datetime:
        """The API server refused the child Job: say so (condition ``ChildJobCreated``
        False, phase Pending, a Warning event once per distinct refusal), and try again
        after a backoff that doubles from 10 s to 10 min (the time since the refusal
        began), or at once when the spec changes (the watch wakes the job)."""
        status = self.status
        message = (f"the API server refused the child Job ({exc.status} {exc.reason}): "
                   f"{exc.message}; {refusal_fix(exc)}")
        previous = next((c for c in status.get("conditions") or []
                         if c.get("type") == CHILD_CREATED), None)
        since = now
        if previous is not None and previous.get("status") == "False":
            since = _time(previous.get("lastTransitionTime")) or now
        if previous is None or previous.get("status") != "False" or previous.get(
                "message") != message[:32768]:
            events.warning(self.record.ref(), "ChildJobRefused", message)
            metrics.record_child_refused(exc.status)
            await self._patch_status({
                "phase": "Pending", "reason": message[:1024],
                "observedGeneration": self.record.generation,
                "conditions": with_condition(status.get("conditions"), CHILD_CREATED, False,
                                             exc.reason or "Refused", message, now,
                                             self.record.generation)})
        return now + min(REFUSAL_BACKOFF[1], max(REFUSAL_BACKOFF[0], now - since))

    def _valid(self, now: datetime) -> list[dict[str, Any]]:
        return with_condition(self.status.get("conditions"), "Valid", True, "SpecValid",
                              "the spec is valid", now, self.record.generation)

    async def _act(self, terms: JobTerms, decision: Decision, child: dict[str, Any],
                   state: str | None, started: bool, now: datetime) -> datetime | None:
        ctx, record, status = self.ctx, self.record, self.status
        ns, name = child["metadata"]["namespace"], child["metadata"]["name"]
        child_site = (child["metadata"].get("labels") or {}).get(LABEL_SITE)
        if not started and child_site != decision.site:
            site = ctx.sites.get(decision.site)
            if site is not None:
                patch = ctx.backend.move(child, decision, site.site.spec.node_selector,
                                         record.user_affinity)
                if patch is None:  # the backend can only make it again, at the new site
                    await ctx.api.delete_job(ns, name)
                    ctx.cluster.set_child(record.uid, None)
                    events.normal(record.ref(), "Moved", f"moving from {child_site} to "
                                  f"{decision.site} (its Job made again): {decision.reason}")
                    return now
                ctx.cluster.set_child(record.uid, await ctx.api.patch_job(ns, name, patch))
                events.normal(record.ref(), "Moved", f"moved from {child_site} to "
                              f"{decision.site}: {decision.reason}")
        running = state in ("Running", "Pending")
        if self._interruptible_here(terms) and started:
            return await self._interruptible(terms, decision, child, running, now)
        if running:
            if not status.get("startedAt"):  # released before, admitted since
                fields = self._started_fields(decision, self._released_for(), now,
                                              status.get("conditions"))
                if condition_status(fields["conditions"], ADMITTED) == "False":
                    fields["conditions"] = with_condition(
                        fields["conditions"], ADMITTED, True, "Admitted",
                        f"admitted at {decision.site}", now)
                await self._patch_status(fields)
            await self._sync_status(decision, "Running")
            return None
        if ctx.backend.released(child):  # let go; an admission queue holds it
            return await self._admitting(decision, child, now)
        due = decision.start_by()
        if now >= due:
            trigger = ("deadline" if now >= decision.latest_start and
                       decision.planned_start > decision.latest_start else
                       "immediate" if decision.planned_start <= record.created else "planned")
            await self._start(decision, ns, name, trigger, now)
            return now + ctx.settings.admission_timeout if ctx.backend.admits else None
        await self._sync_status(decision, "Deferred")
        if status.get("phase") != "Deferred":
            events.normal(record.ref(), "Deferred", decision.reason)
        return due

    async def _interruptible(self, terms: JobTerms, decision: Decision,
                             child: dict[str, Any], running: bool,
                             now: datetime) -> datetime | None:
        ns, name = child["metadata"]["namespace"], child["metadata"]["name"]
        window = decision.window_at(now)
        remaining = self._remaining(terms, child)
        must_run = now >= decision.latest_start or not decision.windows
        if running and remaining <= timedelta(0):
            return None  # its time is up: wait for the child Job to complete
        if running:
            if window is None and not must_run and decision.next_window_start(now):
                ran = self._run_seconds(child, now)
                self.ctx.cluster.set_child(self.record.uid, await self.ctx.api.patch_job(
                    ns, name, self.ctx.backend.hold(child, ran)))
                await self._patch_status({"phase": "Suspended", **decision.status_fields()})
                events.normal(self.record.ref(), "Suspended", f"green supply at "
                              f"{decision.site} is below plan; resuming at "
                              f"{format_time(decision.next_window_start(now) or now)}")
                metrics.record_suspension(decision.site)
                return decision.next_window_start(now)
            await self._sync_status(decision, "Running")
            return window[1] if window else now + remaining
        if window is not None or must_run:
            await self._start(decision, ns, name, "resumed", now)
            return window[1] if window else None
        await self._sync_status(decision, "Suspended")
        return decision.next_window_start(now) or decision.start_by()

    async def _start(self, decision: Decision, ns: str, name: str, trigger: str,
                     now: datetime) -> None:
        """Let the child go (the backend's release): it runs now, or, where another
        controller admits, it is ``Admitting`` until that one lets it run."""
        child = self.child() or {"metadata": {"name": name, "namespace": ns}}
        self.ctx.cluster.set_child(self.record.uid, await self.ctx.api.patch_job(
            ns, name, self.ctx.backend.release(child, decision, now)))
        if self.ctx.backend.admits:
            await self._patch_status({
                **decision.status_fields(), "phase": "Admitting",
                "conditions": with_condition(
                    self.status.get("conditions"), "Started", False, trigger.capitalize(),
                    f"released at {decision.site}; waiting for admission", now)})
            events.normal(self.record.ref(), "Released", f"released at {decision.site} "
                          f"({trigger}), waiting for admission: {decision.reason}")
            return
        await self._patch_status({**decision.status_fields(), "phase": "Running",
                                  **self._started_fields(decision, trigger, now,
                                                         self.status.get("conditions"))})

    def _started_fields(self, decision: Decision, trigger: str, now: datetime,
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
        return fields

    def _released_for(self) -> str:
        """The trigger a release recorded (the reason of ``Started=False``)."""
        for cond in self.status.get("conditions") or []:
            if cond.get("type") == "Started" and cond.get("reason"):
                reason = str(cond["reason"]).lower()
                if reason in metrics.START_TRIGGERS:
                    return reason
        return "planned"

    def _interruptible_here(self, terms: JobTerms) -> bool:
        """Run windows need a backend that may suspend; elsewhere a job runs through."""
        return terms.interruptible and self.ctx.backend.can_suspend

    async def _admitting(self, decision: Decision, child: dict[str, Any],
                         now: datetime) -> datetime:
        """Released, not running: someone else (an admission queue, another gate) holds
        it. After ``SUANDIAN_ADMISSION_TIMEOUT`` say who and re-plan (quota taken by work
        outside Suandian moves it); at its latest start, warn that the deadline is at
        risk. Each message once."""
        ctx, status = self.ctx, self.status
        annotations = child["metadata"].get("annotations") or {}
        released = _time(annotations.get(ANNOTATION_RESUMED_AT)) or now
        timeout = ctx.settings.admission_timeout
        fields: dict[str, Any] = {}
        if status.get("phase") != "Admitting":
            fields["phase"] = "Admitting"
        if now >= released + timeout:
            why = await ctx.backend.waiting(ctx.api, child) or "nobody says why"
            kind, message = "NotAdmitted", (
                f"released at {decision.site} at {format_time(released)}, not admitted "
                f"since: {why}")
            if now >= decision.latest_start:
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
            await self._patch_status(fields)
        later = released + timeout if now < released + timeout else now + timeout
        return min(later, decision.latest_start) if now < decision.latest_start else later

    async def _finish(self, terms: JobTerms, child: dict[str, Any], state: str) -> None:
        ctx, record, status = self.ctx, self.record, self.status
        child_status = child.get("status") or {}
        site = (child["metadata"].get("labels") or {}).get(LABEL_SITE) or status.get("site")
        done = _time(child_status.get("completionTime")) or ctx.clock.now()
        started = _time(child_status.get("startTime")) or done
        entry = ctx.sites.get(site or "")
        observed = ctx.observed(site or "", started, done, max_age=2 * (
            entry.site.spec.forecast.refresh_interval if entry else QUARTER))
        run = account_run(
            power_w=terms.power_w, pue=entry.site.spec.pue if entry else 1.0,
            run_s=self._run_seconds(child, done),
            observed_green_share=observed.green_share if observed else None,
            observed_carbon=observed.carbon_g_per_kwh if observed else None,
            planned_green_share=float(status.get("expectedGreenFraction") or 0.0),
            configured_carbon=entry.site.spec.grid.carbon_intensity if entry else 0.0)
        emissions = dict(status.get("emissions") or {})
        emissions["actualGrams"] = round(run.emissions_g, 1)
        ran = timedelta(seconds=int(run.run_s))
        fields: dict[str, Any] = {
            "phase": "Succeeded" if state == "Complete" else "Failed",
            "completedAt": format_time(done), "energyKWh": round(run.energy_kwh, 4),
            "actualGreenFraction": round(run.green_share, 4),
            "greenPercent": round(run.green_share * 100), "emissions": emissions,
        }
        if emissions.get("runNowGrams") is not None:
            saved = float(emissions["runNowGrams"]) - run.emissions_g
            emissions["savedGrams"] = round(saved, 1)
            fields["saved"] = format_grams(saved)
        how = "measured" if run.measured else "planned: the site was not observed"
        fields["conditions"] = with_condition(
            status.get("conditions"), "Complete", state == "Complete",
            "JobSucceeded" if state == "Complete" else "JobFailed",
            f"ran {ran} at {site}, {run.green_share:.0%} green ({how})", ctx.clock.now())
        await self._patch_status(fields)
        if state == "Complete":
            events.normal(record.ref(), "Succeeded", f"ran {ran} at {site}, "
                          f"{run.energy_kwh:.2f} kWh, {run.green_share:.0%} green, "
                          f"{format_grams(run.emissions_g)} CO2")
        else:
            events.warning(record.ref(), "Failed", f"the child Job failed at {site}")
        if site:
            metrics.record_job_finished(
                site, outcome="Succeeded" if state == "Complete" else "Failed",
                green_kwh=run.green_kwh, grid_kwh=run.grid_kwh, emissions_g=run.emissions_g,
                avoided_g=float(emissions.get("savedGrams") or 0.0))
            if finished_late(terms, record.created, status, done):
                metrics.record_deadline_miss(site)
        ctx.planning.remove(self.key)

    # -- helpers -------------------------------------------------------------------------

    def _run_seconds(self, child: Mapping[str, Any], now: datetime) -> float:
        annotations = child["metadata"].get("annotations") or {}
        before = float(annotations.get(ANNOTATION_RUN_SECONDS) or 0.0)
        resumed = _time(annotations.get(ANNOTATION_RESUMED_AT))
        if resumed is None and not annotations.get(ANNOTATION_RUN_SECONDS):
            resumed = _time((child.get("status") or {}).get("startTime"))
        if resumed is not None and not (child.get("spec") or {}).get("suspend"):
            before += max(0.0, (now - resumed).total_seconds())
        return before

    def _remaining(self, terms: JobTerms, child: Mapping[str, Any]) -> timedelta:
        ran = self._run_seconds(child, self.ctx.clock.now())
        return terms.duration - timedelta(seconds=ran)

    async def _sync_status(self, decision: Decision, phase: str) -> None:
        status = self.status
        stored = Decision.from_status(status)
        if status.get("phase") == phase and stored is not None and same_decision(
                stored, decision):
            return
        fields = {**decision.status_fields(), "phase": phase}
        if self.record.generation is not None:
            fields["observedGeneration"] = self.record.generation
        await self._patch_status(fields)

    async def _invalid(self, message: str) -> None:
        status, generation = self.status, self.record.generation
        if status.get("observedGeneration") == generation and condition_status(
                status.get("conditions"), "Valid") == "False":
            return
        events.warning(self.record.ref(), "InvalidSpec", message)
        await self._patch_status({
            "phase": "Pending", "reason": f"invalid spec: {message}"[:1024],
            "observedGeneration": generation,
            "conditions": with_condition(status.get("conditions"), "Valid", False,
                                         "InvalidSpec", message, self.ctx.clock.now(),
                                         generation),
        })

    def _records(self) -> list[JobRecord]:
        """This step's record and, if a watch event replaced it meanwhile, the new one."""
        current = self.ctx.book.get(self.record.uid)
        return [self.record] + ([current] if current not in (None, self.record) else [])

    async def _patch_status(self, fields: Mapping[str, Any]) -> None:
        record = self.record
        await self.ctx.api.patch_computejob(record.namespace, record.name,
                                            {"status": dict(fields)}, status=True)
        for current in self._records():
            current.wrote(fields)


NO_SITES = "waiting for a PowerSite: none is known yet"
CHILD_CREATED = "ChildJobCreated"
ADMITTED = "Admitted"  # only once a released job waited for admission
REFUSAL_BACKOFF = (timedelta(seconds=10), timedelta(minutes=10))


def refusal_fix(exc: KubeApiError) -> str:
    """What to change when the API server refuses a child Job, by how it refused."""
    if exc.status == 403:
        return ("the operator's ServiceAccount may not create this Job: grant create on "
                "batch jobs in this namespace (the chart's RBAC does), and, where the "
                "OwnerReferencesPermissionEnforcement admission plugin is on, update on "
                "computejobs/finalizers (a webhook or policy of the cluster may refuse "
                "too: its message says which)")
    if exc.status == 404:
        return "the namespace or the batch/v1 API is missing; create it, or delete this job"
    return ("fix spec.template: it must make a valid batch/v1 Job (`kubectl create "
            "--dry-run=server` of the same Job shows this error); retried with backoff, "
            "and at once after an edit")


def finished_late(terms: JobTerms, created: datetime, status: Mapping[str, Any],
                  done: datetime) -> bool:
    """Whether a job finishing at ``done`` missed its deadline and was not counted yet.

    A job that started after its latest start was counted as a miss then (see
    ``JobDriver._start``): one job counts once, so it is not counted again here.
    """
    _, deadline = terms.window(created)
    if done <= deadline + DEADLINE_GRACE:
        return False
    started, latest = _time(status.get("startedAt")), _time(status.get("latestStart"))
    return not (started is not None and latest is not None
                and started > latest + DEADLINE_GRACE)


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


def same_decision(a: Decision, b: Decision) -> bool:
    """Same site, and start and windows within a minute (rounds run at different moments)."""
    close = timedelta(minutes=1)
    if a.site != b.site or abs(a.planned_start - b.planned_start) >= close:
        return False
    if len(a.windows) != len(b.windows):
        return False
    return all(abs(w[0] - v[0]) < close and abs(w[1] - v[1]) < close
               for w, v in zip(a.windows, b.windows, strict=True))


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None


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

"""ComputeJob controller: validate, plan, create the suspended child Job, start it on time.

One kopf daemon per unfinished ComputeJob (paused by kopf on a standby replica) runs
:class:`JobDriver` until the job is done. Each step reads the truth from the objects
(the ComputeJob's spec and status, the child Job as last watched), so a
restarted operator continues where the last stopped: a job whose planned or latest start
has passed starts at once; a started job is never started again (unsuspending a running
Job is a no-op). The step:

1. validate the spec (invalid: ``Valid=False`` naming the fields, a Warning, nothing made);
2. get a decision from the planning round (or keep the one in ``status`` while the job runs);
3. create the child Job suspended, with the site required and ranked nodes preferred;
4. move it (patch affinity) if a re-plan picked another site and it never started;
5. unsuspend it at ``min(plannedStart, latestStart)``; interruptible jobs follow their
   run windows (suspend between them) and always resume by their latest start;
6. follow the child Job to ``Succeeded``/``Failed`` and account the actual run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import kopf

from suandian import metrics
from suandian.api.computejob import ComputeJob
from suandian.api.units import parse_time
from suandian.api.validation import parse_computejob
from suandian.controllers.context import Context, memo_context
from suandian.controllers.driving import drive
from suandian.controllers.planning import Demand, pinned
from suandian.errors import InvalidSpecError, PlanningError
from suandian.k8s import events
from suandian.k8s.decision import Decision, format_grams, format_time
from suandian.k8s.jobs import (
    ANNOTATION_OWNER_UID,
    LABEL_MANAGED_BY,
    LABEL_SITE,
    MANAGED_BY,
    affinity_patch,
    build_child_job,
    job_state,
    suspend_patch,
)
from suandian.k8s.status import with_condition
from suandian.planner import JobDecision, estimate_power_w
from suandian.planner.build import to_planner_units

__all__ = ["JobDriver", "decision_from_plan", "job_power_w", "register"]

log = logging.getLogger(__name__)

ANNOTATION_RUN_SECONDS = "suandian.io/run-seconds"
ANNOTATION_RESUMED_AT = "suandian.io/resumed-at"
TERMINAL = ("Succeeded", "Failed")
DEADLINE_GRACE = timedelta(minutes=1)
"""How late a start or finish may be before it counts as a deadline miss: a daemon wakes
a moment after the time it slept until, and times in objects are written to the second."""


def job_power_w(job: ComputeJob) -> float:
    """IT power of the whole job: ``spec.power.watts`` or estimated from requests."""
    if job.spec.power is not None:
        return job.spec.power.watts
    pods = job.spec.template.spec.parallelism
    total: dict[str, float] = {}
    for container in job.spec.template.spec.template.spec.containers:
        for name, amount in container.resources.requests.items():
            total[name] = total.get(name, 0.0) + to_planner_units(name, amount) * pods
    return estimate_power_w(total)


def decision_from_plan(d: JobDecision) -> Decision | None:
    """The planner's decision as stored in objects (None when it placed the job nowhere)."""
    if d.site is None or d.planned_start is None:
        return None
    return Decision(
        site=d.site, planned_start=d.planned_start, latest_start=d.latest_start,
        reason=d.reason, windows=tuple(d.windows),
        node_preferences=tuple(d.node_preferences),
        expected_emissions_g=d.expected_emissions_g, run_now_emissions_g=d.run_now_emissions_g,
        expected_green_fraction=d.expected_green_fraction, energy_kwh=d.energy_kwh,
    )


class JobDriver:
    """Drives one ComputeJob; :meth:`step` does what is due and says when to look again."""

    def __init__(self, ctx: Context, body: kopf.Body, child_jobs: Mapping[str, Any]) -> None:
        self.ctx = ctx
        self.body = body
        self.child_jobs = child_jobs
        self.uid = str(body["metadata"]["uid"])
        self._model: tuple[int | None, ComputeJob] | None = None
        # the status fields this driver wrote last, until the watched body shows them:
        # a step between our write and its watch event must not write (or announce) again
        self._written: dict[str, Any] = {}

    def finished(self) -> bool:
        return self.status.get("phase") in TERMINAL

    def _parsed(self, raw: Mapping[str, Any], created: datetime,
                generation: int | None) -> ComputeJob:
        """The validated spec, parsed once per generation (steps are frequent)."""
        if self._model is None or self._model[0] != generation:
            self._model = (generation, parse_computejob(raw, created=created))
        return self._model[1]

    # -- reading the objects -------------------------------------------------------------

    @property
    def raw(self) -> dict[str, Any]:
        return dict(self.body)

    @property
    def status(self) -> dict[str, Any]:
        status = dict(self.body.get("status") or {})
        if self._written:
            if all(status.get(k) == v for k, v in self._written.items()):
                self._written = {}  # the body has caught up
            else:
                status.update(self._written)
        return status

    def child(self) -> dict[str, Any] | None:
        if self.uid in self.child_jobs:
            for job in self.child_jobs[self.uid]:
                return dict(job)
        return None

    # -- the step ------------------------------------------------------------------------

    async def step(self) -> datetime | None:
        """Act on what is due now; the time to act next (None: wait for a change)."""
        ctx, raw = self.ctx, self.raw
        now = ctx.clock.now()
        meta = raw["metadata"]
        generation = meta.get("generation")
        status = self.status
        if status.get("phase") in TERMINAL:
            return None
        created = parse_time(meta["creationTimestamp"])
        try:
            job = self._parsed(raw, created, generation)
        except InvalidSpecError as exc:
            await self._invalid(exc, generation)
            return None
        if _condition(status, "Valid") == "False":  # it was invalid and is valid now
            await self._patch_status({"conditions": self._valid(now, generation)})
        child = self.child()
        state = job_state(child) if child else None
        if state in ("Complete", "Failed") and child is not None:
            await self._finish(job, child, state)
            return None
        started = bool(child and (child.get("status") or {}).get("startTime"))
        if child is not None and not started and status.get("observedGeneration") not in (
                None, generation):
            # the spec changed while the job waited: rebuild the child from the new template
            await ctx.api.delete_job(child["metadata"]["namespace"], child["metadata"]["name"])
            events.normal(raw, "SpecChanged", "the spec changed before the start: re-planning")
            return now
        decision = await self._decision(job, created, child, started, state)
        if decision is None:
            return now + ctx.settings.replan_interval
        if child is None:
            child = await self._create(job, decision)
            # the status just written reaches this body with the next watch event; acting
            # again before then would write it twice
            return None if job_state(child) != "Suspended" else decision.start_by()
        return await self._act(job, decision, child, state, started, now, generation)

    async def _decision(self, job: ComputeJob, created: datetime, child: dict[str, Any] | None,
                        started: bool, state: str | None) -> Decision | None:
        ctx = self.ctx
        stored = Decision.from_status(self.status)
        power = job_power_w(job)
        if started and child is not None:
            site = child["metadata"].get("labels", {}).get(LABEL_SITE) or (
                stored.site if stored else None)
            if site is None:
                return stored
            remaining = self._remaining(job, child)
            if state == "Running" or not job.spec.interruptible or remaining <= timedelta(0):
                # it takes supply from now on for what is left (to the quarter hour: a new
                # round only when that changes, not at every step)
                left = timedelta(minutes=15) * max(1, -(-remaining // timedelta(minutes=15)))
                ctx.planning.upsert(Demand(self.uid, job, created, running_site=site,
                                           remaining=left, power_w=power))
                return stored
            demand = Demand(self.uid, pinned(job, site), created, remaining=remaining,
                            power_w=power)
        else:
            demand = Demand(self.uid, job, created, power_w=power)
        current = ctx.planning.current(self.uid)
        if current is None or ctx.planning.stale(self.uid, demand):
            try:
                current = await ctx.planning.decide(demand, lambda _d: ctx.wake(self.uid))
            except PlanningError as exc:
                events.warning(self.raw, "PlanningFailed", str(exc))
                return stored
        decision = decision_from_plan(current)
        if decision is None:
            await self._patch_status({"phase": "Pending", "reason": current.reason,
                                      "latestStart": format_time(current.latest_start)})
            return None
        return decision

    async def _create(self, job: ComputeJob, decision: Decision) -> dict[str, Any]:
        ctx, raw = self.ctx, self.raw
        site = ctx.sites.get(decision.site)
        if site is None:
            raise PlanningError(f"site {decision.site} vanished")
        now = ctx.clock.now()
        body = build_child_job(raw, decision, site.site.spec.node_selector, job.spec.duration)
        due = now >= decision.start_by() and not (job.spec.interruptible and decision.windows
                                                   and decision.window_at(now) is None)
        if due:
            # due at once: created running (the same Job, one request and one status
            # write fewer than creating it suspended and unsuspending it)
            body["spec"]["suspend"] = False
            body["metadata"]["annotations"][ANNOTATION_RESUMED_AT] = format_time(now)
        created, fresh = await ctx.api.create_job(body)
        owner = (created.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_OWNER_UID)
        if owner == self.uid:  # known at once: the next step must not create it again
            ctx.cluster.set_child(self.uid, created)
        if fresh:
            generation = raw["metadata"].get("generation")
            fields: dict[str, Any] = {
                **decision.status_fields(), "phase": "Running" if due else "Deferred",
                "jobName": body["metadata"]["name"], "observedGeneration": generation,
                "conditions": self._valid(now, generation),
            }
            if due:
                fields["startedAt"] = format_time(now)
                fields["conditions"] = with_condition(
                    fields["conditions"], "Started", True, "Immediate", decision.reason, now)
                events.normal(raw, "Started", f"started at {decision.site} (immediate): "
                              f"{decision.reason}")
                metrics.record_start(decision.site, trigger="immediate", delay_s=max(
                    0.0, (now - _created(raw)).total_seconds()))
                if now > decision.latest_start + DEADLINE_GRACE:
                    metrics.record_deadline_miss(decision.site)
            else:
                events.normal(raw, "Deferred", decision.reason)
                metrics.record_deferral(decision.site)
            await self._patch_status(fields)
        return created

    def _valid(self, now: datetime, generation: int | None) -> list[dict[str, Any]]:
        return with_condition(self.status.get("conditions"), "Valid", True, "SpecValid",
                              "the spec is valid", now, generation)

    async def _act(self, job: ComputeJob, decision: Decision, child: dict[str, Any],
                   state: str | None, started: bool, now: datetime,
                   generation: int | None) -> datetime | None:
        ctx, raw, status = self.ctx, self.raw, self.status
        ns, name = child["metadata"]["namespace"], child["metadata"]["name"]
        child_site = (child["metadata"].get("labels") or {}).get(LABEL_SITE)
        if state == "Suspended" and not started and child_site != decision.site:
            site = ctx.sites.get(decision.site)
            if site is not None:
                user = ((job.spec.template.spec.template.spec.model_extra or {})
                        .get("affinity"))
                await ctx.api.patch_job(ns, name, affinity_patch(
                    child, decision, site.site.spec.node_selector, user))
                events.normal(raw, "Moved", f"moved from {child_site} to {decision.site}: "
                              f"{decision.reason}")
        running = state in ("Running", "Pending")
        if job.spec.interruptible and started:
            return await self._interruptible(job, decision, child, running, now)
        if running:
            await self._sync_status(decision, "Running", generation)
            return None
        due = decision.start_by()
        if now >= due:
            trigger = ("deadline" if now >= decision.latest_start and
                       decision.planned_start > decision.latest_start else
                       "immediate" if decision.planned_start <= _created(raw) else "planned")
            await self._start(decision, ns, name, trigger, now)
            return None
        await self._sync_status(decision, "Deferred", generation)
        if status.get("phase") != "Deferred":
            events.normal(raw, "Deferred", decision.reason)
        return due

    async def _interruptible(self, job: ComputeJob, decision: Decision, child: dict[str, Any],
                             running: bool, now: datetime) -> datetime | None:
        ns, name = child["metadata"]["namespace"], child["metadata"]["name"]
        window = decision.window_at(now)
        remaining = self._remaining(job, child)
        must_run = now >= decision.latest_start or not decision.windows
        if running and remaining <= timedelta(0):
            return None  # its time is up: wait for the child Job to complete
        if running:
            if window is None and not must_run and decision.next_window_start(now):
                ran = self._run_seconds(child, now)
                await self.ctx.api.patch_job(ns, name, {
                    **suspend_patch(True),
                    "metadata": {"annotations": {ANNOTATION_RUN_SECONDS: str(int(ran)),
                                                 ANNOTATION_RESUMED_AT: None}}})
                await self._patch_status({"phase": "Suspended",
                                          **decision.status_fields()})
                events.normal(self.raw, "Suspended", f"green supply at {decision.site} "
                              f"is below plan; resuming at "
                              f"{format_time(decision.next_window_start(now) or now)}")
                metrics.record_suspension(decision.site)
                return decision.next_window_start(now)
            await self._sync_status(decision, "Running", None)
            return window[1] if window else now + remaining
        if window is not None or must_run:
            await self._start(decision, ns, name, "resumed", now)
            return window[1] if window else None
        await self._sync_status(decision, "Suspended", None)
        return decision.next_window_start(now) or decision.start_by()

    async def _start(self, decision: Decision, ns: str, name: str, trigger: str,
                     now: datetime) -> None:
        await self.ctx.api.patch_job(ns, name, {
            **suspend_patch(False, decision),
            "metadata": {"annotations": {**decision.annotations(),
                                         ANNOTATION_RESUMED_AT: format_time(now)},
                         "labels": {LABEL_SITE: decision.site}}})
        fields: dict[str, Any] = {**decision.status_fields(), "phase": "Running"}
        if not self.status.get("startedAt"):
            fields["startedAt"] = format_time(now)
        fields["conditions"] = with_condition(self.status.get("conditions"), "Started", True,
                                              trigger.capitalize(), decision.reason, now)
        await self._patch_status(fields)
        events.normal(self.raw, "Resumed" if trigger == "resumed" else "Started",
                      f"started at {decision.site} ({trigger}): {decision.reason}")
        delay = (now - _created(self.raw)).total_seconds()
        metrics.record_start(decision.site, trigger=trigger, delay_s=delay)
        if now > decision.latest_start + DEADLINE_GRACE:
            metrics.record_deadline_miss(decision.site)

    async def _finish(self, job: ComputeJob, child: dict[str, Any], state: str) -> None:
        ctx, raw, status = self.ctx, self.raw, self.status
        child_status = child.get("status") or {}
        site = (child["metadata"].get("labels") or {}).get(LABEL_SITE) or status.get("site")
        done = _time(child_status.get("completionTime")) or ctx.clock.now()
        run_s = self._run_seconds(child, done)
        entry = ctx.sites.get(site or "")
        pue = entry.site.spec.pue if entry else 1.0
        energy = job_power_w(job) / 1000.0 * run_s / 3600.0 * pue
        started = _time(child_status.get("startTime")) or done
        carbon = ctx.observed_carbon(site or "", started, done)
        if carbon is None and entry is not None:
            carbon = entry.site.spec.grid.carbon_intensity
        green = float(status.get("expectedGreenFraction") or 0.0)
        actual = energy * (1.0 - green) * (carbon or 0.0)
        emissions = dict(status.get("emissions") or {})
        emissions["actualGrams"] = round(actual, 1)
        fields: dict[str, Any] = {
            "phase": "Succeeded" if state == "Complete" else "Failed",
            "completedAt": format_time(done), "energyKWh": round(energy, 4),
            "emissions": emissions,
        }
        if emissions.get("runNowGrams") is not None:
            saved = float(emissions["runNowGrams"]) - actual
            emissions["savedGrams"] = round(saved, 1)
            fields["saved"] = format_grams(saved)
        fields["conditions"] = with_condition(
            status.get("conditions"), "Complete", state == "Complete",
            "JobSucceeded" if state == "Complete" else "JobFailed",
            f"ran {timedelta(seconds=int(run_s))} at {site}", ctx.clock.now())
        await self._patch_status(fields)
        if state == "Complete":
            events.normal(raw, "Succeeded", f"ran {timedelta(seconds=int(run_s))} at {site}, "
                          f"{energy:.2f} kWh, {format_grams(actual)} CO2")
        else:
            events.warning(raw, "Failed", f"the child Job failed at {site}")
        if site:
            metrics.record_job_finished(
                site, outcome="Succeeded" if state == "Complete" else "Failed",
                green_kwh=energy * green, grid_kwh=energy * (1 - green), emissions_g=actual,
                avoided_g=float(emissions.get("savedGrams") or 0.0))
            if finished_late(job, raw, status, done):
                metrics.record_deadline_miss(site)
        ctx.planning.remove(self.uid)

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

    def _remaining(self, job: ComputeJob, child: Mapping[str, Any]) -> timedelta:
        ran = self._run_seconds(child, self.ctx.clock.now())
        return job.spec.duration - timedelta(seconds=ran)

    async def _sync_status(self, decision: Decision, phase: str,
                           generation: int | None) -> None:
        status = self.status
        stored = Decision.from_status(status)
        if status.get("phase") == phase and stored is not None and same_decision(
                stored, decision):
            return
        fields = {**decision.status_fields(), "phase": phase}
        if generation is not None:
            fields["observedGeneration"] = generation
        await self._patch_status(fields)

    async def _invalid(self, exc: InvalidSpecError, generation: int | None) -> None:
        status = self.status
        if status.get("observedGeneration") == generation and _condition(
                status, "Valid") == "False":
            return
        message = "; ".join(str(e) for e in exc.errors) or str(exc)
        events.warning(self.raw, "InvalidSpec", message)
        await self._patch_status({
            "phase": "Pending", "reason": f"invalid spec: {message}"[:1024],
            "observedGeneration": generation,
            "conditions": with_condition(status.get("conditions"), "Valid", False,
                                         "InvalidSpec", message, self.ctx.clock.now(),
                                         generation),
        })

    async def _patch_status(self, fields: Mapping[str, Any]) -> None:
        meta = self.body["metadata"]
        await self.ctx.api.patch_computejob(meta["namespace"], meta["name"],
                                            {"status": dict(fields)}, status=True)
        self._written = {**self._written, **fields}


def finished_late(job: ComputeJob, raw: Mapping[str, Any], status: Mapping[str, Any],
                  done: datetime) -> bool:
    """Whether a job finishing at ``done`` missed its deadline and was not counted yet.

    A job that started after its latest start was counted as a miss then (see
    ``JobDriver._start``): one job counts once, so it is not counted again here.
    """
    _, deadline = job.window(_created(raw))
    if done <= deadline + DEADLINE_GRACE:
        return False
    started, latest = _time(status.get("startedAt")), _time(status.get("latestStart"))
    return not (started is not None and latest is not None
                and started > latest + DEADLINE_GRACE)


def same_decision(a: Decision, b: Decision) -> bool:
    """Same site, and start and windows within a minute (rounds run at different moments)."""
    close = timedelta(minutes=1)
    if a.site != b.site or abs(a.planned_start - b.planned_start) >= close:
        return False
    if len(a.windows) != len(b.windows):
        return False
    return all(abs(w[0] - v[0]) < close and abs(w[1] - v[1]) < close
               for w, v in zip(a.windows, b.windows, strict=True))


def _condition(status: Mapping[str, Any], type_: str) -> str | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return str(cond.get("status"))
    return None


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None


def _created(raw: Mapping[str, Any]) -> datetime:
    return parse_time(raw["metadata"]["creationTimestamp"])


def register(registry: kopf.OperatorRegistry) -> None:
    """Add the ComputeJob handlers and the child-Job index to ``registry``."""

    @kopf.on.event("batch", "v1", "jobs", registry=registry,
                   labels={LABEL_MANAGED_BY: MANAGED_BY})
    async def child_job_changed(body: kopf.Body, memo: kopf.Memo, type: str | None,
                                **_: Any) -> None:
        owner = (body["metadata"].get("annotations") or {}).get(ANNOTATION_OWNER_UID)
        if owner:
            ctx = memo_context(memo)
            ctx.cluster.set_child(owner, None if type == "DELETED" else body)
            ctx.wake(owner)

    @kopf.on.event("suandian.io", "v1alpha1", "computejobs", registry=registry)
    async def computejob_changed(uid: str, memo: kopf.Memo, type: str | None,
                                 body: kopf.Body, **_: Any) -> None:
        ctx = memo_context(memo)
        ctx.census.observe(uid, None if type == "DELETED" else body)
        generation = body.get("metadata", {}).get("generation")
        observed = (body.get("status") or {}).get("observedGeneration")
        if type in ("ADDED", "DELETED") or generation != observed:
            ctx.wake(uid)  # not on our own status writes: the daemon made those
        if type == "DELETED":
            ctx.planning.remove(uid)
            ctx.wakers.pop(uid, None)

    @kopf.daemon("suandian.io", "v1alpha1", "computejobs", registry=registry,
                 cancellation_timeout=5.0,
                 when=lambda status, **_: status.get("phase") not in TERMINAL)
    async def computejob(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped,
                         logger: Any, **_: Any) -> None:
        ctx = memo_context(memo)
        await drive(ctx, JobDriver(ctx, body, ctx.cluster.child_jobs), stopped, logger)



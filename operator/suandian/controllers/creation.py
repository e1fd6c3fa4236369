"""Making a ComputeJob's child Job: create it, find it again, report a refusal.

Performs :class:`~suandian.controllers.actions.Create`,
:class:`~suandian.controllers.actions.LookForChild` and
:class:`~suandian.controllers.actions.ReadBack` for :mod:`.computejob`. What is still
chosen here hangs on the API's answer: a Job of the name that is not ours, a child found
or gone, the decision on a child, a refusal (reported once per distinct one, retried
with backoff).

Making a child is two writes: the Job (the decision in its annotations), then the
ComputeJob's status. The second can be lost (the process dies between them, the write
fails, another replica's creation answered ours): a held child is planned again and its
round's decision written, a started one has its decision read back from the child.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from suandian import metrics
from suandian.controllers.actions import Create, LookForChild, ReadBack
from suandian.controllers.jobacts import AGAIN, CHILD_CREATED, JobActs, Wake
from suandian.controllers.next_action import UNREADABLE, Refusal, after_refusal
from suandian.errors import KubeApiError, PlanningError
from suandian.k8s import events
from suandian.k8s.decision import Decision
from suandian.k8s.jobs import ANNOTATION_OWNER_UID, child_job_name, job_state
from suandian.k8s.status import with_condition

__all__ = ["create", "look_for_child", "read_back", "refusal_fix", "refused"]

log = logging.getLogger(__name__)


async def create(acts: JobActs, act: Create, now: datetime) -> Wake:
    """The child Job, held until its start or free to run (``act.due``)."""
    ctx, record, decision = acts.ctx, acts.record, act.decision
    site, terms = ctx.sites[decision.site], record.terms  # next_action saw both
    assert terms is not None
    placement = site.site.spec.placement
    body = ctx.backend.child(record.manifest(), decision, placement, terms.duration,
                             due=act.due, now=now)
    await ctx.backend.prepare(ctx.api, body, decision, placement, dispatch=act.due)
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
        fields: dict[str, Any] = {
            **decision.status_fields(), "phase": act.phase,
            "jobName": body["metadata"]["name"], "observedGeneration": record.generation,
            "conditions": acts.valid(now),
        }
        if act.solves_refusal:  # say it is solved (jobs never refused carry none)
            fields["conditions"] = with_condition(
                fields["conditions"], CHILD_CREATED, True, "Created",
                f"the API server accepted the child Job {body['metadata']['name']}", now,
                record.generation)
        if act.phase == "Admitting":
            fields["conditions"] = with_condition(
                fields["conditions"], "Started", False, "Immediate",
                f"created free to run at {decision.site}; waiting for admission", now)
            events.normal(record.ref(), "Released", f"released at {decision.site} "
                          f"(immediate), waiting for admission: {decision.reason}")
        elif act.phase == "Running":
            fields.update(acts.started_fields(decision, "immediate", now,
                                              fields["conditions"]))
        else:
            events.normal(record.ref(), "Deferred", decision.reason)
            metrics.record_deferral(decision.site)
        await acts.patch_status(fields)
    for current in acts.records():
        current.template = None  # the child has it now; ten thousand templates are heavy
    # the status just written reaches the record with the next watch event; a child
    # that came back held is started at its start, one that runs is followed by the watch
    return None if job_state(created) != "Suspended" else decision.start_by()


async def look_for_child(acts: JobActs, act: LookForChild, now: datetime) -> Wake:
    """The status names a child Job this replica has not seen (its listing may just not
    have arrived: a restart or a failover), or one that is gone. Step again at once."""
    ctx, record = acts.ctx, acts.record
    name = child_job_name(record.name)
    found = await ctx.api.get_job(record.namespace, name)
    owner = ((found or {}).get("metadata", {}).get("annotations") or {}).get(
        ANNOTATION_OWNER_UID)
    if found is not None and owner == record.uid:
        ctx.cluster.set_child(record.uid, found)  # step again with it
    elif act.ran:  # making it again would run the work twice
        await _deleted_after_start(acts, name, now)
    else:
        # deleted before it started: forget it; the status write answers with the
        # whole ComputeJob, template included, and the next step makes the child again
        fresh = await ctx.api.patch_computejob(record.namespace, record.name,
                                               {"status": {"jobName": None}}, status=True)
        ctx.book.observe(fresh)
    return now


async def read_back(acts: JobActs, act: ReadBack, now: datetime) -> Wake:
    """Write into the status the decision the started child carries (read from the API:
    the cluster view keeps none of its annotations), as its creation would have, and
    the phase it is in; the start itself is recorded next (``MarkStarted``). A child
    gone since it was watched ran: the job fails rather than run twice."""
    ctx, record = acts.ctx, acts.record
    name = child_job_name(record.name)
    found = await ctx.api.get_job(record.namespace, name)
    meta: Mapping[str, Any] = (found or {}).get("metadata") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    if found is None or annotations.get(ANNOTATION_OWNER_UID) != record.uid:
        await _deleted_after_start(acts, name, now)
        return None
    ctx.cluster.set_child(record.uid, found)
    fields: dict[str, Any] = {
        "phase": "Suspended" if job_state(found) == "Suspended" else "Running",
        "jobName": name, "observedGeneration": record.generation,
        "conditions": acts.valid(now)}
    decision = Decision.from_annotations(annotations)
    if decision is None:
        log.warning("%s: its child Job %s runs and carries no readable decision",
                    record.key, name)
        fields["reason"] = UNREADABLE
    else:
        fields.update(decision.status_fields())
    await acts.patch_status(fields)
    return AGAIN


async def _deleted_after_start(acts: JobActs, name: str, now: datetime) -> None:
    """The child is gone and it ran: the job fails (making it again would run the work
    twice) and leaves planning."""
    message = f"the child Job {name} was deleted after it started"
    await acts.patch_status({
        "phase": "Failed", "reason": message,
        "conditions": with_condition(acts.status.get("conditions"), "Complete",
                                     False, "ChildJobDeleted", message, now)})
    events.warning(acts.record.ref(), "ChildJobDeleted", message)
    acts.ctx.planning.remove(acts.key)


async def refused(acts: JobActs, exc: KubeApiError, refusal: Refusal | None,
                  now: datetime) -> Wake:
    """The API server refused the child Job: say so (condition ``ChildJobCreated``
    False, phase Pending, a Warning once per distinct refusal); try again after a
    backoff, or at once when the spec changes (the watch wakes the job)."""
    message = (f"the API server refused the child Job ({exc.status} {exc.reason}): "
               f"{exc.message}; {refusal_fix(exc)}")
    announce, until = after_refusal(refusal, message, now)
    if announce:
        events.warning(acts.record.ref(), "ChildJobRefused", message)
        metrics.record_child_refused(exc.status)
        await acts.patch_status({
            "phase": "Pending", "reason": message[:1024],
            "observedGeneration": acts.record.generation,
            "conditions": with_condition(acts.status.get("conditions"), CHILD_CREATED,
                                         False, exc.reason or "Refused", message, now,
                                         acts.record.generation)})
    return until


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

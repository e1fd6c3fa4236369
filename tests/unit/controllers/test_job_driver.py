"""The driver of a ComputeJob step, without an API: what the step returns to the scheduler."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.objects import computejob

from suandian.config import Settings
from suandian.controllers.computejob import JobDriver
from suandian.controllers.context import Context
from suandian.k8s.jobs import ANNOTATION_OWNER_UID, ANNOTATION_RUN_SECONDS, LABEL_SITE

T0 = datetime(2026, 6, 21, tzinfo=UTC)


class Frozen:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    async def sleep_until(self, when: datetime) -> None:
        self.at = max(self.at, when)


async def test_a_job_held_after_its_last_window_is_not_stepped_again_at_once() -> None:
    """Back from a downtime at 03:00, an interruptible job held since its only window
    (01:00-02:00) ended has a decision whose windows and start are all past, and its
    re-plan is pending. Its step must look again by its latest start (10:00; the round's
    answer wakes it sooner), not at its planned start: the scheduler takes a time past
    for now, and stepped it again at once, and again, until the round answered."""
    ctx = Context(settings=Settings(), clock=Frozen(T0.replace(hour=3)),
                  api=None)  # type: ignore[arg-type]  # the step makes no API call
    body = computejob("j", interruptible=True, duration="2h", max_delay="12h",
                      sites=["gansu"])
    body["metadata"].update(uid="u1", generation=1, creationTimestamp="2026-06-21T00:00:00Z")
    body["status"] = {
        "phase": "Suspended", "site": "gansu", "plannedStart": "2026-06-21T01:00:00Z",
        "latestStart": "2026-06-21T10:00:00Z", "reason": "greenest from 01:00",
        "windows": [{"start": "2026-06-21T01:00:00Z", "end": "2026-06-21T02:00:00Z"}],
        "startedAt": "2026-06-21T01:00:00Z", "observedGeneration": 1, "jobName": "j"}
    record = ctx.book.observe(body)
    ctx.cluster.set_child("u1", {
        "metadata": {"name": "j", "namespace": "batch", "resourceVersion": "7",
                     "labels": {LABEL_SITE: "gansu"},
                     "annotations": {ANNOTATION_OWNER_UID: "u1", ANNOTATION_RUN_SECONDS: "3600"}},
        "spec": {"suspend": True}, "status": {}})
    assert await JobDriver(ctx, record).step() == T0.replace(hour=10)
    assert ctx.planning.pending("cj/u1")  # re-planned at its site; the round wakes it

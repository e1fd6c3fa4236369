"""The plan's power estimate in the status: with every decision written, which estimate
its plan used (declared, learned from N runs, default), once."""

from __future__ import annotations

from suandian.controllers.jobacts import JobActs
from unit.controllers.test_accounting import context, record


async def test_the_status_says_which_estimate_the_plan_used() -> None:
    ctx = context()
    rec = record(ctx)
    acts = JobActs(ctx, rec, "cj/u1")
    await acts.patch_status({"plannedStart": "2026-06-21T01:00:00Z", "site": "gansu"})
    await acts.patch_status({"phase": "Running"})  # not a decision: no estimate
    first, second = ctx.api.patches  # type: ignore[attr-defined]
    assert first["powerEstimate"]["source"] == "declared"
    assert first["powerEstimate"]["watts"] == 4000.0
    assert "powerEstimate" not in second

"""A ComputeJob's end: its child Job finished; account the run and say so.

Performs :class:`~suandian.controllers.actions.Finish` for :mod:`.computejob`: phase
``Succeeded`` or ``Failed``, ``completedAt``, the ``Complete`` condition and the account
of the actual run (:func:`~suandian.controllers.accounting.account_run`, priced at what
the site was observed to be while it ran), its event and metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from suandian import metrics
from suandian.api.units import parse_time
from suandian.controllers.accounting import account_run
from suandian.controllers.jobacts import JobActs
from suandian.controllers.next_action import DEADLINE_GRACE, QUARTER, Child
from suandian.k8s import events
from suandian.k8s.decision import format_grams, format_time
from suandian.k8s.jobs import LABEL_SITE
from suandian.k8s.status import with_condition
from suandian.planner import JobTerms

__all__ = ["finish", "finished_late", "time_of"]


async def finish(acts: JobActs, child: Mapping[str, Any], seen: Child,
                 succeeded: bool) -> None:
    """``child`` as watched, ``seen`` the same as the step observed it."""
    ctx, record, status = acts.ctx, acts.record, acts.status
    terms = record.terms
    assert terms is not None
    child_status = child.get("status") or {}
    site = (child["metadata"].get("labels") or {}).get(LABEL_SITE) or status.get("site")
    done = time_of(child_status.get("completionTime")) or ctx.clock.now()
    started = time_of(child_status.get("startTime")) or done
    entry = ctx.sites.get(site or "")
    observed = ctx.observed(site or "", started, done, max_age=2 * (
        entry.site.spec.forecast.refresh_interval if entry else QUARTER))
    run = account_run(
        power_w=terms.power_w, pue=entry.site.spec.pue if entry else 1.0,
        run_s=seen.ran(done),
        observed_green_share=observed.green_share if observed else None,
        observed_carbon=observed.carbon_g_per_kwh if observed else None,
        planned_green_share=float(status.get("expectedGreenFraction") or 0.0),
        configured_carbon=entry.site.spec.grid.carbon_intensity if entry else 0.0)
    emissions = dict(status.get("emissions") or {})
    emissions["actualGrams"] = round(run.emissions_g, 1)
    ran = timedelta(seconds=int(run.run_s))
    outcome = "Succeeded" if succeeded else "Failed"
    fields: dict[str, Any] = {
        "phase": outcome,
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
        status.get("conditions"), "Complete", succeeded,
        "JobSucceeded" if succeeded else "JobFailed",
        f"ran {ran} at {site}, {run.green_share:.0%} green ({how})", ctx.clock.now())
    await acts.patch_status(fields)
    if succeeded:
        events.normal(record.ref(), "Succeeded", f"ran {ran} at {site}, "
                      f"{run.energy_kwh:.2f} kWh, {run.green_share:.0%} green, "
                      f"{format_grams(run.emissions_g)} CO2")
    else:
        events.warning(record.ref(), "Failed", f"the child Job failed at {site}")
    if site:
        metrics.record_job_finished(
            site, outcome=outcome,
            green_kwh=run.green_kwh, grid_kwh=run.grid_kwh, emissions_g=run.emissions_g,
            avoided_g=float(emissions.get("savedGrams") or 0.0))
        if finished_late(terms, record.created, status, done):
            metrics.record_deadline_miss(site)
    ctx.planning.remove(acts.key)


def finished_late(terms: JobTerms, created: datetime, status: Mapping[str, Any],
                  done: datetime) -> bool:
    """Whether a job finishing at ``done`` missed its deadline and was not counted yet.

    A job that started after its latest start was counted as a miss then (see
    ``JobActs.started_fields``): one job counts once, so it is not counted again here.
    """
    _, deadline = terms.window(created)
    if done <= deadline + DEADLINE_GRACE:
        return False
    started, latest = time_of(status.get("startedAt")), time_of(status.get("latestStart"))
    return not (started is not None and latest is not None
                and started > latest + DEADLINE_GRACE)


def time_of(value: Any) -> datetime | None:
    """A time from an object's field (None when absent or unreadable)."""
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None

"""A ComputeJob's end: its child Job finished; account the run and say so.

Performs :class:`~suandian.controllers.actions.Finish` for :mod:`.computejob`: phase
``Succeeded`` or ``Failed``, ``completedAt``, the ``Complete`` condition and the account
of the actual run (:func:`~suandian.controllers.accounting.measure_run`: energy from
Kepler/DCGM in Prometheus where configured, else the model, labelled in
``status.measurement``; priced slot by slot at what the site was observed to be while it
ran), its event, its metrics and its line in the green-power ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from suandian import metrics
from suandian.controllers.accounting import Measured, measure_run
from suandian.controllers.jobacts import JobActs
from suandian.controllers.next_action import DEADLINE_GRACE, Child
from suandian.k8s import events
from suandian.k8s.decision import format_grams, format_time, time_of
from suandian.k8s.jobs import LABEL_SITE
from suandian.k8s.status import with_condition
from suandian.planner import JobTerms

__all__ = ["finish", "finished_late", "time_of"]

log = logging.getLogger(__name__)


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
    measured = await measure_run(
        ctx, record, child, site or "", started, done, seen.ran(done), terms.power_w,
        float(status.get("expectedGreenFraction") or 0.0))
    run = measured.account
    emissions = dict(status.get("emissions") or {})
    emissions["actualGrams"] = round(run.emissions_g, 1)
    ran = timedelta(seconds=int(seen.ran(done)))
    outcome = "Succeeded" if succeeded else "Failed"
    fields: dict[str, Any] = {
        "phase": outcome,
        "completedAt": format_time(done), "energyKWh": round(run.energy_kwh, 4),
        "actualGreenFraction": round(run.green_share, 4),
        "greenPercent": round(run.green_share * 100), "emissions": emissions,
        "measurement": measured.status(),
    }
    if emissions.get("runNowGrams") is not None:
        planned_kwh = float(status.get("energyKWh") or 0.0)
        if measured.energy.provenance != "modelled" and planned_kwh > 0:
            # like for like: running at once would have drawn the measured energy too
            emissions["runNowGrams"] = round(
                float(emissions["runNowGrams"]) * run.energy_kwh / planned_kwh, 1)
        saved = float(emissions["runNowGrams"]) - run.emissions_g
        emissions["savedGrams"] = round(saved, 1)
        fields["saved"] = format_grams(saved)
    late = finished_late(terms, record.created, status, done)
    if late:
        fields["deadlineMissed"] = True
    how = _how(measured)
    fields["conditions"] = with_condition(
        status.get("conditions"), "Complete", succeeded,
        "JobSucceeded" if succeeded else "JobFailed",
        f"ran {ran} at {site}, {run.green_share:.0%} green ({how})", ctx.clock.now())
    await acts.patch_status(fields)
    if succeeded:
        events.normal(record.ref(), "Succeeded", f"ran {ran} at {site}, "
                      f"{run.energy_kwh:.2f} kWh ({measured.energy.provenance}), "
                      f"{run.green_share:.0%} green, {format_grams(run.emissions_g)} CO2")
    else:
        events.warning(record.ref(), "Failed", f"the child Job failed at {site}")
    if site:
        metrics.record_job_finished(
            site, outcome=outcome,
            green_kwh=run.green_kwh, grid_kwh=run.grid_kwh, emissions_g=run.emissions_g,
            avoided_g=float(emissions.get("savedGrams") or 0.0))
        _ledger(record.namespace, site, measured, float(emissions.get("savedGrams") or 0.0))
        if late:
            metrics.record_deadline_miss(site)
    ctx.planning.remove(acts.key)


def _how(measured: Measured) -> str:
    """The Complete condition's account of where the figures came from."""
    e, a = measured.energy, measured.account
    if e.provenance == "measured":
        energy = f"energy measured by {', '.join(e.exporters)}"
    elif e.provenance == "partial":
        energy = (f"energy {e.measured_share:.0%} measured by {', '.join(e.exporters)}, "
                  f"the rest modelled")
    else:
        energy = "energy modelled"
    supply = ("supply observed" if a.observed_share >= 1 else
              "supply planned: the site was not observed" if a.observed_share <= 0 else
              f"supply observed in {a.observed_share:.0%} of its slots")
    return f"{energy}; {supply}"


def _ledger(namespace: str, site: str, measured: Measured, saved_g: float) -> None:
    """Enter the run in the green-power ledger (a figure it refuses is logged, not
    raised: the completion stands)."""
    a = measured.account
    try:
        metrics.record_ledger_run(namespace=namespace, site=site,
                                  kwh_by_source=a.kwh_by_source, it_kwh=a.it_kwh,
                                  emissions_g=a.emissions_g, saved_g=saved_g,
                                  provenance=measured.energy.provenance)
    except ValueError as exc:
        log.error("the ledger refused the run of %s/%s: %s", namespace, site, exc)


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

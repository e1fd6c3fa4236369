"""What a finished job actually cost: energy (measured or modelled), green share, emissions.

The glue between :mod:`.completion` and :mod:`suandian.measure` (pure; the formulas are
there): build the settings' reader, read the child Job's pods' series over the run, cut
the run into the planner's 15-minute slots, fill what was not measured with the model,
split the facility energy over the site's observed supply slot by slot, and teach the
learned power model. A failing Prometheus never fails a completion: the run is
accounted with the model, the status says why, a ``MeasurementFailed`` event is posted
and ``suandian_measurement_failures_total`` counts it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from suandian import metrics
from suandian.api.powersite import PowerSite
from suandian.config import Settings
from suandian.controllers.book import JobRecord
from suandian.controllers.context import Context
from suandian.errors import ProviderError
from suandian.forecast.grid import DEFAULT_SLOT
from suandian.forecast.series import capacity_by_type
from suandian.k8s import events
from suandian.measure.energy import SlotEnergy, job_energy
from suandian.measure.prometheus import MeasureConfig, pod_pattern, read_job
from suandian.measure.series import Pieces
from suandian.measure.supply import Account, account, slot_supply

__all__ = ["SLOT_S", "Measured", "measure_run", "meter_from", "site_mix"]

log = logging.getLogger(__name__)

SLOT_S = DEFAULT_SLOT.total_seconds()  # the planner's slot


def meter_from(settings: Settings) -> MeasureConfig | None:
    """The Prometheus reader the settings describe (None: no ``SUANDIAN_MEASURE_URL``)."""
    if not settings.measure_url:
        return None
    return MeasureConfig(url=settings.measure_url, exporters=settings.measure_exporter_names,
                         kepler_metrics=settings.measure_kepler_metrics,
                         token=settings.measure_token, username=settings.measure_username,
                         password=settings.measure_password,
                         interval_s=settings.measure_interval.total_seconds(),
                         timeout_s=settings.measure_timeout)


def site_mix(site: PowerSite | None) -> dict[str, float]:
    """The site's green sources by configured capacity (kW), for slots without an
    observed mix."""
    if site is None:
        return {}
    mix = capacity_by_type(site)
    if site.spec.storage is not None:
        mix["storage"] = float(site.spec.storage.max_power_kw)
    return mix


@dataclass(frozen=True)
class Measured:
    """A run's energy by slot, its account, and its ``status.measurement``."""

    energy: SlotEnergy
    account: Account
    pue: float
    template: str

    def status(self) -> dict[str, Any]:
        e, a = self.energy, self.account
        out: dict[str, Any] = {
            "provenance": e.provenance, "exporters": list(e.exporters),
            "measuredShare": round(e.measured_share, 4),
            "itEnergyKWh": round(a.it_kwh, 6), "pue": self.pue,
            "energyBySourceKWh": {k: round(v, 6) for k, v in a.kwh_by_source.items()
                                  if v > 0},
            "observedShare": round(a.observed_share, 4),
        }
        watts = e.measured_watts
        if watts is not None:
            out["measuredWatts"] = round(watts, 1)
        if e.provenance != "measured":
            out["modelWatts"] = round(e.model_w, 1)
            out["reason"] = e.why[:512] or "not measured"
        if self.template:
            out["template"] = self.template
        return out


async def _read(ctx: Context, record: JobRecord, child: Mapping[str, Any],
                run: tuple[float, float]) -> tuple[dict[str, Pieces], str]:
    """The exporters' pieces for the child's pods, and why there are none."""
    meter = ctx.meter
    if meter is None:
        return {}, "no Prometheus configured (SUANDIAN_MEASURE_URL)"
    name = str(child["metadata"]["name"])
    try:
        indexed = (child.get("spec") or {}).get("completionMode") == "Indexed"
        readings = await read_job(meter, record.namespace, pod_pattern(name, indexed), run)
    except ProviderError as exc:
        reason, why = exc.reason, f"Prometheus failed ({exc.reason}): {exc}"
    except Exception as exc:  # a bug must not fail the completion: modelled, and said
        log.exception("reading the energy of %s failed", record.key)
        reason, why = "Other", f"reading Prometheus failed: {exc!r}"
    else:
        if not any(p.covered for p in readings.values()):
            return readings, (f"no {' or '.join(meter.exporters)} series for pods "
                              f"{name}-* in {record.namespace}")
        return readings, ""
    metrics.record_measurement_failure(reason)
    events.warning(record.ref(), "MeasurementFailed", f"energy modelled: {why}"[:1024])
    return {}, why


async def measure_run(ctx: Context, record: JobRecord, child: Mapping[str, Any],
                      site: str, started: datetime, done: datetime, run_s: float,
                      model_w: float, planned_share: float) -> Measured:
    """The run's energy and account (see the module docstring)."""
    entry = ctx.sites.get(site)
    spec = entry.site.spec if entry else None
    run = (started.timestamp(), max(done, started).timestamp())
    readings, why = await _read(ctx, record, child, run)
    energy = job_energy(readings, run, run_s, model_w, SLOT_S, why)
    max_age = 2 * (spec.forecast.refresh_interval.total_seconds() if spec else SLOT_S)
    supply = slot_supply(energy.edges, list(ctx.samples.get(site, ())), max_age_s=max_age,
                         planned_share=planned_share,
                         configured_carbon=spec.grid.carbon_intensity if spec else 0.0,
                         fallback_mix=site_mix(entry.site if entry else None))
    pue = spec.pue if spec else 1.0
    template = record.power.template if record.power else ""
    watts = energy.measured_watts
    if template and watts is not None:
        ctx.power_model.learn_run(template, record.uid, watts, energy.measured_share)
    return Measured(energy, account(energy, supply, pue), pue, template)

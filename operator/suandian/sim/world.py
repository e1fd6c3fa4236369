"""The simulated world: what really happened (actuals), what policies were told
(forecasts with error, or the real forecasts a scenario gives), and the jobs in slot units.

Actuals come from the built-in models, each signal a scenario gives under ``actuals:``
replacing its model (checked to cover the run: :mod:`suandian.sim.inputs`). Forecasts
are issued at each refresh from the actuals with injected error
(:func:`suandian.forecast.forecast_from_actuals`, the scenario's error model), seeded by
(scenario seed, refresh index), so every policy sees exactly the same forecasts and the
run is reproducible; a signal with a real forecast (``forecasts:``) is told as given:
one series (``time,value``: the forecast of each time), or vintages
(``issued,time,value``: at each refresh the latest forecast of each slot issued by
then, :mod:`suandian.sim.vintages`).

Memory and time are linear in the run's length: the series are arrays over the run, and
only the forecast of the current refresh is kept (each policy replays the clock from the
start; re-issuing a forecast costs less than holding a year of them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from suandian.api.powersite import PowerSite
from suandian.errors import FieldError, ScenarioError
from suandian.forecast import SiteForecast, TimeGrid, forecast_from_actuals, simulate_actuals
from suandian.forecast.actuals import series_means
from suandian.forecast.storage import Battery, run_batteries
from suandian.planner import DEFAULT_RESOURCES
from suandian.planner.data import site_data
from suandian.planner.model import FloatArray
from suandian.planner.terms import mean_kw, slots_for
from suandian.sim.grid_events import sim_events, surplus_kw, tariff_per_kwh
from suandian.sim.inputs import CARBON, SeriesFile, apply_bands, load_series, usable_slots
from suandian.sim.scenario import Scenario
from suandian.sim.vintages import (
    Vintages,
    apply_vintages,
    check_coverage,
    is_vintage_file,
    read_vintages,
)
from suandian.sim.workload import TraceJob

__all__ = ["Signals", "SimJob", "World"]


@dataclass(frozen=True)
class SimJob:
    """A trace job in slot units; ``power_kw`` is mean IT power over its ``n`` slots."""

    index: int
    trace: TraceJob
    submit: int
    n: int
    power_kw: float
    deadline: int  # slot index by whose start the job must be done (exclusive end)
    home: int
    allowed: tuple[int, ...]
    resources: FloatArray
    interruptible: bool
    nominal: int = -1  # slot of the nominal start (submit <= nominal <= deadline - n)
    data_row: int = -1  # the site where its data lives (-1: it reads none)
    data_wait: tuple[int, ...] = ()  # per site: slots its data takes to get there
    data_kwh: tuple[float, ...] = ()  # per site: network energy of moving it there

    def __post_init__(self) -> None:
        if self.nominal < 0:
            object.__setattr__(self, "nominal", self.submit)


@dataclass(frozen=True)
class Signals:
    """What a policy sees from slot ``t`` on: arrays ``(sites, slots)``."""

    green_p50: FloatArray
    green_p10: FloatArray
    carbon: FloatArray
    by_source: tuple[Mapping[str, FloatArray], ...]

    @property
    def slots(self) -> int:
        return int(self.green_p50.shape[1])


class World:
    """Actuals, forecasts and jobs of one scenario run."""

    def __init__(self, scenario: Scenario, jobs: list[TraceJob], *, forecast_error: float,
                 seed: int) -> None:
        self.scenario = scenario
        self.names = scenario.site_names
        self.slot = scenario.slot
        self.h = scenario.slot.total_seconds() / 3600.0
        self.error = forecast_error
        self.seed = seed
        self.resources = DEFAULT_RESOURCES
        self.links = scenario.workload.links  # between sites, for the jobs' data
        start = scenario.start
        slot_s = scenario.slot.total_seconds()
        self.horizon = max(1, round(scenario.horizon.total_seconds() / slot_s))
        self.refresh = max(1, round(scenario.refresh.total_seconds() / slot_s))
        self.jobs = [self._sim_job(i, j) for i, j in enumerate(jobs)]
        if (scenario.trace is None and scenario.workload.window is not None and jobs
                and all(j.nominal is None for j in jobs)):
            raise ScenarioError("scenario", [FieldError("workload.window", (
                "the generator was not handed the window (suandian.sim.run.build_world "
                "must pass window= and nominal_hour= to generate_trace); give the jobs "
                "as a trace with nominal and window columns meanwhile"))])
        last = max([j.deadline for j in self.jobs] + [round(scenario.days * 86400 / slot_s)])
        self.slots = last + 1
        full = TimeGrid(start, scenario.slot, self.slots + self.horizon)
        by_site = {s.metadata.name or "": s for s in scenario.sites}
        actual_files = self._read(scenario.actual_csv, by_site, full)
        self.told_files, self.vintages = self._read_forecasts(scenario.forecast_csv, by_site,
                                                              full)
        told_files = self.told_files
        # the horizon past the run reaches as far as every file has data (the forecasts
        # near the end are shorter), never into model values a file did not give
        usable = usable_slots([actual_files, told_files], full.slots)
        self.grid = TimeGrid(start, scenario.slot, usable)
        modelled = simulate_actuals(scenario.sites, self.grid, seed)
        self.actuals = {n: _with_series(modelled[n], actual_files.get(n, {}), by_site[n])
                        for n in self.names}
        self.told = {n: _with_series(self.actuals[n], told_files.get(n, {}), by_site[n])
                     for n in self.names}
        self.exact = {n: frozenset(told_files.get(n, {})) | frozenset(self.vintages.get(n, {}))
                      for n in self.names}
        self.means = {n: series_means(self.actuals[n]) for n in self.names}
        self.error_model = scenario.error_model
        self.own_green = np.stack([self.actuals[n].green_supply_kw for n in self.names])
        self.events = sim_events(scenario.grid_events, self.names, start, scenario.slot,
                                 self.grid.slots)
        # an absorb event's surplus is there for whoever runs then, but only a policy
        # that reads the event knows: the actuals have it, the forecasts do not
        self.green = self.own_green + surplus_kw(self.events, len(self.names),
                                                 self.own_green.shape[1])
        # what grid power costs under the run's Price events (None: no tariff)
        self.tariff = tariff_per_kwh(self.events, start, scenario.slot, len(self.names),
                                     self.own_green.shape[1])
        self.carbon = np.stack([self.actuals[n].carbon_g_per_kwh for n in self.names])
        self.pue = np.array([s.spec.pue for s in scenario.sites])
        self.import_limit = np.array([s.spec.grid.import_limit_kw for s in scenario.sites])
        self.capacity = np.array([[scenario.capacity_of(n).get(r, np.inf)
                                   for r in self.resources] for n in self.names])
        self._issue = -1
        self._issued: list[SiteForecast] = []

    def _read(self, files: Mapping[str, Mapping[str, Path]], sites: Mapping[str, PowerSite],
              grid: TimeGrid) -> dict[str, dict[str, SeriesFile]]:
        """Each site's CSV series on ``grid``, checked to cover the run's slots."""
        out: dict[str, dict[str, SeriesFile]] = {}
        for name, signals in files.items():
            site = sites[name]
            out[name] = {signal: load_series(path, signal, site, grid, self.slots)
                         for signal, path in signals.items()}
        return out

    def _read_forecasts(self, files: Mapping[str, Mapping[str, Path]],
                        sites: Mapping[str, PowerSite], grid: TimeGrid,
                        ) -> tuple[dict[str, dict[str, SeriesFile]],
                                   dict[str, dict[str, Vintages]]]:
        """The real forecasts: series (``time,value``) as :meth:`_read`, and vintages
        (``issued,time,value``), checked to tell every refresh of the run its present."""
        series: dict[str, dict[str, Path]] = {}
        vintages: dict[str, dict[str, Vintages]] = {}
        for name, signals in files.items():
            for signal, path in signals.items():
                if is_vintage_file(path):
                    vintages.setdefault(name, {})[signal] = read_vintages(
                        path, signal, sites[name])
                else:
                    series.setdefault(name, {})[signal] = path
        for by_signal in vintages.values():
            check_coverage(by_signal, grid, self.slots, self.refresh)
        return self._read(series, sites, grid), vintages

    @property
    def has_nominal_starts(self) -> bool:
        """Whether a job's nominal start differs from its submission (a trace's nominal
        column, the generator's window): then the ``nominal`` row is a baseline of its
        own (the saving against it is what shifting in the window brings), not run-now
        again."""
        return any(j.nominal != j.submit for j in self.jobs)

    def time_at(self, t: int) -> datetime:
        return self.grid.time_at(t)

    def _sim_job(self, i: int, j: TraceJob) -> SimJob:
        slot_s = self.slot.total_seconds()
        start = self.scenario.start
        n = slots_for(j.duration, self.slot)
        submit = max(0, math.ceil((j.submit - start).total_seconds() / slot_s - 1e-9))
        deadline = math.floor((j.deadline - start).total_seconds() / slot_s + 1e-9)
        allowed = tuple(self.names.index(s) for s in j.sites)
        nominal = math.ceil((j.nominal_start - start).total_seconds() / slot_s - 1e-9)
        deadline = max(deadline, submit + n)
        return SimJob(
            index=i, trace=j, submit=submit, n=n, nominal=min(max(nominal, submit),
                                                                deadline - n),
            power_kw=mean_kw(j.power_w, j.duration, n, self.slot),
            deadline=deadline, home=allowed[0], allowed=allowed,
            resources=np.array([j.resources.get(r, 0.0) for r in self.resources]),
            interruptible=j.interruptible, **self._data_of(j),
        )

    def _data_of(self, j: TraceJob) -> dict[str, Any]:
        """A job's data in slot units: where it lives, how many slots and kWh moving it
        to each site takes (:func:`suandian.planner.data.site_data`, as the planner
        counts it); nothing for a job without data."""
        if j.data_gb <= 0:
            return {}
        data = site_data(self.names, self.links, j.data_gb, j.data_site, 0, self.slot, -1,
                         -1)
        return {"data_row": data.row, "data_wait": tuple(int(x) for x in data.slots),
                "data_kwh": tuple(float(x) for x in data.kwh)}

    def signals(self, t: int) -> Signals:
        """The forecast a policy holds at slot ``t``: issued at the last refresh, from ``t``."""
        issue = (t // self.refresh) * self.refresh
        if issue != self._issue:
            rng = np.random.default_rng([self.seed, issue])
            self._issued = [apply_bands(apply_vintages(
                forecast_from_actuals(self.told[n], self.time_at(issue), self.horizon,
                                      self.error, rng, model=self.error_model,
                                      scale=self.means[n], exact=self.exact[n]),
                self.vintages.get(n, {})), self.told_files.get(n, {}), issue)
                for n in self.names]
            self._issue = issue
        offset = t - issue
        fcs = self._issued
        length = min(f.grid.slots for f in fcs) - offset
        cut = slice(offset, offset + length)
        g50 = np.stack([(f.green_total_kw + f.storage_kw)[cut] for f in fcs])
        g10 = np.stack([(f.green_p10_kw + f.storage_kw)[cut] for f in fcs])
        return Signals(
            green_p50=g50, green_p10=np.minimum(g10, g50),
            carbon=np.stack([f.carbon_g_per_kwh[cut] for f in fcs]),
            by_source=tuple({k: v[cut] for k, v in f.green_kw.items()} for f in fcs),
        )


def _with_series(base: SiteForecast, files: Mapping[str, SeriesFile],
                 site: PowerSite) -> SiteForecast:
    """``base`` with the signals ``files`` give replaced (bands collapsed onto them, as
    for the truth), and the battery re-run on the new green supply."""
    if not files:
        return base
    n = base.grid.slots
    green = dict(base.green_kw)
    carbon = base.carbon_g_per_kwh
    for signal, f in files.items():
        if signal == CARBON:
            carbon = f.values[:n]
        else:
            green[signal] = f.values[:n]
    total = np.sum(list(green.values()), axis=0) if green else np.zeros(n)
    storage = base.storage_kw
    spec = site.spec.storage
    if spec is not None and any(s != CARBON for s in files):
        battery = Battery.from_spec(spec)
        storage = run_batteries(total[None, :], np.array([float(total.mean())]), [battery],
                                base.grid.slot_hours).discharge_kw[0]
    return replace(base, green_kw=green, green_total_kw=total, green_p10_kw=total,
                   green_p90_kw=total, storage_kw=storage, carbon_g_per_kwh=carbon,
                   carbon_p10=carbon, carbon_p90=carbon)

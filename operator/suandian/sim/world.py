"""The simulated world: what really happened (actuals), what policies were told
(forecasts with error), and the jobs in slot units.

Forecasts are issued at each refresh from the actuals with injected error
(:func:`suandian.forecast.forecast_from_actuals`), seeded by (scenario seed, refresh
index), so every policy sees exactly the same forecasts and the run is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from suandian.forecast import SiteForecast, TimeGrid, forecast_from_actuals, simulate_actuals
from suandian.forecast.providers.csv import read_signal_file
from suandian.forecast.resample import resample
from suandian.planner import DEFAULT_RESOURCES
from suandian.planner.model import FloatArray
from suandian.planner.terms import mean_kw, slots_for
from suandian.sim.scenario import Scenario
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
        start = scenario.start
        slot_s = scenario.slot.total_seconds()
        self.horizon = max(1, round(scenario.horizon.total_seconds() / slot_s))
        self.refresh = max(1, round(scenario.refresh.total_seconds() / slot_s))
        self.jobs = [self._sim_job(i, j) for i, j in enumerate(jobs)]
        last = max([j.deadline for j in self.jobs] + [round(scenario.days * 86400 / slot_s)])
        self.slots = last + 1
        self.grid = TimeGrid(start, scenario.slot, self.slots + self.horizon)
        actuals = simulate_actuals(scenario.sites, self.grid, seed)
        self.actuals = {n: self._with_csv(n, actuals[n]) for n in self.names}
        self.green = np.stack([self.actuals[n].green_supply_kw for n in self.names])
        self.carbon = np.stack([self.actuals[n].carbon_g_per_kwh for n in self.names])
        self.pue = np.array([s.spec.pue for s in scenario.sites])
        self.import_limit = np.array([s.spec.grid.import_limit_kw for s in scenario.sites])
        self.capacity = np.array([[scenario.capacity_of(n).get(r, np.inf)
                                   for r in self.resources] for n in self.names])
        self._issued: dict[int, list[SiteForecast]] = {}

    def time_at(self, t: int) -> datetime:
        return self.grid.time_at(t)

    def _sim_job(self, i: int, j: TraceJob) -> SimJob:
        slot_s = self.slot.total_seconds()
        start = self.scenario.start
        n = slots_for(j.duration, self.slot)
        submit = max(0, math.ceil((j.submit - start).total_seconds() / slot_s - 1e-9))
        deadline = math.floor((j.deadline - start).total_seconds() / slot_s + 1e-9)
        allowed = tuple(self.names.index(s) for s in j.sites)
        return SimJob(
            index=i, trace=j, submit=submit, n=n,
            power_kw=mean_kw(j.power_w, j.duration, n, self.slot),
            deadline=max(deadline, submit + n), home=allowed[0], allowed=allowed,
            resources=np.array([j.resources.get(r, 0.0) for r in self.resources]),
            interruptible=j.interruptible,
        )

    def _with_csv(self, name: str, actual: SiteForecast) -> SiteForecast:
        """Replace modelled signals by the scenario's CSV series, where it gives them."""
        files = self.scenario.signal_csv.get(name)
        if not files:
            return actual
        green = dict(actual.green_kw)
        carbon = actual.carbon_g_per_kwh
        for signal, path in files.items():
            times, values = read_signal_file(path, signal)
            series, covered = resample(times, values, self.grid, "rate")
            series = np.where(covered > 0, np.nan_to_num(series), 0.0)
            if signal == "carbonIntensity":
                carbon = np.where(covered > 0, series, carbon)
            else:
                green[signal] = series
        total = np.sum(list(green.values()), axis=0)
        return replace(actual, green_kw=green, green_total_kw=total, green_p10_kw=total,
                       green_p90_kw=total, carbon_g_per_kwh=carbon, carbon_p10=carbon,
                       carbon_p90=carbon)

    def signals(self, t: int) -> Signals:
        """The forecast a policy holds at slot ``t``: issued at the last refresh, from ``t``."""
        issue = (t // self.refresh) * self.refresh
        if issue not in self._issued:
            rng = np.random.default_rng([self.seed, issue])
            self._issued[issue] = [
                forecast_from_actuals(self.actuals[n], self.time_at(issue), self.horizon,
                                      self.error, rng) for n in self.names]
        offset = t - issue
        fcs = self._issued[issue]
        length = min(f.grid.slots for f in fcs) - offset
        cut = slice(offset, offset + length)
        g50 = np.stack([(f.green_total_kw + f.storage_kw)[cut] for f in fcs])
        g10 = np.stack([(f.green_p10_kw + f.storage_kw)[cut] for f in fcs])
        return Signals(
            green_p50=g50, green_p10=np.minimum(g10, g50),
            carbon=np.stack([f.carbon_g_per_kwh[cut] for f in fcs]),
            by_source=tuple({k: v[cut] for k, v in f.green_kw.items()} for f in fcs),
        )

"""Scenario files: which sites, which forecasts, which jobs, and how to replay them.

A scenario is a YAML mapping (the built-ins live in ``suandian/sim/scenarios/``)::

    name: my-week
    start: 2026-06-01T00:00:00Z   # first slot (UTC, aligned to the slot)
    days: 7                       # days of job submissions
    slot: 1h                      # simulation and planning slot
    horizon: 48h                  # forecast horizon the policies see
    refresh: 1h                   # forecast refresh (Suandian re-plans on each)
    forecastError: 0.15           # relative error at 24 h lead
    seed: 1
    sites: [ningxia, gansu, ./my-site.yaml, {apiVersion: ..., kind: PowerSite, ...}]
    forecasts:                    # optional: CSV `time,value` per signal, replacing the models
      ningxia: {solar: ningxia-solar.csv, carbonIntensity: ningxia-ci.csv}
    capacity:                     # free capacity per site (planner units), `default` for all
      default: {cpu: 200000, memory: 800000, nvidia.com/gpu: 20000}
    jobs: trace.csv               # a job trace (see suandian.sim.workload), or:
    workload: {jobsPerDay: 30, powerScale: 1.0, residencyShare: 0.25}
    threshold: {gPerKWh: 250, maxDelay: 24h}   # the Compute Gardener baseline's settings

Paths are relative to the scenario file. Site names refer to the embedded sites.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from suandian.api.powersite import PowerSite
from suandian.api.units import parse_duration
from suandian.api.validation import parse_powersite
from suandian.errors import FieldError, InvalidSpecError, ScenarioError

__all__ = ["Scenario", "Workload", "builtin_scenarios", "load_scenario", "load_site"]

DEFAULT_SCENARIO = "east-data-west-computing"


@dataclass(frozen=True)
class Workload:
    """Settings of the built-in trace generator."""

    jobs_per_day: float = 30.0
    power_scale: float = 1.0
    residency_share: float = 0.25


@dataclass(frozen=True)
class Scenario:
    """A parsed, validated scenario."""

    name: str
    description: str
    sites: tuple[PowerSite, ...]
    start: datetime
    days: int
    slot: timedelta
    horizon: timedelta
    refresh: timedelta
    forecast_error: float
    seed: int
    capacity: dict[str, dict[str, float]]
    threshold_g_per_kwh: float
    threshold_max_delay: timedelta
    trace: Path | None = None
    workload: Workload = field(default_factory=Workload)
    signal_csv: dict[str, dict[str, Path]] = field(default_factory=dict)

    @property
    def site_names(self) -> tuple[str, ...]:
        return tuple(s.metadata.name or "" for s in self.sites)

    def capacity_of(self, site: str) -> dict[str, float]:
        """Free capacity of a site: its own entry, else ``default``, else unbounded."""
        return self.capacity.get(site, self.capacity.get("default", {}))


def builtin_scenarios() -> list[str]:
    """Names of the embedded scenarios."""
    folder = resources.files("suandian.sim") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_site(name: str) -> PowerSite:
    """An embedded PowerSite by name (``suandian/forecast/data/sites/NAME.yaml``)."""
    path = resources.files("suandian.forecast") / "data" / "sites" / f"{name}.yaml"
    if not path.is_file():
        raise ScenarioError("scenario", [FieldError("sites", f"no embedded site {name!r}")])
    return parse_powersite(yaml.safe_load(path.read_text(encoding="utf-8")))


def load_scenario(name_or_path: str | None) -> Scenario:
    """A built-in scenario by name, or a scenario YAML file by path."""
    name = name_or_path or DEFAULT_SCENARIO
    if name in builtin_scenarios():
        text = (resources.files("suandian.sim") / "scenarios" / f"{name}.yaml").read_text(
            encoding="utf-8")
        return parse_scenario(yaml.safe_load(text), base=None)
    path = Path(name)
    if not path.is_file():
        raise ScenarioError("scenario", [FieldError(
            "scenario", f"{name!r} is neither a built-in ({', '.join(builtin_scenarios())}) "
                        "nor a file")])
    return parse_scenario(yaml.safe_load(path.read_text(encoding="utf-8")), base=path.parent)


def _need(doc: dict[str, Any], key: str, default: Any) -> Any:
    return doc.get(key, default)


def parse_scenario(doc: Any, base: Path | None) -> Scenario:
    """Validate a scenario mapping; every problem is reported with its key."""
    if not isinstance(doc, dict):
        raise ScenarioError("scenario", [FieldError("", "a scenario is a YAML mapping")])
    errors: list[FieldError] = []
    sites: list[PowerSite] = []
    for i, entry in enumerate(doc.get("sites") or []):
        try:
            sites.append(_site(entry, base))
        except InvalidSpecError as exc:
            errors += [FieldError(f"sites[{i}].{e.path}", e.message) for e in exc.errors]
    if not sites:
        errors.append(FieldError("sites", "name at least one site"))
    names = [s.metadata.name for s in sites]
    try:
        start = _start(doc.get("start", "2026-06-01T00:00:00Z"))
        slot = parse_duration(str(_need(doc, "slot", "1h")))
        horizon = parse_duration(str(_need(doc, "horizon", "48h")))
        refresh = parse_duration(str(_need(doc, "refresh", "1h")))
        threshold = doc.get("threshold") or {}
        max_delay = parse_duration(str(threshold.get("maxDelay", "24h")))
    except (ValueError, TypeError) as exc:
        raise ScenarioError("scenario", [*errors, FieldError("", str(exc))]) from None
    days = int(doc.get("days", 7))
    error = float(doc.get("forecastError", 0.15))
    if not 1 <= days <= 60:
        errors.append(FieldError("days", "must be within 1..60"))
    if not 0.0 <= error <= 1.0:
        errors.append(FieldError("forecastError", "must be within 0..1"))
    if refresh < slot or horizon < slot:
        errors.append(FieldError("refresh", "refresh and horizon must be at least one slot"))
    capacity = {str(k): {str(r): float(v) for r, v in (vals or {}).items()}
                for k, vals in (doc.get("capacity") or {}).items()}
    signal_csv: dict[str, dict[str, Path]] = {}
    for site, signals in (doc.get("forecasts") or {}).items():
        if site not in names:
            errors.append(FieldError(f"forecasts.{site}", "not a site of this scenario"))
            continue
        signal_csv[site] = {k: _path(v, base) for k, v in (signals or {}).items()}
    trace = _path(doc["jobs"], base) if doc.get("jobs") else None
    if trace is not None and not trace.is_file():
        errors.append(FieldError("jobs", f"no such file {trace}"))
    w = doc.get("workload") or {}
    if errors:
        raise ScenarioError("scenario", errors)
    return Scenario(
        name=str(doc.get("name", "scenario")), description=str(doc.get("description", "")),
        sites=tuple(sites), start=start, days=days, slot=slot, horizon=horizon,
        refresh=refresh, forecast_error=error, seed=int(doc.get("seed", 1)), capacity=capacity,
        threshold_g_per_kwh=float(threshold.get("gPerKWh", 250.0)),
        threshold_max_delay=max_delay, trace=trace,
        workload=Workload(float(w.get("jobsPerDay", 30.0)), float(w.get("powerScale", 1.0)),
                          float(w.get("residencyShare", 0.25))),
        signal_csv=signal_csv,
    )


def _site(entry: Any, base: Path | None) -> PowerSite:
    if isinstance(entry, dict):
        return parse_powersite(entry)
    text = str(entry)
    if text.endswith((".yaml", ".yml")):
        return parse_powersite(yaml.safe_load(_path(text, base).read_text(encoding="utf-8")))
    return load_site(text)


def _path(value: Any, base: Path | None) -> Path:
    path = Path(str(value))
    return path if path.is_absolute() or base is None else base / path


def _start(value: Any) -> datetime:
    t = value if isinstance(value, datetime) else datetime.fromisoformat(
        str(value).replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def read_signal_csv(path: Path) -> tuple[list[str], list[float]]:
    """Rows of ``time,value`` (header optional)."""
    times, values = [], []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if not row or row[0].strip().lower() == "time":
                continue
            times.append(row[0].strip())
            values.append(float(row[1]))
    return times, values

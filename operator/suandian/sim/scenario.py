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
                                  # left out: the eight embedded hubs
    forecasts:                    # optional: CSV `time,value` per signal, replacing the models
      ningxia: {solar: ningxia-solar.csv, carbonIntensity: ningxia-ci.csv}
    capacity:                     # free capacity per site (planner units), `default` for all
      default: {cpu: 200000, memory: 800000, nvidia.com/gpu: 20000}
    jobs: trace.csv               # a job trace (see suandian.sim.workload), or:
    workload: {jobsPerDay: 30, powerScale: 1.0, residencyShare: 0.25}
    threshold: {gPerKWh: 250, maxDelay: 24h}   # the Compute Gardener baseline's settings

Paths are relative to the scenario file. Site names refer to the embedded sites. Every
problem is reported at once, each with its key (a misspelt key too); signal CSVs get
the checks of the CSV forecast provider (``forecast.providers.csv.parse_csv``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from suandian.api.powersite import PowerSite
from suandian.api.units import parse_duration
from suandian.api.validation import parse_powersite
from suandian.errors import FieldError, InputFileError, InvalidSpecError, ScenarioError
from suandian.files import load_yaml
from suandian.forecast import builtin_sites

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
    sites = builtin_sites()
    if name not in sites:
        raise ScenarioError("scenario", [FieldError("sites", (
            f"{name!r} is not an embedded site ({', '.join(sorted(sites))}), nor a "
            "PowerSite file (a path ending in .yaml)"))])
    return sites[name]


def load_scenario(name_or_path: str | None) -> Scenario:
    """A built-in scenario by name, or a scenario YAML file by path."""
    name = name_or_path or DEFAULT_SCENARIO
    if name in builtin_scenarios():
        text = (resources.files("suandian.sim") / "scenarios" / f"{name}.yaml").read_text(
            encoding="utf-8")
        return parse_scenario(yaml.safe_load(text), base=None)
    path = Path(name)
    if not path.exists():
        raise InputFileError(name, [FieldError("", (
            f"no such file, nor a built-in scenario ({', '.join(builtin_scenarios())})"))])
    doc = load_yaml(path)
    try:
        return parse_scenario(doc, base=path.parent)
    except ScenarioError as exc:
        raise InputFileError(path, exc.errors) from None


KEYS = ("name", "description", "start", "days", "slot", "horizon", "refresh",
        "forecastError", "seed", "sites", "forecasts", "capacity", "jobs", "workload",
        "threshold")
"""The keys a scenario may have (a misspelt one is refused, naming these)."""


class _Fields:
    """Reads a scenario's values, each by its key, collecting every problem."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.errors: list[FieldError] = []

    def get(self, key: str, default: Any, convert: Any, what: str) -> Any:
        node: Any = self.doc
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                return default
        try:
            return convert(node)
        except (ValueError, TypeError) as exc:
            detail = f": {exc}" if convert in (parse_duration, _start) else ""
            self.errors.append(FieldError(key, f"{node!r} is not {what}{detail}"))
            return default

    def bounded(self, key: str, value: float, low: float, high: float) -> None:
        if not low <= value <= high:
            self.errors.append(FieldError(key, f"{value:g} is outside {low:g}..{high:g}"))


def _whole(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number) or isinstance(value, bool):
        raise ValueError(value)
    return number


def parse_scenario(doc: Any, base: Path | None) -> Scenario:
    """Validate a scenario mapping; every problem is reported with its key."""
    if not isinstance(doc, dict):
        raise ScenarioError("scenario", [FieldError("", (
            "a scenario is a YAML mapping of name, sites, days, ... (see `suandian simulate "
            "--help`); this file holds " + ("nothing" if doc is None else type(doc).__name__)))])
    f = _Fields(doc)
    unknown = sorted(str(k) for k in doc if k not in KEYS)
    for key in unknown:
        f.errors.append(FieldError(key, f"unknown key (check its spelling); keys are: "
                                        f"{', '.join(KEYS)}"))
    sites = _sites(doc.get("sites"), base, f.errors)
    names = [s.metadata.name for s in sites]
    start = f.get("start", _start("2026-06-01T00:00:00Z"), _start, "an RFC 3339 time")
    slot = f.get("slot", timedelta(hours=1), parse_duration, "a duration")
    horizon = f.get("horizon", timedelta(hours=48), parse_duration, "a duration")
    refresh = f.get("refresh", timedelta(hours=1), parse_duration, "a duration")
    max_delay = f.get("threshold.maxDelay", timedelta(hours=24), parse_duration, "a duration")
    days = f.get("days", 7, _whole, "a whole number of days")
    error = f.get("forecastError", 0.15, _finite, "a number, e.g. 0.15")
    seed = f.get("seed", 1, _whole, "a whole number")
    threshold = f.get("threshold.gPerKWh", 250.0, _finite, "a number of gCO2/kWh")
    f.bounded("days", days, 1, 60)
    f.bounded("forecastError", error, 0.0, 1.0)
    if slot <= timedelta(0) or refresh < slot or horizon < slot:
        f.errors.append(FieldError("refresh", "slot must be positive, and refresh and "
                                              "horizon at least one slot"))
    capacity = _capacity(doc.get("capacity"), f)
    signal_csv: dict[str, dict[str, Path]] = {}
    for site, signals in (doc.get("forecasts") or {}).items():
        if site not in names:
            f.errors.append(FieldError(f"forecasts.{site}", "not a site of this scenario"))
            continue
        signal_csv[site] = {k: _path(v, base) for k, v in (signals or {}).items()}
        for signal, path in signal_csv[site].items():
            if not path.is_file():
                f.errors.append(FieldError(f"forecasts.{site}.{signal}",
                                           f"no such file {path}"))
    trace = _path(doc["jobs"], base) if doc.get("jobs") else None
    if trace is not None and not trace.is_file():
        f.errors.append(FieldError("jobs", f"no such file {trace}"))
    workload = Workload(f.get("workload.jobsPerDay", 30.0, _finite, "a number"),
                        f.get("workload.powerScale", 1.0, _finite, "a number"),
                        f.get("workload.residencyShare", 0.25, _finite, "a number"))
    f.bounded("workload.residencyShare", workload.residency_share, 0.0, 1.0)
    if f.errors:
        raise ScenarioError("scenario", f.errors)
    return Scenario(
        name=str(doc.get("name", "scenario")), description=str(doc.get("description", "")),
        sites=tuple(sites), start=start, days=days, slot=slot, horizon=horizon,
        refresh=refresh, forecast_error=error, seed=seed, capacity=capacity,
        threshold_g_per_kwh=threshold, threshold_max_delay=max_delay, trace=trace,
        workload=workload, signal_csv=signal_csv,
    )


def _sites(entries: Any, base: Path | None, errors: list[FieldError]) -> list[PowerSite]:
    """The scenario's sites: the embedded ones when ``sites`` is left out."""
    if entries is None:
        return list(builtin_sites().values())
    if not isinstance(entries, list) or not entries:
        errors.append(FieldError("sites", "name at least one site: an embedded site's name "
                                          f"({', '.join(sorted(builtin_sites()))}), a "
                                          "PowerSite file, or an inline manifest"))
        return []
    sites: list[PowerSite] = []
    for i, entry in enumerate(entries):
        try:
            sites.append(_site(entry, base))
        except InvalidSpecError as exc:
            where = exc.path if isinstance(exc, InputFileError) else None
            for e in exc.errors:
                path = ".".join(p for p in (f"sites[{i}]", e.path) if p and p != "sites")
                errors.append(FieldError(path, f"{where}: {e.message}" if where else e.message))
    return sites


def _site(entry: Any, base: Path | None) -> PowerSite:
    if isinstance(entry, dict):
        return parse_powersite(_csv_paths_relative_to(entry, base))
    text = str(entry)
    if text.endswith((".yaml", ".yml")):
        manifest = load_yaml(_path(text, base))
        if not isinstance(manifest, dict):
            raise InvalidSpecError("PowerSite", [FieldError("", "not a PowerSite manifest")])
        return parse_powersite(_csv_paths_relative_to(manifest, base))
    return load_site(text)


def _csv_paths_relative_to(manifest: dict[str, Any], folder: Path | None) -> dict[str, Any]:
    """The manifest with relative ``csv.paths`` made relative to the scenario's folder."""
    if folder is None:
        return manifest
    forecast = (manifest.get("spec") or {}).get("forecast") or {}
    for block in ("supply", "carbon"):
        paths = ((forecast.get(block) or {}).get("csv") or {}).get("paths")
        if isinstance(paths, dict):
            for signal, p in paths.items():
                if isinstance(p, str) and not Path(p).is_absolute():
                    paths[signal] = str(folder / p)
    return manifest


def _capacity(doc: Any, f: _Fields) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for site, values in (doc or {}).items() if isinstance(doc, dict) else ():
        out[str(site)] = {str(r): f.get(f"capacity.{site}.{r}", math.inf, _finite, "a number")
                          for r in (values or {})}
    return out


def _path(value: Any, base: Path | None) -> Path:
    path = Path(str(value))
    return path if path.is_absolute() or base is None else base / path


def _start(value: Any) -> datetime:
    t = value if isinstance(value, datetime) else datetime.fromisoformat(
        str(value).replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)

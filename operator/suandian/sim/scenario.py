"""Scenario files: which sites, which forecasts, which jobs, and how to replay them.

A scenario is a YAML mapping (the built-ins live in ``suandian/sim/scenarios/``)::

    name: my-week
    start: 2026-06-01T00:00:00Z   # first slot (UTC, aligned to the slot)
    days: 7                       # days of job submissions
    slot: 1h                      # simulation and planning slot
    horizon: 48h                  # forecast horizon the policies see
    refresh: 1h                   # forecast refresh (Suandian re-plans on each)
    forecastError: 0.15           # the error model's size (see errorModel)
    errorModel: lead              # lead (AR(1), grows with lead) or iid (sd = e x mean)
    seed: 1
    sites: [ningxia, gansu, ./my-site.yaml, {apiVersion: ..., kind: PowerSite, ...}]
                                  # left out: the eight embedded hubs
    actuals:                      # optional: CSV `time,value` per signal, what happened
      ningxia: {solar: ningxia-solar.csv, carbonIntensity: ningxia-ci.csv}
    forecasts:                    # optional: real forecasts of some of those signals
      ningxia: {carbonIntensity: ningxia-ci-day-ahead.csv}
    planner: {riskAversion: 0.5, delayPenaltyGPerKwhH: 0.5}   # PlanParams, camelCase
    capacity:                     # free capacity per site (planner units), `default` for all
      default: {cpu: 200000, memory: 800000, nvidia.com/gpu: 20000}
    jobs: trace.csv               # a job trace (see suandian.sim.workload), or:
    workload: {jobsPerDay: 30, powerScale: 1.0, residencyShare: 0.25, window: 8h,
               nominalHour: 1}  # window: jobs at a nominal start that may move +-8 h
    # and the data jobs read (docs/simulator.md): dataShare: 0.5, dataGB: 2000,
    #   dataBandwidthGbps: 10, dataKWhPerGB: 0.06, dataLinks: "gansu:ningxia=100Gbps"
    threshold: {gPerKWh: 250, maxDelay: 24h}   # the Compute Gardener baseline's settings

Paths are relative to the scenario file. Site names refer to the embedded sites. Every
problem is reported at once, each with its key (a misspelt key too); signal CSVs get
the checks of the CSV forecast provider and the simulator's own when the run reads them
(:mod:`suandian.sim.inputs`: coverage, ranges).

Before ``actuals:`` existed, ``forecasts:`` gave the actual series. A scenario with
``forecasts:`` and no ``actuals:`` is still read that way, with a warning saying what to
write instead (``Scenario.warnings``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from suandian.api.gridevent import GridEvent
from suandian.api.powersite import PowerSite
from suandian.api.validation import parse_powersite
from suandian.errors import FieldError, InputFileError, InvalidSpecError, ScenarioError
from suandian.files import load_yaml
from suandian.forecast import builtin_sites
from suandian.forecast.actuals import ERROR_MODELS, ErrorModel
from suandian.planner.data import (
    DEFAULT_GBPS,
    DEFAULT_KWH_PER_GB,
    DataLink,
    DataLinks,
    parse_links,
)
from suandian.sim.grid_events import parse_events
from suandian.sim.planner_settings import parse_planner
from suandian.sim.scenario_checks import (
    MAX_DAYS,
    check_grid,
    error_model,
    path_in,
    signal_files,
)
from suandian.sim.vintages import is_vintage_file
from suandian.units import parse_duration

__all__ = ["Scenario", "Workload", "builtin_scenarios", "load_scenario", "load_site"]

DEFAULT_SCENARIO = "east-data-west-computing"


@dataclass(frozen=True)
class Workload:
    """Settings of the built-in trace generator."""

    jobs_per_day: float = 30.0
    power_scale: float = 1.0
    residency_share: float = 0.25
    window: timedelta | None = None
    """Jobs get a nominal start (their class's submit hour, or ``nominal_hour``) and may
    move this much either way; ``None``: they are submitted at the nominal start, with
    their class's slack after it."""
    nominal_hour: int | None = None
    data_share: float = 0.0
    """The share of generated jobs that read ``data_gb`` of data living at their home."""
    data_gb: float = 0.0
    data_gbps: float = DEFAULT_GBPS
    """The links between sites, for every job that reads data (a trace's too)."""
    data_kwh_per_gb: float = DEFAULT_KWH_PER_GB
    data_links: str = ""

    @property
    def links(self) -> DataLinks:
        """The links between sites (:mod:`suandian.planner.data`)."""
        return parse_links(self.data_links, DataLink(self.data_gbps, self.data_kwh_per_gb))


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
    actual_csv: dict[str, dict[str, Path]] = field(default_factory=dict)
    """Site -> signal -> CSV of what really happened (replacing the built-in models)."""
    forecast_csv: dict[str, dict[str, Path]] = field(default_factory=dict)
    """Site -> signal -> CSV of a real forecast the policies are told (no error added)."""
    error_model: ErrorModel = "lead"
    planner: dict[str, Any] = field(default_factory=dict)
    """PlanParams fields set by the scenario (over the simulator's defaults)."""
    grid_events: tuple[GridEvent, ...] = ()
    """The grid's requests over the run (:mod:`~suandian.sim.grid_events`)."""
    warnings: tuple[str, ...] = ()

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
        "forecastError", "errorModel", "seed", "sites", "actuals", "forecasts", "capacity",
        "jobs", "workload", "threshold", "planner", "gridEvents")
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
    start = f.get("start", _start("2026-06-01T00:00:00Z"), _start, "an RFC 3339 time")
    slot = f.get("slot", timedelta(hours=1), parse_duration, "a duration")
    horizon = f.get("horizon", timedelta(hours=48), parse_duration, "a duration")
    refresh = f.get("refresh", timedelta(hours=1), parse_duration, "a duration")
    max_delay = f.get("threshold.maxDelay", timedelta(hours=24), parse_duration, "a duration")
    days = f.get("days", 7, _whole, "a whole number of days")
    error = f.get("forecastError", 0.15, _finite, "a number, e.g. 0.15")
    seed = f.get("seed", 1, _whole, "a whole number")
    threshold = f.get("threshold.gPerKWh", 250.0, _finite, "a number of gCO2/kWh")
    f.bounded("days", days, 1, MAX_DAYS)
    f.bounded("forecastError", error, 0.0, 1.0)
    model = f.get("errorModel", "lead", error_model, f"one of {', '.join(ERROR_MODELS)}")
    check_grid(f.errors, start, slot, horizon, refresh)
    for key, example in _MAPPINGS.items():
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            f.errors.append(FieldError(key, f"a mapping, e.g. {example}"))
    capacity = _capacity(doc.get("capacity"), f)
    by_name = {s.metadata.name or "": s for s in sites}
    actual_csv = signal_files("actuals", doc.get("actuals"), by_name, base, f.errors)
    forecast_csv = signal_files("forecasts", doc.get("forecasts"), by_name, base, f.errors)
    warnings: tuple[str, ...] = ()
    old_style = not any(is_vintage_file(path) for signals in forecast_csv.values()
                        for path in signals.values() if path.is_file())
    if forecast_csv and "actuals" not in doc and old_style:  # vintages are new: no old use
        actual_csv, forecast_csv = forecast_csv, {}
        warnings = ("`forecasts:` with no `actuals:` is read as before, as the actual "
                    "series (forecasts are made from them with the error model); rename "
                    "the key to `actuals:`, and keep `forecasts:` for real forecasts "
                    "given beside their actuals",)
    for site, signals in forecast_csv.items():
        for signal in signals:
            if signal not in actual_csv.get(site, {}):
                f.errors.append(FieldError(f"forecasts.{site}.{signal}", (
                    f"a real forecast is judged against what happened: give the actual "
                    f"series too, as actuals.{site}.{signal}")))
    planner = parse_planner(doc.get("planner"), "planner", f.errors)
    grid_events = parse_events(doc.get("gridEvents"), [s.metadata.name or "" for s in sites],
                               f.errors)
    trace = path_in(doc["jobs"], base) if doc.get("jobs") else None
    if trace is not None and not trace.is_file():
        f.errors.append(FieldError("jobs", f"no such file {trace}"))
    workload = Workload(f.get("workload.jobsPerDay", 30.0, _finite, "a number"),
                        f.get("workload.powerScale", 1.0, _finite, "a number"),
                        f.get("workload.residencyShare", 0.25, _finite, "a number"),
                        f.get("workload.window", None, parse_duration, "a duration"),
                        f.get("workload.nominalHour", None, _whole, "a whole hour, 0..23"),
                        f.get("workload.dataShare", 0.0, _finite, "a number"),
                        f.get("workload.dataGB", 0.0, _finite, "a number"),
                        f.get("workload.dataBandwidthGbps", DEFAULT_GBPS, _finite, "a number"),
                        f.get("workload.dataKWhPerGB", DEFAULT_KWH_PER_GB, _finite,
                              "a number"),
                        f.get("workload.dataLinks", "", str, "a text"))
    f.bounded("workload.dataShare", workload.data_share, 0.0, 1.0)
    f.bounded("workload.dataGB", workload.data_gb, 0.0, 1e7)
    f.bounded("workload.dataKWhPerGB", workload.data_kwh_per_gb, 0.0, 100.0)
    if workload.data_share > 0 and workload.data_gb <= 0:
        f.errors.append(FieldError("workload.dataGB", "give the size of the data the "
                                   "dataShare of jobs read, in GB (more than 0), e.g. 500"))
    if not 0 < workload.data_gbps <= 1e6:
        f.errors.append(FieldError("workload.dataBandwidthGbps",
                                   "must be within 0..1e6 Gbit/s (more than 0), e.g. 10"))
    else:
        try:
            workload.links  # noqa: B018 - parsed for its errors
        except ValueError as exc:
            f.errors.append(FieldError("workload.dataLinks", str(exc)))
    f.bounded("workload.residencyShare", workload.residency_share, 0.0, 1.0)
    f.bounded("workload.jobsPerDay", workload.jobs_per_day, 0.0, 1e6)
    f.bounded("workload.powerScale", workload.power_scale, 1e-6, 1e6)
    f.bounded("seed", seed, 0, 2**63)
    if workload.nominal_hour is not None:
        f.bounded("workload.nominalHour", workload.nominal_hour, 0, 23)
    if workload.window is not None and workload.window < timedelta(0):
        f.errors.append(FieldError("workload.window", "must not be negative, e.g. 8h"))
    if f.errors:
        raise ScenarioError("scenario", f.errors)
    return Scenario(
        name=str(doc.get("name", "scenario")), description=str(doc.get("description", "")),
        sites=tuple(sites), start=start, days=days, slot=slot, horizon=horizon,
        refresh=refresh, forecast_error=error, seed=seed, capacity=capacity,
        threshold_g_per_kwh=threshold, threshold_max_delay=max_delay, trace=trace,
        workload=workload, actual_csv=actual_csv, forecast_csv=forecast_csv,
        error_model=model, planner=planner, grid_events=grid_events, warnings=warnings,
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
        manifest = load_yaml(path_in(text, base))
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
        if not isinstance(values, dict | None):
            f.errors.append(FieldError(f"capacity.{site}", (
                "a mapping of resource to amount, e.g. {cpu: 400000, memory: 1600000}")))
            continue
        out[str(site)] = {str(r): f.get(f"capacity.{site}.{r}", math.inf, _finite, "a number")
                          for r in (values or {})}
    return out


_MAPPINGS = {"capacity": "{default: {cpu: 400000}}", "workload": "{jobsPerDay: 30}",
             "threshold": "{gPerKWh: 250, maxDelay: 24h}"}
"""Keys whose value is a mapping, with an example of one."""




def _start(value: Any) -> datetime:
    t = value if isinstance(value, datetime) else datetime.fromisoformat(
        str(value).replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)

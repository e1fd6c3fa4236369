"""The bodies of ``suandian simulate`` and ``suandian plan`` (the CLI stays a thin shell)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from suandian.api.computejob import ComputeJob
from suandian.api.powersite import PowerSite
from suandian.api.validation import KINDS, parse_manifest
from suandian.errors import (
    FieldError,
    InputFileError,
    InvalidSpecError,
    PlanningError,
    ScenarioError,
)
from suandian.files import load_yaml_all
from suandian.forecast import TimeGrid, builtin_forecasts, builtin_sites
from suandian.forecast.actuals import ERROR_MODELS
from suandian.planner import JobInput, Plan, SiteSignals, plan, snapshot_from
from suandian.planner.reasons import format_grams
from suandian.sim.planner_settings import parse_planner, plan_params
from suandian.sim.report import render_table, write_plot
from suandian.sim.run import simulate
from suandian.sim.scenario import Scenario, load_scenario
from suandian.units import format_duration

__all__ = ["dry_run_plan", "run_plan", "run_simulate"]

PLAN_SLOT = timedelta(minutes=15)
PLAN_SLOTS = 192


def run_simulate(*, scenario: str | None, days: int | None, seed: int | None,
                 forecast_error: float | None, as_json: bool, plot: Path | None,
                 policies: Sequence[str] | None = None, oracle_limit: int | None = None,
                 planner: Mapping[str, str] | None = None, error_model: str | None = None,
                 ) -> None:
    """Run the policies on a scenario; print the table (or JSON); optionally write a PNG.

    ``planner`` holds ``--planner`` settings (camelCase keys, text values) applied over
    the scenario's ``planner:``; ``error_model`` overrides its ``errorModel``.
    """
    sc = _with_options(load_scenario(scenario), planner or {}, error_model)
    err = Console(stderr=True)
    for warning in sc.warnings:
        err.print(f"suandian simulate: {sc.name}: {warning}", highlight=False)
    slot = format_duration(sc.slot)
    with Progress(TextColumn("[bold]{task.description:<12}"), BarColumn(),
                  TextColumn(f"{{task.completed:,.0f}}/{{task.total:,.0f}} slots of {slot}"),
                  TimeElapsedColumn(),
                  console=err, transient=as_json, disable=not err.is_terminal and as_json
                  ) as progress:
        tasks: dict[str, Any] = {}

        def tick(policy: str, t: int, slots: int) -> None:
            if policy not in tasks:
                tasks[policy] = progress.add_task(policy, total=slots)
            progress.update(tasks[policy], completed=t + 1)

        with _stdout_to_stderr():  # HiGHS prints its banner on fd 1; keep stdout for results
            report = simulate(sc, days=days, seed=seed, forecast_error=forecast_error,
                              policies=policies, progress=tick, oracle_limit=oracle_limit)
    if plot is not None:
        write_plot(report, plot)
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
        return
    out = Console()
    if not out.is_terminal:
        out = Console(width=120)  # a pipe or file: room for every column
    out.print(render_table(report))
    if plot is not None:
        out.print(f"wrote {plot}")


def _with_options(sc: Scenario, planner: Mapping[str, str], error_model: str | None
                  ) -> Scenario:
    """The scenario with the command line's planner settings and error model on top; a
    bad setting is one line naming it (as the scenario's own would be)."""
    errors: list[FieldError] = []
    overrides = {**sc.planner, **parse_planner(dict(planner), "--planner", errors)}
    if not errors and planner:
        try:
            plan_params(overrides)
        except PlanningError as exc:
            errors.append(FieldError("--planner", f"{exc} (with the scenario's planner: "
                                                  "settings beneath)"))
    if errors:
        raise ScenarioError("option", errors)
    model = next((m for m in ERROR_MODELS if m == error_model), sc.error_model)
    return replace(sc, planner=overrides, error_model=model)


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Send what C libraries write to file descriptor 1 to stderr for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _documents(paths: Iterable[Path]) -> list[tuple[Path, int, dict[str, Any]]]:
    """(file, document number from 1, manifest) of every YAML document in ``paths``."""
    docs = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")) \
            if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise InputFileError(path, [FieldError("", "holds no .yaml or .yml file")])
        for file in files:
            for i, doc in enumerate(load_yaml_all(file), start=1):
                if doc is None:
                    continue
                if not isinstance(doc, dict) or "kind" not in doc:
                    raise InputFileError(file, [FieldError(f"document {i}", (
                        "not a Kubernetes manifest (a mapping with apiVersion and kind)"))])
                docs.append((file, i, doc))
    return docs


def dry_run_plan(paths: Sequence[Path], *, now: datetime | None = None,
                 seed: int = 0) -> tuple[Plan, list[PowerSite]]:
    """Plan the ComputeJobs in ``paths`` on the PowerSites there (or the embedded sites),
    with the sites' built-in forecasts issued at ``now``.

    Every problem is an :class:`~suandian.errors.InputFileError` naming the file and the
    document: a manifest of another kind, an invalid one, a job naming a site that is
    not there, and files that hold no ComputeJob at all.
    """
    now = now or datetime.now(UTC)
    grid = TimeGrid.covering(now, slot=PLAN_SLOT, slots=PLAN_SLOTS)
    sites: list[PowerSite] = []
    jobs: list[tuple[Path, int, ComputeJob]] = []
    for file, i, doc in _documents(paths):
        if doc.get("kind") not in KINDS:
            raise InputFileError(file, [FieldError(f"document {i}", (
                f"kind {doc.get('kind')!r}: suandian plan reads only PowerSite and "
                "ComputeJob manifests"))])
        try:
            obj = parse_manifest(doc, now=grid.start)
        except InvalidSpecError as exc:
            raise InputFileError(file, [FieldError(
                f"document {i} ({exc.kind}){': ' + e.path if e.path else ''}", e.message)
                for e in exc.errors]) from None
        if isinstance(obj, PowerSite):
            sites.append(obj)
        elif isinstance(obj, ComputeJob):
            jobs.append((file, i, obj))
    if not jobs:
        where = ", ".join(str(p) for p in paths)
        raise InputFileError(where, [FieldError("", (
            "no ComputeJob here; give the manifests of the jobs to plan (PowerSites are "
            "optional: the eight embedded hubs are used when none is given)"))])
    if not sites:
        sites = list(builtin_sites().values())
    names = sorted(s.metadata.name or "" for s in sites)
    for file, i, job in jobs:
        unknown = [n for n in job.spec.sites or () if n not in names]
        if unknown:
            raise InputFileError(file, [FieldError(f"document {i} (ComputeJob): spec.sites", (
                f"{', '.join(unknown)} {'is not a site' if len(unknown) == 1 else 'are not sites'}"
                f" here; the sites are {', '.join(names)}"))])
    inputs = [JobInput(job=job, key=f"{job.metadata.namespace or 'default'}/"
                                      f"{job.metadata.name}", created=grid.start)
              for _, _, job in jobs]
    forecasts = builtin_forecasts(sites, grid, seed, issued_at=now)
    signals = {name: SiteSignals.from_forecast(f) for name, f in forecasts.items()}
    snap = snapshot_from(now=grid.start, slot=grid.slot, sites=sites, signals=signals,
                         jobs=inputs)
    return plan(snap), sites


_WIDE = 110
_NUMERIC = ("green", "expected", "saved")


def run_plan(paths: Sequence[Path], *, as_json: bool) -> None:
    """``suandian plan``: where and when each job would run, and why."""
    result, _sites = dry_run_plan(paths)
    if as_json:
        body = {"now": result.now.isoformat(), "slotSeconds": result.slot.total_seconds(),
                "decisions": [d.to_dict() for d in result.decisions]}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    console = Console()
    title = (f"plan at {result.now:%Y-%m-%d %H:%M} UTC "
             f"({len(result.decisions)} jobs, {len(result.site_names)} sites)")
    rows = [
        (d.key, d.site or "-",
         "now" if d.start_now else (f"{d.planned_start:%m-%d %H:%M}" if d.planned_start else "-"),
         f"{d.latest_start:%m-%d %H:%M}", f"{d.expected_green_fraction:.0%}",
         format_grams(d.expected_emissions_g), format_grams(d.saved_g))
        for d in result.decisions
    ]
    if console.width >= _WIDE:
        table = Table(box=box.SIMPLE_HEAD, title=title)
        for col in ("job", "site", "start", "latest start", "green", "expected", "saved"):
            table.add_column(col, no_wrap=True, justify="right" if col in _NUMERIC else "left")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:  # a narrow terminal (or a pipe): one block per job rather than a folded table
        console.print(f"[bold]{title}[/bold]")
        for key, site, start, latest, green, expected, saved in rows:
            console.print(f"[bold]{key}[/bold]  {site}, start {start} (latest {latest}), "
                          f"{green} green, {expected} expected, saves {saved}", highlight=False)
    # The reasons are sentences: a column would fold them to a word a line.
    console.print()
    for d in result.decisions:
        console.print(f"[bold]{d.key}[/bold]: {d.reason}", highlight=False)

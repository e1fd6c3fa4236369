"""The ``suandian`` command line: the operator, the simulator and the tools around them.

Each command is a thin shell over a library function, so that what the CLI does can be
done from Python too.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import click

from suandian import __version__

__all__ = ["cli", "main"]

SIM_EXTRAS = ("matplotlib", "highspy", "scipy")
"""What only ``simulate`` and ``--plot`` need: ``pip install 'suandian[sim]'``."""


class _Cli(click.Group):
    """The one place where bad input becomes one line on stderr and exit status 1.

    Every error Suandian raises for what a user gave it (a :class:`SuandianError`: an
    invalid manifest, scenario or setting, a file it cannot read or parse, a kubeconfig
    it cannot use) and every operating-system error on a file it was told to use is
    printed as ``suandian COMMAND: message`` with no traceback; the message names the
    input and what would be right. Usage errors stay click's (exit status 2). Anything
    else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: click.Context) -> object:
        from suandian.errors import SuandianError

        try:
            return super().invoke(ctx)
        except SuandianError as exc:
            message = str(exc)
        except ModuleNotFoundError as exc:
            if exc.name not in SIM_EXTRAS:
                raise
            message = (f"this needs the simulator's extras ({exc.name} is not installed): "
                       "pip install 'suandian[sim]'")
        except OSError as exc:
            where = exc.filename or ""
            message = f"{where}: {exc.strerror or exc}" if where else str(exc)
        command = " ".join(filter(None, ("suandian", ctx.invoked_subcommand)))
        click.echo(f"{command}: {message}", err=True)
        raise click.exceptions.Exit(1)


def _output_file(ctx: click.Context, param: click.Parameter, value: Path | None
                 ) -> Path | None:
    """An output file's folder must exist and be writable before the work starts, not
    after a simulation of several minutes."""
    del ctx
    if value is None:
        return None
    folder = value.parent if str(value.parent) else Path(".")
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist", param=param)
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"folder {folder} is not writable", param=param)
    return value


@click.group(cls=_Cli,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="suandian")
def cli() -> None:
    """Suandian (算电): make Kubernetes compute follow green power.

    Suandian places and defers flexible batch work (ComputeJobs) across sites and
    regions by the forecast supply of wind, solar, hydro and direct green power at each
    site (PowerSites), within each job's deadline and each site's capacity.

    \b
    Start here:
      suandian simulate              what-if replay of a week, every policy side by side
      suandian forecast --site gansu 48 h green-supply forecast of a built-in site
      suandian plan -f job.yaml      where and when would these jobs run, and why
      suandian crds --check          are the CRDs in sync with the API models
      suandian run                   the operator, against your kubeconfig
      suandian release               start all it holds, before uninstalling it
      suandian report --since DATE   green-power ledger per day, namespace and site
    """


@cli.command()
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Directory to write the CRDs into (default: ./crds).")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if the files in the directory differ from the models.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the CRDs as one YAML stream.")
def crds(output: Path | None, check: bool, to_stdout: bool) -> None:
    """Generate the CustomResourceDefinitions from the API models.

    The pydantic models in suandian.api are the single source of the API; the CRDs
    (structural schemas, CEL validation rules, printer columns) are generated from them.

    \b
    Examples:
      suandian crds                       regenerate ./crds
      suandian crds --check               CI: fail when ./crds is stale
      suandian crds --stdout | kubectl apply -f -
    """
    from suandian.api.crd import CRD_FILES, build_crds, check_crds, render_crd
    from suandian.errors import FieldError, InputFileError

    if to_stdout:
        click.echo("---\n".join(render_crd(kind) for kind in CRD_FILES), nl=False)
        return
    directory = output or Path("crds")
    if check:
        if not directory.is_dir():
            raise InputFileError(directory, [FieldError("", (
                "no such folder; `suandian crds --output DIR` writes the CRDs there"))])
        stale = check_crds(directory)
        if stale:
            for name in stale:
                click.echo(f"stale or missing: {name}", err=True)
            click.echo("run `suandian crds` to regenerate them", err=True)
            raise SystemExit(1)
        click.echo(f"CRDs in {directory} match the API models.")
        return
    for path in build_crds(directory):
        click.echo(f"wrote {path}")


def _policies(ctx: click.Context, param: click.Parameter, value: str | None
              ) -> tuple[str, ...] | None:
    """``--policies run-now,suandian``: known names only, said with the choices."""
    del ctx
    if value is None:
        return None
    from suandian.sim.policies import policy_list

    try:
        return policy_list(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None


def _settings(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
              ) -> dict[str, str]:
    """``--planner key=value`` (repeatable) as a mapping; the keys are checked with the
    scenario's, where the settings are applied."""
    del ctx
    out: dict[str, str] = {}
    for item in value:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE, e.g. riskAversion=0.3",
                                     param=param)
        out[key.strip()] = text.strip()
    return out


class _SimulateCommand(click.Command):
    """``simulate``, whose help lists the planner's settings as the planner has them:
    read when the help is shown, so that starting the CLI imports no planner."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from suandian.sim.planner_settings import PLANNER_KEYS

        formatter.write_paragraph()
        formatter.write_text("Planner settings (--planner KEY=VALUE, or a scenario's "
                             "planner: mapping, camelCase PlanParams fields): "
                             + ", ".join(PLANNER_KEYS) + ".")
        formatter.write_paragraph()
        formatter.write_text(
            "A year of 30-minute slots runs (--days up to 3660; time and memory grow "
            "linearly with days). docs/simulator.md describes the scenario keys "
            "(actuals:, forecasts:, errorModel:, planner:, workload.window and "
            "nominalHour) and the trace's nominal and window columns.")


@cli.command(cls=_SimulateCommand)
@click.option("--scenario", default=None, help="Built-in scenario name or a scenario YAML file.")
@click.option("--days", type=click.IntRange(1, 3660), default=None,
              help="Days of submissions to replay (the run goes on until all jobs end).")
@click.option("--seed", type=int, default=None, help="Seed of weather and workload.")
@click.option("--forecast-error", type=click.FloatRange(0, 1), default=None,
              help="Size of the forecast error seen by the policies, e.g. 0.15.")
@click.option("--error-model", type=click.Choice(["lead", "iid"]), default=None,
              help="lead: relative AR(1) error growing with lead time (default); iid: "
                   "independent noise of sd forecast-error x the series' mean.")
@click.option("--policies", default=None, callback=_policies, metavar="LIST",
              help="Comma list of the policies to run, e.g. run-now,nominal,best-window,"
                   "suandian (default: all of run-now, nominal, threshold, best-window, "
                   "suandian, oracle; nominal only when some job has a nominal start).")
@click.option("--oracle-limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="The oracle's work limit, in neighbourhoods searched per 100 jobs "
                   "(default 8): work, not time, so its figures do not depend on the "
                   "machine's load; 3 for a quick look (docs/oracle.md).")
@click.option("--planner", "planner", multiple=True, callback=_settings,
              metavar="KEY=VALUE", help="A planner setting for the suandian policy, e.g. "
                                        "delayPenaltyGPerKwhH=0 (repeatable; over the "
                                        "scenario's planner:).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              callback=_output_file, help="Write a PNG of supply, load and savings.")
def simulate(scenario: str | None, days: int | None, seed: int | None,
             forecast_error: float | None, error_model: str | None,
             policies: tuple[str, ...] | None, oracle_limit: int | None,
             planner: dict[str, str], as_json: bool, plot: Path | None) -> None:
    """Replay a workload against forecasts, every policy side by side.

    Policies: run-now (start on submission), nominal (start at the job's nominal time),
    threshold (Compute Gardener), best-window (Carbon Aware SDK, cats), suandian (the
    planner) and oracle (MILP, perfect knowledge). With no options it runs the embedded
    East Data, West Computing week. Built-in scenarios: east-data-west-computing,
    contention, grid-events (the same week with an evening shed in the east and a night
    wind surplus in the west every day: the grid's requests). Real data: a scenario's
    actuals: (CSV series of what happened; grid-only sites with supply: [] and a
    carbonIntensity CSV too) and forecasts: (real forecasts
    beside them); a CSV that does not cover the run is refused, never filled.

    \b
    Examples:
      suandian simulate
      suandian simulate --scenario contention --forecast-error 0.3 --plot out.png
      suandian simulate --scenario my-week.yaml --days 3 --json
      suandian simulate --scenario my-year.yaml --days 365 \\
          --policies run-now,nominal,best-window,suandian --error-model iid
      suandian simulate --planner delayPenaltyGPerKwhH=0 --planner riskAversion=0.3
    """
    from suandian.sim.commands import run_simulate

    run_simulate(scenario=scenario, days=days, seed=seed, forecast_error=forecast_error,
                 as_json=as_json, plot=plot, policies=policies,
                 oracle_limit=oracle_limit, planner=planner, error_model=error_model)


@cli.command()
@click.option("--site", required=True, help="Site name (a built-in site or one in --scenario).")
@click.option("--scenario", default=None, help="Built-in scenario name or a scenario YAML file.")
@click.option("--hours", type=click.IntRange(1, 168), default=48, show_default=True,
              help="Forecast horizon in hours (15-minute slots).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              callback=_output_file, help="Write a PNG of the forecast.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the built-in weather models.")
@click.option("--start", "start", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z",
                                                       "%Y-%m-%d"]),
              default=None, help="Issue the forecast at this time (default: now), e.g. "
              "2026-06-21T00:00+0800.")
def forecast(site: str, scenario: str | None, hours: int, as_json: bool,
             plot: Path | None, seed: int, start: datetime | None) -> None:
    """Show a site's green-supply and carbon forecast: hourly table, JSON or PNG.

    The site's spec.forecast names its providers (the built-in physical models for the
    embedded sites); a failing provider degrades to the conservative forecast, and the
    reason is printed on stderr.

    \b
    Examples:
      suandian forecast --site gansu
      suandian forecast --site guizhou --hours 24 --json
      suandian forecast --site inner-mongolia --plot im.png
    """
    import asyncio
    import json as jsonlib
    from datetime import UTC, timedelta

    from rich.console import Console

    from suandian.forecast import ForecastKeeper, builtin_sites
    from suandian.forecast.report import forecast_table, plot_forecast
    from suandian.sim.scenario import load_scenario

    sites = builtin_sites() if scenario is None else {
        s.metadata.name or "": s for s in load_scenario(scenario).sites}
    if site not in sites:
        where = f"in {scenario}" if scenario else "built in"
        raise click.BadParameter(f"{site!r} is not a site {where}: "
                                 f"{', '.join(sorted(sites))}", param_hint="--site")
    power_site = sites[site]
    now = (start or datetime.now(UTC)).astimezone(UTC) if start is None or start.tzinfo \
        else start.replace(tzinfo=UTC)
    slot = timedelta(minutes=15)
    keeper = ForecastKeeper.for_site(power_site, seed=seed, slot=slot, slots=hours * 4)
    fc = asyncio.run(keeper.refresh(now))
    health = keeper.health(now)
    if health.degraded or not health.ready:
        click.echo(f"suandian: forecast degraded ({health.reason}): {health.message}", err=True)
    zone = power_site.spec.location.time_zone
    if plot is not None:
        plot_forecast(fc, plot, zone)
        if not as_json:
            click.echo(f"wrote {plot}", err=True)
    if as_json:
        doc = fc.to_json()
        doc["health"] = {"ready": health.ready, "degraded": health.degraded,
                         "reason": health.reason, "message": health.message}
        click.echo(jsonlib.dumps(doc))
        return
    Console(width=160).print(forecast_table(fc, zone))


@cli.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              type=click.Path(exists=True, path_type=Path),
              help="PowerSite and ComputeJob manifests (files or directories).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def plan(files: tuple[Path, ...], as_json: bool) -> None:
    """Dry-run: where and when would these ComputeJobs run, and why.

    Plans the ComputeJobs in the files on the PowerSites there (the embedded sites when
    none is given), with the sites' built-in forecasts issued now.

    \b
    Examples:
      suandian plan -f job.yaml
      suandian plan -f examples/powersites -f jobs/ --json
    """
    from suandian.sim.commands import run_plan

    run_plan(list(files), as_json=as_json)


def _settings_help() -> str:
    from suandian.config import Settings

    lines = ["\b", "Settings (environment variables):"]
    for name, default, meaning in Settings.describe():
        lines.append(f"  {name}={default}")
        lines.append(f"      {meaning}")
    return "\n".join(lines)


@cli.command(epilog=_settings_help())
@click.option("-n", "--namespace", "namespaces", multiple=True, metavar="PATTERN",
              help="Serve only these namespaces (repeatable; globs like 'batch-*'). "
                   "Default: all namespaces.")
@click.option("-A", "--all-namespaces", "clusterwide", is_flag=True,
              help="Serve all namespaces (the default when no --namespace is given).")
@click.option("--peering", "peering_name", default="suandian", show_default=True,
              help="Peering name: replicas with the same name elect one active operator.")
@click.option("--priority", type=int, default=0, show_default=True,
              help="Peering priority of this replica; the highest live one acts.")
@click.option("--standalone", is_flag=True,
              help="No peering: act even if other replicas run (single replica only).")
@click.option("--liveness", "liveness_endpoint", default=None, metavar="URL",
              help="Serve liveness probes, e.g. http://0.0.0.0:8080/healthz.")
@click.option("--webhook-port", type=int, default=None,
              help="Serve the Pod-gating admission webhook on this port (HTTPS, "
                   "self-signed unless --webhook-cert is given).")
@click.option("--webhook-addr", default="0.0.0.0", show_default=True,
              help="Address for the webhook server.")
@click.option("--webhook-cert", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM certificate for the webhook (with --webhook-key).")
@click.option("--webhook-key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM private key for the webhook.")
@click.option("--metrics-port", type=int, default=8081, show_default=True,
              help="Serve Prometheus metrics on this port (0: off).")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config).")
@click.option("--context", default=None, help="Kubeconfig context.")
@click.option("--log-format", type=click.Choice(["plain", "full", "json"]), default="full",
              show_default=True, help="Log line format.")
@click.option("-v", "--verbose", is_flag=True, help="Log more (INFO for every handler).")
@click.option("--debug", is_flag=True, help="Log everything (DEBUG).")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
def run(namespaces: tuple[str, ...], clusterwide: bool, peering_name: str, priority: int,
        standalone: bool, liveness_endpoint: str | None, webhook_port: int | None,
        webhook_addr: str, webhook_cert: str | None, webhook_key: str | None,
        metrics_port: int, kubeconfig: str | None, context: str | None, log_format: str,
        verbose: bool, debug: bool, quiet: bool) -> None:
    """Run the operator against the current kubeconfig or in-cluster.

    Watches PowerSites, ComputeJobs, Nodes, Pods and Jobs; refreshes forecasts; places
    and defers ComputeJobs (their child Jobs are created suspended and unsuspended at
    the planned start) and gated Pods. Run two replicas with the same --peering name
    and different --priority for high availability: only the highest live one acts.
    All state lives in the API objects, so a restarted replica carries on.

    \b
    Examples:
      suandian run                                   all namespaces, peering "suandian"
      suandian run -n batch -n ml --liveness http://0.0.0.0:8080/healthz
      suandian run --webhook-port 9443 --log-format json
    """
    from suandian.controllers.main import run_operator

    if namespaces and clusterwide:
        raise click.UsageError("use either --namespace or --all-namespaces, not both")
    if bool(webhook_cert) != bool(webhook_key):
        raise click.UsageError("--webhook-cert and --webhook-key go together")
    run_operator(
        namespaces=namespaces, peering_name=peering_name, priority=priority,
        standalone=standalone, liveness_endpoint=liveness_endpoint,
        webhook_port=webhook_port, webhook_addr=webhook_addr, webhook_cert=webhook_cert,
        webhook_key=webhook_key, metrics_port=metrics_port, kubeconfig=kubeconfig,
        context=context, log_format=log_format, verbose=verbose, debug=debug, quiet=quiet,
    )


@cli.command()
@click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NAMESPACE",
              help="Release only in these namespaces (repeatable; the namespaced operator's "
                   "KopfPeering in each is frozen). Default: all namespaces.")
@click.option("--peering", "peering_name", default="suandian", show_default=True,
              help="Peering of the operators to freeze first; '' to freeze none.")
@click.option("--freeze-for", default="10m", show_default=True, metavar="DURATION",
              help="How long the freeze holds the operators paused (it then expires).")
@click.option("--dry-run", is_flag=True, help="Say what would be released; change nothing.")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config).")
@click.option("--context", default=None, help="Kubeconfig context.")
def release(namespaces: tuple[str, ...], peering_name: str, freeze_for: str, dry_run: bool,
            kubeconfig: str | None, context: str | None) -> None:
    """Start everything Suandian holds, before removing it (helm uninstall does this).

    Freezes the operators (a top-priority entry in their peering object, so no replica
    acts meanwhile), starts every suspended child Job of an unfinished ComputeJob at once
    (condition Started, reason Released), ungates every Pod behind
    suandian.io/green-window, and drops Suandian's finalizer from PowerSites and
    ComputeJobs. ComputeJobs with no child Job yet hold nothing and wait for Suandian.
    Exit status 1 when something could not be released (each is listed).

    \b
    Examples:
      suandian release --dry-run          what would be started
      suandian release                    all namespaces (the chart's pre-delete hook)
      suandian release -n batch -n ml     a namespaced installation
    """
    import asyncio
    from datetime import UTC

    from suandian.k8s.client import KubeApi
    from suandian.k8s.release import release as release_all
    from suandian.units import parse_duration

    try:
        hold = parse_duration(freeze_for)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--freeze-for") from None
    api = KubeApi.from_environment(kubeconfig=kubeconfig, context=context)

    async def go() -> list[str]:
        try:
            done = await release_all(api, now=datetime.now(UTC), namespaces=namespaces,
                                     peering=peering_name or None, freeze_for=hold,
                                     dry_run=dry_run)
        finally:
            await api.aclose()
        head = ["dry run, nothing changed; a release would have:"] if dry_run else []
        return head + done.lines()

    lines = asyncio.run(go())
    for line in lines:
        click.echo(line)
    if any(line.startswith("could not") for line in lines):
        raise SystemExit(1)


def _add_report() -> None:
    from suandian.report.command import report

    cli.add_command(report)


_add_report()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="suandian")

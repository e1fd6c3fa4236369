"""The ``suandian`` command line: the operator, the simulator and the tools around them.

Each command is a thin shell over a library function, so that what the CLI does can be
done from Python too. Commands whose capability a later release brings say so in their
help and exit with status 2; they never pretend.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from suandian import __version__
from suandian.errors import NotYetAvailable

__all__ = ["cli", "main"]

EXIT_NOT_AVAILABLE = 2


def _not_yet(capability: str) -> NoReturn:
    click.echo(
        f"suandian: {capability} is not yet available in this release ({__version__}).",
        err=True,
    )
    raise SystemExit(EXIT_NOT_AVAILABLE)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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

    if to_stdout:
        click.echo("---\n".join(render_crd(kind) for kind in CRD_FILES), nl=False)
        return
    directory = output or Path("crds")
    if check:
        stale = check_crds(directory)
        if stale:
            for path in stale:
                click.echo(f"stale or missing: {path}", err=True)
            click.echo("run `suandian crds` to regenerate them", err=True)
            raise SystemExit(1)
        click.echo(f"CRDs in {directory} match the API models.")
        return
    for path in build_crds(directory):
        click.echo(f"wrote {path}")


@cli.command()
@click.option("--scenario", default=None, help="Built-in scenario name or a scenario YAML file.")
@click.option("--days", type=click.IntRange(1, 60), default=None, help="Days to replay.")
@click.option("--seed", type=int, default=None, help="Seed of weather and workload.")
@click.option("--forecast-error", type=click.FloatRange(0, 1), default=None,
              help="Relative forecast error seen by the policies, e.g. 0.15.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG of supply, load and savings.")
def simulate(scenario: str | None, days: int | None, seed: int | None,
             forecast_error: float | None, as_json: bool, plot: Path | None) -> None:
    """(not yet available) Replay a workload against forecasts, every policy side by side."""
    _not_yet("`suandian simulate`")


@cli.command()
@click.option("--site", required=True, help="Site name (a built-in site or one in --scenario).")
@click.option("--scenario", default=None, help="Built-in scenario name or a scenario YAML file.")
@click.option("--hours", type=click.IntRange(1, 168), default=48, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a PNG of the forecast.")
def forecast(site: str, scenario: str | None, hours: int, as_json: bool,
             plot: Path | None) -> None:
    """(not yet available) Show a site's green-supply and carbon forecast."""
    _not_yet("`suandian forecast`")


@cli.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              type=click.Path(exists=True, path_type=Path),
              help="PowerSite and ComputeJob manifests (files or directories).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def plan(files: tuple[Path, ...], as_json: bool) -> None:
    """(not yet available) Dry-run: where and when would these ComputeJobs run, and why."""
    _not_yet("`suandian plan`")


@cli.command()
def run() -> None:
    """(not yet available) Run the operator against the current kubeconfig or in-cluster."""
    _not_yet("`suandian run`")


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="suandian")
    except NotYetAvailable as exc:
        click.echo(f"suandian: {exc}", err=True)
        sys.exit(EXIT_NOT_AVAILABLE)

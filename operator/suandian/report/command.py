"""The ``suandian report`` command: options and help only; the work is in this package.

Registered on the CLI by :mod:`suandian.cli` (kept here so the CLI module stays a list
of commands). Errors from Prometheus or from the options are :class:`SuandianError`
subclasses, which the CLI prints as one line with exit status 1.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import click

DEFAULT_URL = "http://localhost:9090"
MISMATCH_EXIT = 3


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    del ctx
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-11-01",
                                 param=param) from None


@click.command("report")
@click.option("--since", required=True, callback=_date, metavar="DATE",
              help="First day of the report, YYYY-MM-DD (local to --timezone).")
@click.option("--until", callback=_date, metavar="DATE",
              help="First day NOT in the report, YYYY-MM-DD (default: tomorrow, so today "
              "is in, up to now).")
@click.option("--namespace", "namespaces", multiple=True, metavar="NAME",
              help="Only this namespace (repeatable; default: all).")
@click.option("--site", "sites", multiple=True, metavar="NAME",
              help="Only this PowerSite (repeatable; default: all).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]),
              default="table", show_default=True, help="Output on stdout.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Also write a PNG: kWh by source per day, green share "
              "(needs matplotlib: pip install 'suandian[sim]').")
@click.option("--prometheus", "url", envvar="SUANDIAN_PROMETHEUS_URL", default=DEFAULT_URL,
              show_default=True, metavar="URL",
              help="Base URL of the Prometheus that scrapes the operator "
              "(env SUANDIAN_PROMETHEUS_URL).")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, metavar="FILE",
              help="File holding a bearer token for Prometheus (or env "
              "SUANDIAN_PROMETHEUS_TOKEN).")
@click.option("--timezone", "zone", default="UTC", show_default=True, metavar="ZONE",
              help="IANA zone whose midnights bound the days, e.g. Asia/Shanghai.")
def report(since: date, until: date | None, namespaces: tuple[str, ...],
           sites: tuple[str, ...], fmt: str, plot: Path | None, url: str,
           token_file: Path | None, zone: str) -> None:
    """The green-power ledger per day, namespace and site, read from Prometheus.

    For each day: facility kWh by source (solar, wind, hydro, direct line, storage,
    grid), green share, IT kWh, the PUE the figures used (facility/IT), CO2 emitted, CUE
    (kg CO2 per kWh of IT energy), CO2 saved against running every job at once, and the
    share of IT energy measured by Kepler/DCGM; then a total per namespace and site.
    Days run from local midnight to midnight in --timezone; each day's figure is the
    exact growth of the operator's ledger counters in it (operator restarts included).

    The report checks itself: the ledger summed over namespaces must match the site
    totals the operator counts separately within 1%, per site and day. A mismatch is
    printed (stderr for csv) and the exit status is 3; unreachable Prometheus or bad
    options: one line on stderr, exit status 1.

    \b
    Examples:
      suandian report --since 2026-11-01 --until 2026-12-01
      suandian report --since 2026-11-01 --until 2026-12-01 --namespace team-a \\
          --format csv > team-a-november.csv
      suandian report --since 2026-11-24 --site gansu --format json
      suandian report --since 2026-11-01 --until 2026-12-01 --plot november.png \\
          --timezone Asia/Shanghai --prometheus http://prometheus.monitoring:9090
      kubectl -n monitoring port-forward svc/prometheus-operated 9090 &
      suandian report --since 2026-11-30
    """
    from suandian.report import ReportInputError, build_report, timezone
    from suandian.report.format import csv_text, json_text, reconciliation_text, table
    from suandian.report.plot import plot as write_plot

    if plot is not None:
        if importlib.util.find_spec("matplotlib") is None:
            raise ReportInputError("--plot needs matplotlib, which is not installed: "
                                   "pip install 'suandian[sim]' (or drop --plot)")
        if not plot.parent.resolve().is_dir():
            raise ReportInputError(f"--plot {plot}: folder {plot.parent} does not exist")
    token = (token_file.read_text(encoding="utf-8").strip() if token_file is not None
             else os.environ.get("SUANDIAN_PROMETHEUS_TOKEN", "").strip())
    tz = timezone(zone)
    if until is None:
        until = datetime.now(tz).date() + timedelta(days=1)
    ledger = build_report(url, since, until, zone=zone, namespaces=namespaces, sites=sites,
                          token=token)
    if fmt == "table":
        click.echo(table(ledger), nl=False)
    elif fmt == "csv":
        click.echo(csv_text(ledger), nl=False)
        if not ledger.reconciled:
            click.echo(reconciliation_text(ledger), err=True)
    else:
        click.echo(json_text(ledger, since=since.isoformat(), until=until.isoformat(),
                             timezone=zone, prometheus=url, namespaces=list(namespaces),
                             sites=list(sites)), nl=False)
    if plot is not None:
        scope = ", ".join([*namespaces, *sites]) or "all namespaces and sites"
        write_plot(ledger, plot, f"Suandian ledger {since} to {until} ({scope})")
        click.echo(f"wrote {plot}", err=True)
    if not ledger.reconciled:
        sys.exit(MISMATCH_EXIT)

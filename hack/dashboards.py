"""Build Suandian's Grafana dashboards as code and write them under the chart.

    python hack/dashboards.py            write helm/suandian/dashboards/*.json
    python hack/dashboards.py --check    exit 1 when the committed JSON is stale

The dashboards are plain Grafana JSON models (schemaVersion 39). All take the data
source and the sites as template variables (the ledger's the namespaces too), so one
copy serves any Prometheus and any set of PowerSites. Every query is run against a real
Prometheus by ``tests/integration/prometheus/`` and must return series.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "helm" / "suandian" / "dashboards"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SITE = 'site=~"$site"'
WIDTH = 24

Panel = dict[str, Any]


def target(expr: str, legend: str = "", ref: str = "A") -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend or "__auto",
            "refId": ref, "range": True}


def _targets(queries: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)]


def timeseries(title: str, description: str, queries: list[tuple[str, str]], unit: str, *,
               stacked: bool = False, fill: int = 10, threshold_zero: bool = False) -> Panel:
    custom: dict[str, Any] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": fill,
                              "showPoints": "never", "spanNulls": True,
                              "stacking": {"mode": "normal" if stacked else "none",
                                           "group": "A"}}
    if threshold_zero:
        custom["thresholdsStyle"] = {"mode": "line"}
    return {
        "type": "timeseries", "title": title, "description": description,
        "datasource": DATASOURCE, "targets": _targets(queries),
        "fieldConfig": {"defaults": {
            "unit": unit, "custom": custom,
            "thresholds": {"mode": "absolute", "steps": [
                {"color": "red", "value": None}, {"color": "green", "value": 0}]},
        }, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "right",
                               "calcs": ["lastNotNull", "max"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }


def stat(title: str, description: str, expr: str, unit: str, *,
         steps: list[tuple[str, float | None]] | None = None, legend: str = "") -> Panel:
    return {
        "type": "stat", "title": title, "description": description,
        "datasource": DATASOURCE, "targets": [target(expr, legend)],
        "fieldConfig": {"defaults": {
            "unit": unit,
            "thresholds": {"mode": "absolute", "steps": [
                {"color": color, "value": value}
                for color, value in (steps or [("green", None)])]},
        }, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "background", "graphMode": "area", "textMode": "auto"},
    }


def bargauge(title: str, description: str, expr: str, legend: str, unit: str) -> Panel:
    return {
        "type": "bargauge", "title": title, "description": description,
        "datasource": DATASOURCE, "targets": [target(expr, legend)],
        "fieldConfig": {"defaults": {"unit": unit, "min": 0, "thresholds": {
            "mode": "absolute", "steps": [{"color": "green", "value": None}]}},
            "overrides": []},
        "options": {"orientation": "horizontal", "displayMode": "gradient",
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
    }


def layout(rows: list[list[tuple[Panel, int]]]) -> list[Panel]:
    """Place rows of (panel, height) side by side with equal widths; number the panels."""
    panels: list[Panel] = []
    y = 0
    for row in rows:
        width = WIDTH // len(row)
        for column, (panel, height) in enumerate(row):
            panel["gridPos"] = {"x": column * width, "y": y, "w": width, "h": height}
            panel["id"] = len(panels) + 1
            panels.append(panel)
        y += max(height for _, height in row)
    return panels


def dashboard(uid: str, title: str, description: str, panels: list[Panel],
              variables: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["suandian", "carbon-aware", "kubernetes"],
        "timezone": "browser", "editable": True, "graphTooltip": 1,
        "refresh": "1m", "schemaVersion": 39, "version": 1,
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": [
            {"type": "datasource", "name": "datasource", "label": "Data source",
             "query": "prometheus", "current": {}, "hide": 0, "refresh": 1},
            {"type": "query", "name": "site", "label": "Site", "datasource": DATASOURCE,
             "definition": "label_values(suandian_site_green_power_watts, site)",
             "query": {"query": "label_values(suandian_site_green_power_watts, site)",
                       "refId": "site"},
             "includeAll": True, "multi": True, "allValue": ".*", "current": {},
             "refresh": 2, "sort": 1, "hide": 0},
            *variables,
        ]},
        "annotations": {"list": []},
        "panels": panels,
    }


def power_and_placement() -> dict[str, Any]:
    waiting = 'phase=~"Pending|Deferred|Suspended"'
    return dashboard(
        "suandian-power", "Suandian — power and placement",
        "Green supply against compute load at each site, carbon intensity, headroom, "
        "and where jobs run now.",
        layout([
            [(stat("Green power now", "Green power available now at the selected sites.",
                   f"sum(suandian_site_green_power_watts{{{SITE}}})", "watt"), 4),
             (stat("Compute power now", "Power drawn by placed compute, PUE included.",
                   f"sum(suandian_site_compute_power_watts{{{SITE}}})", "watt"), 4),
             (stat("Jobs running", "ComputeJobs and gated Pods running now.",
                   f'sum(suandian_jobs{{phase="Running",{SITE}}})', "none"), 4),
             (stat("Jobs waiting for green power", "Pending, deferred or suspended jobs.",
                   f"sum(suandian_jobs{{{waiting}}})", "none"), 4)],
            [(timeseries("Green supply by site and source",
                         "Green power available at each site, stacked by source.",
                         [(f"sum by (site, source) (suandian_site_green_power_watts{{{SITE}}})",
                           "{{site}} {{source}}")], "watt", stacked=True, fill=40), 9)],
            [(timeseries("Compute load against green supply",
                         "Per site: power drawn by compute (solid) and green supply.",
                         [(f"sum by (site) (suandian_site_compute_power_watts{{{SITE}}})",
                           "{{site}} load"),
                          (f"sum by (site) (suandian_site_green_power_watts{{{SITE}}})",
                           "{{site}} green")], "watt"), 9),
             (timeseries("Green supply forecast",
                         "Mean green power forecast over the next hour, 6 h and 24 h.",
                         [(f"suandian_site_green_power_forecast_watts{{{SITE}}}",
                           "{{site}} next {{horizon}}")], "watt", fill=0), 9)],
            [(timeseries("Grid carbon intensity",
                         "Carbon intensity of grid power at each site, gCO2/kWh.",
                         [(f"suandian_site_grid_carbon_intensity_grams_per_joule{{{SITE}}}"
                           " * 3600000", "{{site}}")], "gCO₂/kWh", fill=0), 8),
             (timeseries("Green headroom",
                         "Green power left after compute; below zero the grid fills the gap.",
                         [(f"suandian_site_headroom_watts{{{SITE}}}", "{{site}}")], "watt",
                         threshold_zero=True), 8)],
            [(bargauge("Where jobs run now", "Running jobs per site.",
                       f'sum by (site) (suandian_jobs{{phase="Running",{SITE}}})',
                       "{{site}}", "none"), 8),
             (bargauge("Jobs by phase", "All jobs Suandian tracks, by phase.",
                       "sum by (phase) (suandian_jobs)", "{{phase}}", "none"), 8),
             (bargauge("Forecast age", "Age of the forecast in use at each site.",
                       f"max by (site) (suandian_site_forecast_age_seconds{{{SITE}}})",
                       "{{site}}", "s"), 8)],
            [(timeseries("Degraded sites",
                         "1 while a site runs on a stale or conservative (all-grid) forecast.",
                         [(f"max by (site) (suandian_site_degraded{{{SITE}}})", "{{site}}")],
                         "bool", fill=30), 6)],
            [(timeseries("Grid requests: asked, committed, delivered",
                         "Per site, the shed or surplus the grid asks now (GridEvents), what "
                         "the plan commits to and what the site delivers, measured.",
                         [(f"sum by (site, type) (suandian_grid_asked_watts{{{SITE}}})",
                           "{{site}} {{type}} asked"),
                          (f"sum by (site, type) (suandian_grid_committed_watts{{{SITE}}})",
                           "{{site}} {{type}} committed"),
                          (f"sum by (site, type) (suandian_grid_delivered_watts{{{SITE}}})",
                           "{{site}} {{type}} delivered")], "watt", fill=0), 8),
             (timeseries("Grid requests: shortfall and energy delivered",
                         "How far the plan falls short of each site's requests (deadlines "
                         "win), and the energy shed or absorbed per hour.",
                         [(f"sum by (site) (suandian_grid_shortfall_watts{{{SITE}}})",
                           "{{site}} shortfall"),
                          ("sum by (type) (rate(suandian_grid_delivered_joules_total"
                           "[$__rate_interval]))", "{{type}} delivered")], "watt", fill=0), 8),
             (bargauge("Grid requests by phase", "GridEvents by phase.",
                       "sum by (phase) (suandian_grid_events)", "{{phase}}", "none"), 8)],
            [(stat("OpenADR VEN registered", "1 while a replica's VEN is registered with "
                   "the utility's VTN (0 with no VTN configured).",
                   "max(suandian_openadr_registered)", "none",
                   steps=[("red", None), ("green", 1)]), 6),
             (timeseries("OpenADR registrations failed",
                         "Registrations the VTN refused or cancelled, or that could not "
                         "reach it, per hour; the VEN retries with backoff to 5 minutes.",
                         [("sum(increase(suandian_openadr_registration_failures_total"
                           "[1h]))", "failed")], "none", fill=0), 18)],
        ]))


def savings_and_service() -> dict[str, Any]:
    rate = "[$__rate_interval]"
    total = "[$__range]"
    return dashboard(
        "suandian-savings", "Suandian — savings and service",
        "Emissions avoided, green share of finished work, deferral delays, deadline misses, "
        "planning latency and forecast provider health.",
        layout([
            [(stat("CO₂ avoided", "Against running every job at once where it landed.",
                   f"sum(increase(suandian_emissions_avoided_grams_total{{{SITE}}}{total}))",
                   "massg"), 4),
             (stat("Green share of finished work", "Green energy over all energy used.",
                   f'sum(increase(suandian_energy_joules_total{{source="green",{SITE}}}'
                   f"{total})) / sum(increase(suandian_energy_joules_total{{{SITE}}}{total}))",
                   "percentunit", steps=[("red", None), ("orange", 0.5), ("green", 0.8)]), 4),
             (stat("Deadline misses", "Must stay 0: deadlines are hard.",
                   f"sum(increase(suandian_deadline_misses_total{{{SITE}}}{total}))", "none",
                   steps=[("green", None), ("red", 1)]), 4),
             (stat("Operator replicas up", "Scrape targets of the operator that answer.",
                   'sum(up{job="suandian"})', "none",
                   steps=[("red", None), ("orange", 1), ("green", 2)]), 4)],
            [(timeseries("Emissions and emissions avoided",
                         "Grams of CO2 per hour by finished jobs, and avoided.",
                         [(f"sum by (site) (rate(suandian_emissions_grams_total{{{SITE}}}{rate}))"
                           " * 3600", "{{site}} emitted"),
                          ("sum by (site) (rate(suandian_emissions_avoided_grams_total"
                           f"{{{SITE}}}{rate})) * 3600", "{{site}} avoided")], "massg"), 8),
             (timeseries("Green share by site",
                         "Share of the energy of finished jobs that was green.",
                         [(f"max by (site) (suandian_completed_work_green_ratio{{{SITE}}})",
                           "{{site}}")], "percentunit", fill=0), 8)],
            [(timeseries("Deferral delay",
                         "Percentiles of the delay from earliest to actual start.",
                         [(f"histogram_quantile({q}, sum by (le) (rate("
                           f"suandian_deferral_duration_seconds_bucket{{{SITE}}}{rate})))",
                           f"p{round(q * 100)}") for q in (0.5, 0.9, 0.99)], "s", fill=0), 8),
             (timeseries("Starts and deferrals",
                         "Jobs started per hour by trigger, and deferral decisions.",
                         [(f"sum by (trigger) (rate(suandian_job_starts_total{{{SITE}}}{rate}))"
                           " * 3600", "start: {{trigger}}"),
                          (f"sum(rate(suandian_deferrals_total{{{SITE}}}{rate})) * 3600",
                           "deferrals")], "none"), 8)],
            [(timeseries("Planning latency",
                         "Percentiles of one planning round (target: under 1 s).",
                         [(f"histogram_quantile({q}, sum by (le) (rate("
                           f"suandian_planning_duration_seconds_bucket{rate})))",
                           f"p{round(q * 100)}") for q in (0.5, 0.99)], "s", fill=0), 8),
             (timeseries("Forecast provider requests and errors",
                         "Requests per minute by provider, and errors by reason.",
                         [(f"sum by (provider) (rate(suandian_provider_requests_total{rate}))"
                           " * 60", "{{provider}} requests"),
                          ("sum by (provider, reason) "
                           f"(rate(suandian_provider_errors_total{rate})) * 60",
                           "{{provider}} {{reason}}")], "none"), 8),
             (timeseries("Provider error ratio", "Failed requests over all requests.",
                         [(f"sum by (provider) (rate(suandian_provider_errors_total{rate}))"
                           f" / sum by (provider) (rate(suandian_provider_requests_total{rate}))",
                           "{{provider}}")], "percentunit", fill=0), 8)],
        ]))


NAMESPACE = 'namespace=~"$namespace"'
LEDGER = f"{SITE},{NAMESPACE}"
KWH = 3.6e6


def ledger_increase(counter: str, where: str = "", by: str = "") -> str:
    """``sum [by (...)] (increase(suandian_ledger_<counter>_total{site, namespace}[range]))``."""
    grouping = f" by ({by})" if by else ""
    matchers = ",".join(filter(None, (where, LEDGER)))
    return (f"sum{grouping} (increase(suandian_ledger_{counter}_total{{{matchers}}}"
            "[$__range]))")


def green_power_ledger() -> dict[str, Any]:
    energy, it = "energy_joules", "it_energy_joules"
    rolling = "(rolling 24 h: the recording rules of alerts/suandian.ledger.rules.yaml)"
    green = ledger_increase(energy, 'source!="grid"')
    measured = ledger_increase(it, 'provenance="measured"')
    namespace_variable = {
        "type": "query", "name": "namespace", "label": "Namespace", "datasource": DATASOURCE,
        "definition": "label_values(suandian_ledger_runs_total, namespace)",
        "query": {"query": "label_values(suandian_ledger_runs_total, namespace)",
                  "refId": "namespace"},
        "includeAll": True, "multi": True, "allValue": ".*", "current": {},
        "refresh": 2, "sort": 1, "hide": 0}
    return dashboard(
        "suandian-ledger", "Suandian — green-power ledger",
        "Energy of finished jobs by supply source, green share (绿电占比), PUE, CUE and the "
        "saving against running at once, per namespace and site; measured against "
        "modelled energy. Calendar-day figures for a report: `suandian report`.",
        layout([
            [(stat("Green share", "Non-grid share of the facility energy of jobs finished "
                   "in the time range.",
                   f"{green} / ({ledger_increase(energy)} > 0)",
                   "percentunit", steps=[("red", None), ("orange", 0.5), ("green", 0.8)]), 4),
             (stat("PUE used", "Facility energy over IT energy of the jobs finished in the "
                   "time range.", f"{ledger_increase(energy)} / ({ledger_increase(it)} > 0)",
                   "none"), 4),
             (stat("CUE, kg CO₂ per IT kWh", "Emissions over IT energy in the time range.",
                   f"{ledger_increase('emissions_grams')} / ({ledger_increase(it)} > 0) * 3600",
                   "none"), 4),
             (stat("CO₂ saved against run-now", "What the jobs would have emitted run at "
                   "once, minus what they emitted (negative: worse).",
                   f"{ledger_increase('run_now_emissions_grams')} - "
                   f"{ledger_increase('emissions_grams')}", "massg"), 4),
             (stat("Measured share of IT energy", "IT energy read from Kepler/DCGM for "
                   "the whole run, over all IT energy.",
                   f"{measured} / ({ledger_increase(it)} > 0)",
                   "percentunit", steps=[("orange", None), ("green", 0.9)]), 4)],
            [(timeseries("Energy by source, per day", f"Facility kWh of finished jobs by "
                         f"supply source {rolling}.",
                         [("sum by (source) (namespace_site_source:suandian_ledger_energy_"
                           f"joules:increase1d{{{LEDGER}}}) / {KWH:g}", "{{source}}")],
                         "kwatth", stacked=True, fill=40), 9)],
            [(timeseries("Green share by namespace, per day", f"Non-grid share {rolling}.",
                         [(f"namespace_site:suandian_ledger_green_energy:ratio1d{{{LEDGER}}}",
                           "{{namespace}} at {{site}}")], "percentunit", fill=0), 8),
             (timeseries("PUE by site, per day", f"Facility over IT energy {rolling}.",
                         [(f"site:suandian_ledger_pue:ratio1d{{{SITE}}}", "{{site}}")],
                         "none", fill=0), 8),
             (timeseries("CUE by site, per day", f"kg CO₂ per kWh of IT energy {rolling}.",
                         [(f"site:suandian_ledger_cue_grams_per_joule:ratio1d{{{SITE}}} "
                           "* 3600", "{{site}}")], "none", fill=0), 8)],
            [(timeseries("Saving against run-now, per day",
                         f"CO₂ avoided by namespace (negative: worse than at once) {rolling}.",
                         [("namespace_site:suandian_ledger_emissions_avoided_grams:increase1d"
                           f"{{{LEDGER}}}", "{{namespace}} at {{site}}")], "massg",
                         threshold_zero=True), 8),
             (timeseries("Measured vs modelled IT energy, per day",
                         f"IT kWh by provenance: measured, partly measured, modelled {rolling}.",
                         [("sum by (provenance) (namespace_site_provenance:suandian_ledger_"
                           f"it_energy_joules:increase1d{{{LEDGER}}}) / {KWH:g}",
                           "{{provenance}}")], "kwatth", stacked=True, fill=40), 8),
             (bargauge("Energy by namespace", "Facility kWh of jobs finished in the time "
                       "range.", f"{ledger_increase(energy, by='namespace')} / {KWH:g}",
                       "{{namespace}}", "kwatth"), 8)],
        ]), (namespace_variable,))


def build() -> dict[str, str]:
    """File name to JSON text of every dashboard."""
    boards = {"power-and-placement.json": power_and_placement(),
              "savings-and-service.json": savings_and_service(),
              "green-power-ledger.json": green_power_ledger()}
    return {name: json.dumps(board, indent=2, ensure_ascii=False) + "\n"
            for name, board in boards.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the files are stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in build().items():
        path = OUTPUT / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(path))
        else:
            OUTPUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    extra = sorted(p.name for p in OUTPUT.glob("*.json") if p.name not in build())
    for name in extra:
        print(f"not built by this script: {OUTPUT / name}", file=sys.stderr)
    if stale:
        print("stale: " + ", ".join(stale) + "; run `python hack/dashboards.py`",
              file=sys.stderr)
    return 1 if stale or extra else 0


if __name__ == "__main__":
    raise SystemExit(main())

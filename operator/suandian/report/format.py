"""The ledger as a table for people, CSV for spreadsheets and JSON for programs.

Pure functions of a :class:`~suandian.report.ledger.Ledger`: no I/O, so every number a
report prints is checked by unit tests. Units are the ones a data-centre report uses:
kWh, kg CO2, shares as percentages in the table (ratios in CSV and JSON), CUE in kg CO2
per kWh of IT energy.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from suandian.metrics.labels import LEDGER_SOURCES, PROVENANCES
from suandian.report.ledger import TOLERANCE, Check, Ledger, Row

SOURCE_HEADINGS = {"solar": "solar", "wind": "wind", "hydro": "hydro",
                   "directGreen": "direct", "storage": "storage", "grid": "grid"}
TABLE_HEADINGS = ("day", "namespace", "site", *SOURCE_HEADINGS.values(), "total kWh",
                  "green", "IT kWh", "PUE", "CO2 kg", "CUE", "saved kg", "measured", "jobs")
CSV_COLUMNS = ("day", "namespace", "site", "partial_day",
               *(f"{s}_kwh" for s in LEDGER_SOURCES), "total_kwh", "green_kwh",
               "green_share", "it_kwh", *(f"{p}_it_kwh" for p in PROVENANCES), "pue",
               "emissions_kg", "cue_kg_per_kwh", "saved_kg", "jobs")


def _fixed(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _day(row: Row) -> str:
    if row.day is None:
        return "total"
    return f"{row.day.isoformat()}{'*' if row.partial else ''}"


def table_cells(row: Row) -> list[str]:
    """One table line: energy in kWh (1 decimal), shares in %, CO2 in kg."""
    return [_day(row), row.namespace, row.site,
            *(_fixed(row.kwh[s], 1) for s in LEDGER_SOURCES), _fixed(row.total_kwh, 1),
            _percent(row.green_share), _fixed(row.it_kwh, 1), _fixed(row.pue, 2),
            _fixed(row.emissions_g / 1000, 2), _fixed(row.cue_kg_per_kwh, 3),
            _fixed(row.saved_g / 1000, 2), _percent(row.measured_share),
            f"{row.jobs:.0f}"]


def _align(lines: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip()
            for line in lines]


def check_line(check: Check) -> str:
    """``site day: energy a vs b kWh (x%), green ..., CO2 ...: OK|MISMATCH``."""
    when = "period" if check.day is None else check.day.isoformat()
    parts = [f"energy {check.ledger_kwh:,.3f} vs {check.site_kwh:,.3f} kWh "
             f"({Check.gap(check.ledger_kwh, check.site_kwh):.2%})",
             f"green {check.ledger_green_kwh:,.3f} vs {check.site_green_kwh:,.3f} kWh "
             f"({Check.gap(check.ledger_green_kwh, check.site_green_kwh):.2%})",
             f"CO2 {check.ledger_g / 1000:,.3f} vs {check.site_g / 1000:,.3f} kg "
             f"({Check.gap(check.ledger_g, check.site_g):.2%})"]
    return f"  {check.site} {when}: {', '.join(parts)}: {'OK' if check.ok else 'MISMATCH'}"


def reconciliation_text(ledger: Ledger) -> str:
    """The check in words: the period per site, and every day that is off."""
    head = (f"Reconciliation: the ledger summed over namespaces against the site counters "
            f"(suandian_energy_joules_total, suandian_emissions_grams_total), "
            f"tolerance {TOLERANCE:.0%}:")
    if not ledger.checks:
        return head + "\n  nothing recorded at the selected sites in this period"
    period = [check_line(c) for c in ledger.checks if c.day is None]
    days = [check_line(c) for c in ledger.checks if c.day is not None and not c.ok]
    verdict = ("all days and sites agree" if ledger.reconciled else
               f"{sum(not c.ok for c in ledger.checks if c.day is not None)} site-day(s) "
               "disagree: a job is in one and not the other (see docs/observability.md)")
    return "\n".join([head, *period, *days, f"  {verdict}"])


def table(ledger: Ledger) -> str:
    """Rows per day, then a total per namespace and site, then the reconciliation."""
    if not ledger.rows:
        body = "No ledger entries in this period (no job finished at the selected sites)."
    else:
        lines = [list(TABLE_HEADINGS), *(table_cells(r) for r in ledger.rows)]
        if len(ledger.days) > 1:
            lines += [table_cells(r) for r in ledger.totals]
        body = "\n".join(_align(lines))
        if any(r.partial for r in ledger.rows):
            body += "\n* the day is not over: figures up to now"
    notes = ("kWh: facility energy (IT x PUE) by source; green: non-grid share; PUE: "
             "facility/IT; CUE: kg CO2 per IT kWh; saved: against running at once; "
             "measured: share of IT energy read from Kepler/DCGM")
    return f"{body}\n{notes}\n\n{reconciliation_text(ledger)}\n"


def _number(value: float | None) -> float | None:
    return None if value is None else round(value, 9)


def row_record(row: Row) -> dict[str, Any]:
    """One row as flat fields (CSV column names; JSON object keys)."""
    record: dict[str, Any] = {
        "day": row.day.isoformat() if row.day else "total", "namespace": row.namespace,
        "site": row.site, "partial_day": row.partial}
    record.update({f"{s}_kwh": _number(row.kwh[s]) for s in LEDGER_SOURCES})
    record.update(total_kwh=_number(row.total_kwh), green_kwh=_number(row.green_kwh),
                  green_share=_number(row.green_share), it_kwh=_number(row.it_kwh))
    record.update({f"{p}_it_kwh": _number(row.it_kwh_by_provenance[p]) for p in PROVENANCES})
    record.update(pue=_number(row.pue), emissions_kg=_number(row.emissions_g / 1000),
                  cue_kg_per_kwh=_number(row.cue_kg_per_kwh),
                  saved_kg=_number(row.saved_g / 1000), jobs=round(row.jobs))
    return record


def csv_text(ledger: Ledger) -> str:
    """Rows per day, then the period totals (``day`` = ``total``); empty cells: undefined."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in [*ledger.rows, *ledger.totals]:
        writer.writerow({k: "" if v is None else v for k, v in row_record(row).items()})
    return out.getvalue()


def json_text(ledger: Ledger, **context: Any) -> str:
    """One JSON object: ``context`` (period, zone, URL), rows, totals, reconciliation."""
    checks = [{"site": c.site, "day": c.day.isoformat() if c.day else "period",
               "ledger_kwh": _number(c.ledger_kwh), "site_kwh": _number(c.site_kwh),
               "ledger_green_kwh": _number(c.ledger_green_kwh),
               "site_green_kwh": _number(c.site_green_kwh),
               "ledger_emissions_kg": _number(c.ledger_g / 1000),
               "site_emissions_kg": _number(c.site_g / 1000),
               "gap": _number(c.worst), "ok": c.ok} for c in ledger.checks]
    document = {**context, "rows": [row_record(r) for r in ledger.rows],
                "totals": [row_record(r) for r in ledger.totals],
                "reconciliation": {"tolerance": TOLERANCE, "ok": ledger.reconciled,
                                   "checks": checks}}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

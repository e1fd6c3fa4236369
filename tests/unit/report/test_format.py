"""The table, CSV and JSON of a ledger: the numbers and units each prints."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

from suandian.report.days import Day
from suandian.report.format import (
    CSV_COLUMNS,
    TABLE_HEADINGS,
    csv_text,
    json_text,
    reconciliation_text,
    table,
    table_cells,
)
from suandian.report.ledger import Ledger, Row, compare, site_rows, totals

D1, D2 = date(2026, 11, 1), date(2026, 11, 2)


def row(day: date, namespace: str, *, partial: bool = False, **kwh: float) -> Row:
    r = Row(day, namespace, "gansu", partial=partial)
    r.kwh.update(kwh)
    r.it_kwh_by_provenance["measured"] = sum(kwh.values()) / 1.25
    r.emissions_g, r.run_now_g, r.jobs = 4000.0, 6000.0, 1
    return r


def ledger(rows: list[Row], site: dict[tuple[date | None, str], list[float]] | None = None
           ) -> Ledger:
    days = [Day(D1, 0.0, 86400.0, False), Day(D2, 86400.0, 172800.0, False)]
    if site is None:
        site = {k: [r.total_kwh, r.green_kwh, r.emissions_g]
                for k, r in site_rows(rows).items()}
    return Ledger(days, rows, totals(rows), compare(site_rows(rows), site))


def test_table_cells_are_in_report_units() -> None:
    cells = table_cells(row(D1, "team-a", solar=30.0, wind=10.0, grid=10.0))
    assert dict(zip(TABLE_HEADINGS, cells, strict=True)) == {
        "day": "2026-11-01", "namespace": "team-a", "site": "gansu", "solar": "30.0",
        "wind": "10.0", "hydro": "0.0", "direct": "0.0", "storage": "0.0", "grid": "10.0",
        "total kWh": "50.0", "green": "80.0%", "IT kWh": "40.0", "PUE": "1.25",
        "CO2 kg": "4.00", "CUE": "0.100", "saved kg": "2.00", "measured": "100.0%",
        "jobs": "1"}


def test_undefined_ratios_print_as_a_dash() -> None:
    cells = table_cells(Row(D1, "team-a", "gansu"))
    headings = list(TABLE_HEADINGS)
    for name in ("green", "PUE", "CUE", "measured"):
        assert cells[headings.index(name)] == "-"


def test_the_table_has_days_totals_a_partial_mark_and_the_check() -> None:
    text = table(ledger([row(D1, "team-a", solar=5.0), row(D2, "team-a", partial=True,
                                                           grid=5.0)]))
    lines = text.splitlines()
    assert lines[0].split()[0] == "day"
    assert lines[2].startswith("2026-11-02*")
    assert lines[3].split()[:3] == ["total", "team-a", "gansu"]
    assert "* the day is not over" in text
    assert "gansu period: energy 10.000 vs 10.000 kWh (0.00%)" in text
    assert "all days and sites agree" in text


def test_an_empty_ledger_says_so() -> None:
    text = table(ledger([]))
    assert text.startswith("No ledger entries in this period")
    assert "nothing recorded at the selected sites" in text


def test_a_mismatch_names_the_site_and_day() -> None:
    text = reconciliation_text(ledger([row(D1, "team-a", grid=10.0)],
                                      {(D1, "gansu"): [12.0, 0.0, 4000.0]}))
    assert "gansu 2026-11-01: energy 10.000 vs 12.000 kWh (16.67%)" in text
    assert "MISMATCH" in text and "1 site-day(s) disagree" in text


def test_csv_has_full_precision_columns_and_totals() -> None:
    text = csv_text(ledger([row(D1, "team-a", solar=1.0 / 3), row(D1, "team-b", grid=2.0)]))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["day"] for r in rows] == ["2026-11-01", "2026-11-01", "total", "total"]
    assert float(rows[0]["solar_kwh"]) == round(1 / 3, 9)
    assert rows[1]["green_share"] == "0.0" and rows[1]["partial_day"] == "False"
    assert float(rows[0]["saved_kg"]) == 2.0


def test_json_holds_context_rows_totals_and_checks() -> None:
    doc = json.loads(json_text(ledger([row(D1, "team-a", wind=4.0)]), since="2026-11-01",
                               timezone="UTC"))
    assert doc["since"] == "2026-11-01" and doc["timezone"] == "UTC"
    assert doc["rows"][0]["wind_kwh"] == 4.0 and doc["rows"][0]["pue"] == 1.25
    assert doc["totals"][0]["day"] == "total"
    assert doc["reconciliation"]["ok"] is True
    assert doc["reconciliation"]["tolerance"] == 0.01
    assert [c["day"] for c in doc["reconciliation"]["checks"]] == ["2026-11-01", "period"]
    undefined = json.loads(json_text(ledger([Row(D1, "team-a", "gansu")])))
    assert undefined["rows"][0]["pue"] is None


def test_the_plot_sums_namespaces_per_day_and_keeps_empty_days() -> None:
    from suandian.report.plot import per_day

    days = per_day(ledger([row(D1, "team-a", solar=2.0), row(D1, "team-b", grid=2.0)]))
    assert [(d.day, d.total_kwh, d.green_share) for d in days] == [
        (D1, 4.0, 0.5), (D2, 0.0, None)]

"""A ledger row's derived figures, period totals, and the reconciliation arithmetic."""

from __future__ import annotations

from datetime import date

import pytest

from suandian.report.ledger import TOLERANCE, Check, Row, compare, site_rows, totals

D1, D2 = date(2026, 11, 1), date(2026, 11, 2)


def row(day: date | None = D1, namespace: str = "team-a", site: str = "gansu", **kwh: float
        ) -> Row:
    r = Row(day, namespace, site)
    r.kwh.update(kwh)
    r.it_kwh_by_provenance.update(measured=sum(kwh.values()) / 1.25 * 0.75,
                                  modelled=sum(kwh.values()) / 1.25 * 0.25)
    r.emissions_g, r.run_now_g, r.jobs = 4000.0, 6500.0, 2
    return r


def test_derived_figures() -> None:
    r = row(solar=30.0, wind=10.0, grid=10.0)
    assert r.total_kwh == 50.0 and r.green_kwh == 40.0
    assert r.green_share == pytest.approx(0.8)
    assert r.it_kwh == pytest.approx(40.0)
    assert r.pue == pytest.approx(1.25)
    assert r.cue_kg_per_kwh == pytest.approx(0.1)  # 4 kg over 40 IT kWh
    assert r.saved_g == 2500.0
    assert r.measured_share == pytest.approx(0.75)


def test_ratios_are_undefined_without_energy() -> None:
    r = Row(D1, "team-a", "gansu")
    assert (r.green_share, r.pue, r.cue_kg_per_kwh, r.measured_share) == (None,) * 4


def test_a_negative_saving_stays_negative() -> None:
    r = row(grid=5.0)
    r.run_now_g = 3000.0
    assert r.saved_g == -1000.0


def test_totals_add_days_per_namespace_and_site() -> None:
    rows = [row(D1, solar=1.0), row(D2, solar=2.0, grid=1.0), row(D1, "team-b", grid=4.0)]
    out = totals(rows)
    assert [(r.day, r.namespace, r.total_kwh, r.jobs) for r in out] == [
        (None, "team-a", 4.0, 4), (None, "team-b", 4.0, 2)]


def test_site_rows_sum_over_namespaces() -> None:
    rows = [row(D1, solar=1.0), row(D1, "team-b", grid=4.0), row(D1, site="guizhou", wind=2.0)]
    sums = site_rows(rows)
    assert sums[D1, "gansu"].total_kwh == 5.0 and sums[D1, "gansu"].green_kwh == 1.0
    assert sums[D1, "guizhou"].total_kwh == 2.0


def test_the_gap_is_relative_to_the_larger_and_zero_for_two_zeros() -> None:
    assert Check.gap(99.0, 100.0) == pytest.approx(0.01)
    assert Check.gap(100.0, 99.0) == pytest.approx(0.01)
    assert Check.gap(0.0, 0.0) == 0.0
    assert Check.gap(0.0, 5.0) == 1.0


def test_within_one_percent_agrees_and_beyond_does_not() -> None:
    ledger = {(D1, "gansu"): row(solar=99.5, grid=0.5)}  # 100 kWh, 99.5 green, 4000 g
    near = compare(ledger, {(D1, "gansu"): [100.9, 100.4, 4030.0]})
    assert all(c.ok for c in near)
    assert max(c.worst for c in near) <= TOLERANCE
    far = compare(ledger, {(D1, "gansu"): [100.0, 99.5, 4100.0]})  # CO2 2.4% off
    assert [c.ok for c in far] == [False, False]  # the day, and the period


def test_a_site_only_one_side_knows_is_a_mismatch_on_both_sides() -> None:
    only_ledger = compare({(D1, "gansu"): row(grid=1.0)}, {})
    only_site = compare({}, {(D2, "ningxia"): [10.0, 0.0, 5000.0]})
    assert [(c.site, c.day, c.ok) for c in only_ledger] == [
        ("gansu", D1, False), ("gansu", None, False)]
    assert [(c.site, c.day, c.ok) for c in only_site] == [
        ("ningxia", D2, False), ("ningxia", None, False)]


def test_the_period_check_adds_the_days() -> None:
    checks = compare({(D1, "gansu"): row(D1, grid=10.0), (D2, "gansu"): row(D2, grid=30.0)},
                     {(D1, "gansu"): [10.0, 0.0, 4000.0], (D2, "gansu"): [30.0, 0.0, 4000.0]})
    period = checks[-1]
    assert (period.day, period.ledger_kwh, period.site_kwh, period.site_g) == (
        None, 40.0, 40.0, 8000.0)
    assert period.ok


def test_site_matchers_escape_regex_then_quote_for_promql() -> None:
    from suandian.report.ledger import site_matchers

    assert site_matchers([]) == ""
    assert site_matchers(["inner-mongolia", "a.b"]) == 'site=~"inner\\\\-mongolia|a\\\\.b"'

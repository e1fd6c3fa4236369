"""record_ledger_run: the series it writes, its base units, and the inputs it refuses."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from suandian import metrics


def run(**overrides: Any) -> None:
    args: dict[str, Any] = {
        "namespace": "team-a", "site": "gansu",
        "kwh_by_source": {"solar": 2.0, "storage": 0.5, "grid": 1.5},
        "it_kwh": 3.2, "emissions_g": 700.0, "saved_g": 250.0, "provenance": "measured",
    }
    args.update(overrides)
    metrics.record_ledger_run(**args)


def test_a_run_is_counted_in_joules_and_grams(registry: CollectorRegistry) -> None:
    run()
    get = registry.get_sample_value
    labels = {"namespace": "team-a", "site": "gansu", "provenance": "measured"}
    assert get("suandian_ledger_energy_joules_total", {**labels, "source": "solar"}) == 7.2e6
    assert get("suandian_ledger_energy_joules_total", {**labels, "source": "storage"}) == 1.8e6
    assert get("suandian_ledger_energy_joules_total", {**labels, "source": "grid"}) == 5.4e6
    assert get("suandian_ledger_it_energy_joules_total", labels) == pytest.approx(3.2 * 3.6e6)
    where = {"namespace": "team-a", "site": "gansu"}
    assert get("suandian_ledger_emissions_grams_total", where) == 700.0
    assert get("suandian_ledger_run_now_emissions_grams_total", where) == 950.0
    assert get("suandian_ledger_runs_total", labels) == 1.0


def test_every_source_exists_at_zero_after_the_first_run(registry: CollectorRegistry) -> None:
    run()
    where = {"namespace": "team-a", "site": "gansu", "provenance": "measured"}
    for source in metrics.LEDGER_SOURCES:
        value = registry.get_sample_value("suandian_ledger_energy_joules_total",
                                          {**where, "source": source})
        used = source in ("solar", "storage", "grid")
        assert (value or 0.0) > 0 if used else value == 0.0, source
    # another provenance's series come with its first run, not before
    assert registry.get_sample_value("suandian_ledger_energy_joules_total", {
        **where, "source": "wind", "provenance": "modelled"}) is None
    assert registry.get_sample_value("suandian_ledger_runs_total", {
        "namespace": "team-b", "site": "gansu", "provenance": "measured"}) is None


def test_runs_add_up_and_stay_apart_by_namespace(registry: CollectorRegistry) -> None:
    run()
    run(saved_g=-100.0, provenance="modelled")
    run(namespace="team-b")
    get = registry.get_sample_value
    assert get("suandian_ledger_emissions_grams_total",
               {"namespace": "team-a", "site": "gansu"}) == 1400.0
    # a negative saving lowers the run-now baseline: 950 + 600
    assert get("suandian_ledger_run_now_emissions_grams_total",
               {"namespace": "team-a", "site": "gansu"}) == 1550.0
    assert get("suandian_ledger_runs_total", {"namespace": "team-a", "site": "gansu",
                                              "provenance": "modelled"}) == 1.0
    assert get("suandian_ledger_emissions_grams_total",
               {"namespace": "team-b", "site": "gansu"}) == 700.0


@pytest.mark.parametrize(("overrides", "names"), [
    ({"namespace": "Team_A"}, "namespace"),
    ({"namespace": "x" * 64}, "namespace"),
    ({"site": ""}, "site"),
    ({"provenance": "guessed"}, "provenance"),
    ({"kwh_by_source": {"coal": 1.0}}, "kwh_by_source key"),
    ({"kwh_by_source": {"solar": -1.0}}, "kwh_by_source['solar']"),
    ({"kwh_by_source": {"solar": float("nan")}}, "kwh_by_source['solar']"),
    ({"it_kwh": -0.1}, "it_kwh"),
    ({"it_kwh": 5.0}, "it_kwh"),
    ({"emissions_g": float("inf")}, "emissions_g"),
    ({"saved_g": -701.0}, "saved_g"),
])
def test_bad_figures_are_refused_naming_the_argument(
        registry: CollectorRegistry, overrides: dict[str, Any], names: str) -> None:
    with pytest.raises(ValueError, match=names.replace("[", r"\[").replace("]", r"\]")):
        run(**overrides)
    assert registry.get_sample_value("suandian_ledger_runs_total", {
        "namespace": "team-a", "site": "gansu", "provenance": "measured"}) is None

"""OpenADR events as GridEvent manifests (suandian.openadr): each valid for the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from suandian.api import parse_gridevent
from suandian.config import Settings
from suandian.openadr import (
    Unplannable,
    event_name,
    grid_event_of,
    simple_levels,
)

T0 = datetime(2026, 12, 4, 10, tzinfo=UTC)


def event(signal: str, kind: str, *payloads: float, sites: tuple[str, ...] = ("jiangsu",),
          **signal_fields: Any) -> dict[str, Any]:
    intervals = [{"dtstart": T0 + timedelta(hours=i), "duration": timedelta(hours=1),
                  "signal_payload": p} for i, p in enumerate(payloads)]
    return {"event_descriptor": {"event_id": "Evt_42", "event_status": "far"},
            "active_period": {"dtstart": T0, "duration": timedelta(hours=len(payloads))},
            "event_signals": [{"signal_name": signal, "signal_type": kind,
                               "intervals": intervals, **signal_fields}],
            "targets_by_type": {"resource_id": list(sites)} if sites else {}}


def spec_of(e: dict[str, Any], default_sites: tuple[str, ...] = (),
            mandatory: bool = False, levels: dict[int, float] | None = None
            ) -> dict[str, Any]:
    manifest = grid_event_of(e, default_sites, mandatory, levels)
    assert manifest is not None
    parse_gridevent(manifest)  # the API's own models accept it
    return manifest["spec"]


def test_a_setpoint_is_a_ceiling_at_its_lowest_and_the_window_the_active_period() -> None:
    spec = spec_of(event("LOAD_DISPATCH", "setpoint", 2000.0, 1500.0))
    assert spec["type"] == "Shed" and spec["shed"] == {"ceilingKW": 1500.0}
    assert (spec["start"], spec["end"]) == ("2026-12-04T10:00:00Z", "2026-12-04T12:00:00Z")
    assert (spec["source"], spec["sourceRef"], spec["sites"]) == ("OpenADR", "Evt_42",
                                                                  ["jiangsu"])


def test_a_delta_down_is_a_reduction_and_up_a_surplus() -> None:
    assert spec_of(event("LOAD_DISPATCH", "delta", -300.0, -500.0))["shed"] == {
        "reductionKW": 500.0}
    up = spec_of(event("LOAD_DISPATCH", "delta", 8000.0, 6000.0))
    assert up["type"] == "Absorb" and up["absorb"] == {"powerKW": 6000.0}


def test_a_price_signal_is_a_tariff_of_one_period_per_interval() -> None:
    spec = spec_of(event("ELECTRICITY_PRICE", "price", 1.2, 0.3,
                         measurement={"unit": "CNY"}))
    assert spec["type"] == "Price" and spec["prices"]["currency"] == "CNY"
    assert [p["pricePerKWh"] for p in spec["prices"]["periods"]] == [1.2, 0.3]


def test_without_targets_the_configured_sites_and_the_mandatory_setting_hold() -> None:
    spec = spec_of(event("LOAD_DISPATCH", "setpoint", 0.0, sites=()),
                   default_sites=("gansu", "jiangsu"), mandatory=True)
    assert spec["sites"] == ["gansu", "jiangsu"] and spec["mandatory"] is True


def test_a_simple_level_sheds_its_share_at_the_highest_level_of_the_event() -> None:
    spec = spec_of(event("SIMPLE", "level", 1.0, 3.0, 2.0))
    assert spec["type"] == "Shed" and spec["shed"] == {"reductionPercent": 75.0}
    assert spec_of(event("simple", "level", 1.0), levels={1: 10.0})["shed"] == {
        "reductionPercent": 10.0}


def test_a_simple_event_at_level_zero_asks_nothing() -> None:
    assert grid_event_of(event("SIMPLE", "level", 0.0, 0.0), (), False) is None


def test_a_negative_percent_offset_is_a_shed_by_that_share() -> None:
    spec = spec_of(event("LOAD_CONTROL", "x-loadControlPercentOffset", -20.0, -40.0))
    assert spec["shed"] == {"reductionPercent": 40.0}


def test_the_simple_levels_setting_is_parsed_and_shed_a_quarter_to_three_quarters() -> None:
    assert simple_levels("3=80, 1=20") == {3: 80.0, 1: 20.0}
    assert simple_levels(Settings().openadr_simple_levels) == {1: 25.0, 2: 50.0, 3: 75.0}
    for bad in ("", "4=10", "1=0", "1=101", "1=25,1=30", "one=25", "1"):
        with pytest.raises(ValueError, match=r"e\.g\. 3=75"):
            simple_levels(bad)


def test_a_bad_simple_levels_setting_names_the_variable() -> None:
    from suandian.errors import InvalidSpecError

    with pytest.raises(InvalidSpecError, match="SUANDIAN_OPENADR_SIMPLE_LEVELS"):
        Settings.from_env({"SUANDIAN_OPENADR_SIMPLE_LEVELS": "2=150"})


@pytest.mark.parametrize(("e", "why"), [
    (event("BID_LOAD", "setpoint", 2.0), "BID_LOAD/setpoint is not a signal Suandian plans"),
    (event("SIMPLE", "level", 2.5, 1.0), "SIMPLE level 2.5 has no share"),
    (event("SIMPLE", "level", float("nan")), "SIMPLE level nan has no share"),
    (event("SIMPLE", "level", float("inf")), "SIMPLE level inf has no share"),
    (event("LOAD_CONTROL", "x-loadControlPercentOffset", 10.0), "a shed only"),
    (event("LOAD_DISPATCH", "delta", -5.0, 5.0), "a delta both up and down"),
    (event("LOAD_DISPATCH", "setpoint", 0.0, sites=()), "targets no resource_id"),
])
def test_what_cannot_be_planned_is_refused_saying_what_to_send(e: dict[str, Any],
                                                               why: str) -> None:
    with pytest.raises(Unplannable, match=why):
        grid_event_of(e, (), False)


def test_an_event_id_becomes_a_dns_label() -> None:
    assert event_name("Evt_42") == "oadr-evt-42"
    assert len(event_name("x" * 300)) == 63

"""Durations and quantities: the spellings users write, and no crash on anything else."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suandian.units import (
    DURATION_PATTERN,
    QUANTITY_PATTERN,
    format_duration,
    humanize_duration,
    parse_duration,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90m", 5400), ("4h", 14400), ("1h30m", 5400), ("1.5h", 5400), ("45s", 45),
        ("2d", 172800), ("1d12h", 129600), ("500ms", 0.5), ("PT4H", 14400),
        ("P1DT2H", 93600), ("PT90M", 5400), ("P1W", 604800), ("PT0.5S", 0.5), (" 4h ", 14400),
    ],
)
def test_duration_spellings(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "4", "h", "4 h", "-5m", "four hours", "P", "PT", "P1M", "P1Y", "1h-30m",
             "4hours", "PT4H5", "P1DT", "8785h"],
)
def test_duration_refusals(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|year"):
        parse_duration(text)


def test_duration_refuses_non_strings() -> None:
    with pytest.raises(TypeError):
        parse_duration(3600)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=366 * 86400 * 1000))
def test_duration_round_trip(millis: int) -> None:
    value = timedelta(milliseconds=millis)
    text = format_duration(value)
    assert re.fullmatch(DURATION_PATTERN, text)
    assert parse_duration(text) == value


@given(st.text(max_size=30))
def test_duration_parser_never_crashes(text: str) -> None:
    try:
        value = parse_duration(text)
    except ValueError:
        return
    assert value >= timedelta(0)
    assert re.fullmatch(DURATION_PATTERN, text.strip()), "accepted what the CRD would refuse"


@pytest.mark.parametrize(
    ("value", "humane"),
    [(30, "30s"), (300, "5m"), (18000, "5h"), (19800, "5h 30m"), (93600, "1d 2h"), (-60, "-1m")],
)
def test_humanize(value: int, humane: str) -> None:
    assert humanize_duration(value) == humane


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")), ("2", Decimal(2)), ("16Gi", Decimal(16 * 2**30)),
        ("1Ki", Decimal(1024)), ("100M", Decimal(10**8)), ("1e3", Decimal(1000)),
        ("1.5", Decimal("1.5")), (".5", Decimal("0.5")), ("+3", Decimal(3)),
        ("250n", Decimal("2.5e-7")),
        ("1E", Decimal(10**18)), (8, Decimal(8)), (0.25, Decimal("0.25")),
    ],
)
def test_quantity_spellings(text: str | int | float, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "lots", "-2", "8gpus", "1.2.3", "Gi", "1e", "1 Gi", "0x10"])
def test_quantity_refusals(text: str) -> None:
    with pytest.raises(ValueError, match=r"quantit|negative"):
        parse_quantity(text)


def test_quantity_refuses_booleans_and_nan() -> None:
    with pytest.raises(TypeError):
        parse_quantity(True)
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(float("nan"))


_SUFFIXES = ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"]


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(_SUFFIXES))
def test_quantity_round_trip(number: int, suffix: str) -> None:
    parsed = parse_quantity(f"{number}{suffix}")
    factor = parse_quantity(f"1{suffix}")
    assert parsed == number * factor
    assert parse_quantity(format(parsed.normalize(), "f")) == parsed


@given(st.text(max_size=20))
def test_quantity_parser_never_crashes(text: str) -> None:
    try:
        value = parse_quantity(text)
    except ValueError:
        return
    assert value >= 0
    assert re.fullmatch(QUANTITY_PATTERN, text.strip())


def test_times_need_a_zone_and_come_back_in_utc() -> None:
    from datetime import UTC, datetime

    from suandian.units import parse_time

    assert parse_time("2026-11-29T08:00:00+08:00") == datetime(2026, 11, 29, 0, tzinfo=UTC)
    assert parse_time("2026-11-29T00:00:00Z").tzinfo is UTC
    with pytest.raises(ValueError, match=r"no time zone"):
        parse_time("2026-11-29T08:00:00")

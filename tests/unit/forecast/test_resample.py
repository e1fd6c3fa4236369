"""Resampling: energy preserved, no NaN leaks, time zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from suandian.forecast import TimeGrid
from suandian.forecast.resample import fill_short_gaps, parse_times, resample

GRID = TimeGrid(datetime(2026, 3, 1, tzinfo=UTC), slots=96 * 3)
periods = st.sampled_from([300, 900, 1800, 3600, 7200])


@settings(max_examples=80, deadline=None)
@given(period=periods, offset_slots=st.integers(0, 20),
       values=st.lists(st.floats(0, 1e5, allow_nan=False), min_size=1, max_size=40))
def test_energy_is_preserved(period: int, offset_slots: int, values: list[float]) -> None:
    start = GRID.start_epoch + offset_slots * 300
    assume(start + period * len(values) <= GRID.start_epoch + GRID.slots * GRID.slot_seconds)
    starts = start + period * np.arange(len(values), dtype=np.float64)
    out, cover = resample(starts, np.array(values), GRID, "energy", durations=float(period))
    energy_in = sum(values) * period
    energy_out = np.nansum(out * cover) * GRID.slot_seconds
    assert energy_out == pytest.approx(energy_in, rel=1e-9, abs=1e-6)
    assert not np.any(np.isnan(out[cover > 0]))
    assert np.all(np.isnan(out[cover == 0]))


@settings(max_examples=50, deadline=None)
@given(period=periods, values=st.lists(st.floats(0, 2000), min_size=2, max_size=30))
def test_rates_interpolate_within_their_range(period: int, values: list[float]) -> None:
    starts = GRID.start_epoch + period * np.arange(len(values), dtype=np.float64)
    out, _ = resample(starts, np.array(values), GRID, "rate", durations=float(period))
    covered = out[np.isfinite(out)]
    assert covered.size > 0
    assert covered.min() >= min(values) - 1e-9 and covered.max() <= max(values) + 1e-9
    assert np.all(np.isnan(out[GRID.epoch_seconds >= starts[-1] + period]))


@settings(max_examples=30, deadline=None)
@given(zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney",
                             "Asia/Shanghai"]),
       day=st.sampled_from([datetime(2026, 3, 8), datetime(2026, 3, 29), datetime(2026, 4, 5),
                            datetime(2026, 10, 25), datetime(2026, 11, 1)]),
       level=st.floats(1, 1000))
def test_local_hourly_series_across_dst_keeps_energy(zone: str, day: datetime,
                                                     level: float) -> None:
    """Hourly wall-clock rows over a DST change: each real hour counted once."""
    tz = ZoneInfo(zone)
    first = day.replace(tzinfo=tz) - timedelta(hours=6)
    instants = [first.astimezone(UTC) + timedelta(hours=h) for h in range(30)]
    naive = [t.astimezone(tz).replace(tzinfo=None).isoformat() for t in instants]
    epoch = parse_times(naive, zone)
    np.testing.assert_array_equal(epoch, [t.timestamp() for t in instants])
    grid = TimeGrid.covering(instants[0], slots=96 * 2)
    out, cover = resample(epoch, np.full(30, level), grid, "energy", durations=3600.0)
    assert np.nansum(out * cover) * grid.slot_seconds == pytest.approx(level * 30 * 3600)


def test_offsets_in_the_strings_win_over_the_zone() -> None:
    a = parse_times(["2026-06-01T08:00:00+08:00", "2026-06-01T00:00:00Z"], "America/New_York")
    assert a[0] == a[1] == datetime(2026, 6, 1, tzinfo=UTC).timestamp()


def test_gaps_are_nan_and_short_ones_fill() -> None:
    starts = GRID.start_epoch + 3600 * np.array([0.0, 1.0, 4.0, 5.0])
    out, cover = resample(starts, np.array([1.0, 2.0, 5.0, 6.0]), GRID, "energy",
                          durations=3600.0)
    assert np.all(np.isnan(out[8:16])) and np.all(cover[8:16] == 0)
    filled = fill_short_gaps(out[:24], 8)
    assert np.all(np.isfinite(filled)) and filled[12] == pytest.approx(3.5, abs=0.5)
    assert np.isnan(fill_short_gaps(out[:24], 4)[12])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        resample(np.array([0.0, 0.0]), np.array([1.0, 2.0]), GRID, "energy")
    with pytest.raises(ValueError, match="overlap"):
        resample(np.array([0.0, 60.0]), np.array([1.0, 2.0]), GRID, "energy", durations=120.0)


def test_a_rate_sample_after_a_long_gap_is_its_own_slot() -> None:
    """The slot right after a 3-hour hole held its sample's value with coverage 1 but
    came back NaN (the exact-midpoint test looked only to the left)."""
    grid = TimeGrid(datetime(2026, 6, 1, tzinfo=UTC), slot=timedelta(hours=1), slots=12)
    hours = [h for h in range(12) if h not in (5, 6, 7)]
    out, cover = resample(grid.start_epoch + 3600.0 * np.array(hours, dtype=np.float64),
                          np.arange(len(hours), dtype=np.float64) + 400.0, grid, "rate")
    assert np.isnan(out[5:8]).all() and not cover[5:8].any()
    assert out[8] == 405.0 and cover[8] == 1.0
    assert np.isfinite(out[[*range(5), *range(8, 12)]]).all()

"""Samples to pieces of power: counters with resets, gauges, gaps, edges, merged series."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suandian.measure.series import (
    Pieces,
    Series,
    intersect,
    merge,
    pieces_of,
    slot_edges,
    union,
)


def counter(times: list[float], values: list[float], scale: float = 1.0,
            ident: tuple[str, ...] = ("a",)) -> Series:
    return Series(ident, np.array(times, dtype=float), np.array(values, dtype=float),
                  "counter", scale)


def test_a_counter_gives_its_increase_and_a_drop_is_a_restart_from_zero() -> None:
    # 100 W for 60 s, the exporter restarts (counter back to 30 J after 30 s), 100 W again
    s = counter([0, 30, 60, 90, 120], [1000, 4000, 7000, 3000, 6000])
    p = pieces_of(s, (0, 120), max_gap=90)
    assert p.energy_over([(0, 120)]) == pytest.approx(3000 + 3000 + 3000 + 3000)
    assert p.covered == [(0, 120)]


def test_millijoules_scale_and_the_first_sample_since_boot_is_not_counted() -> None:
    s = counter([0, 60], [5e12, 5e12 + 60_000_000], scale=1e-3)  # a GPU's mJ since boot
    p = pieces_of(s, (0, 60), max_gap=90)
    assert p.energy_over([(0, 60)]) == pytest.approx(60_000.0)  # 1000 W for a minute


def test_a_gap_longer_than_max_gap_is_not_measured() -> None:
    s = counter([0, 30, 60, 600, 630], [0, 3000, 6000, 60000, 63000])
    p = pieces_of(s, (0, 630), max_gap=90)
    assert p.covered == [(0, 60), (600, 630)]
    assert p.energy_over([(0, 630)]) == pytest.approx(9000.0)


def test_a_gauge_integrates_by_trapezoids() -> None:
    s = Series(("g",), np.array([0.0, 10.0, 20.0]), np.array([100.0, 300.0, 300.0]), "gauge")
    p = pieces_of(s, (0, 20), max_gap=30)
    assert p.energy_over([(0, 20)]) == pytest.approx(2000 + 3000)


def test_edges_within_max_gap_are_extended_at_the_nearest_power() -> None:
    s = counter([15, 45, 75], [0, 3000, 6000])  # 100 W, first sample 15 s into the run
    p = pieces_of(s, (0, 100), max_gap=60)
    assert p.covered == [(0, 100)]
    assert p.energy_over([(0, 100)]) == pytest.approx(100 * 100)
    far = pieces_of(s, (-200, 300), max_gap=60)  # edges further than max_gap stay open
    assert far.covered == [(15, 75)]


def test_series_of_one_identity_merge_across_an_exporter_restart() -> None:
    old = counter([0, 30, 60], [0, 3000, 6000])
    new = counter([90, 120], [3000, 6000])  # new series, counter restarted
    [joined] = merge([old, new])
    assert list(joined.times) == [0, 30, 60, 90, 120]
    p = pieces_of(joined, (0, 120), max_gap=60)
    assert p.energy_over([(0, 120)]) == pytest.approx(12000.0)
    other = counter([0, 30], [0, 1], ident=("b",))
    assert len(merge([old, new, other])) == 2


def test_equal_times_keep_one_value() -> None:
    [joined] = merge([counter([0, 30], [0, 3000]), counter([30, 60], [3000, 6000])])
    assert list(joined.times) == [0, 30, 60]


def test_slot_edges_follow_the_epoch_quarters() -> None:
    assert list(slot_edges(100, 2000, 900)) == [100, 900, 1800, 2000]
    assert list(slot_edges(900, 1800, 900)) == [900, 1800]
    assert list(slot_edges(50, 50, 900)) == [50, 50]
    with pytest.raises(ValueError, match="positive"):
        slot_edges(0, 1, 0)


def test_pieces_join_adds_power_and_unites_coverage() -> None:
    a = pieces_of(counter([0, 60], [0, 6000]), (0, 200), max_gap=60)
    b = pieces_of(counter([100, 160], [0, 600]), (0, 200), max_gap=60)
    both = Pieces.join([a, b])
    assert both.covered == [(0, 60), (100, 200)]
    assert both.energy_over([(0, 200)]) == pytest.approx(6000 + 600 + 10 * 40)


spans = st.lists(st.tuples(st.integers(0, 100), st.integers(1, 30)), max_size=8).map(
    lambda xs: union([], [(float(a), float(a + w)) for a, w in xs]))


@settings(max_examples=200, deadline=None)
@given(spans, spans)
def test_interval_algebra_agrees_with_a_grid(a: list[tuple[float, float]],
                                             b: list[tuple[float, float]]) -> None:
    grid = np.arange(0, 140) + 0.5

    def member(x: list[tuple[float, float]]) -> np.ndarray:
        return np.array([any(s <= t < e for s, e in x) for t in grid])

    assert (member(union(a, b)) == (member(a) | member(b))).all()
    assert (member(intersect(a, b)) == (member(a) & member(b))).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 2000), min_size=2, max_size=40),
       st.lists(st.integers(0, 39), max_size=3))
def test_a_counter_s_energy_is_its_increase_with_resets(watts: list[float],
                                                         resets: list[int]) -> None:
    """Whatever the power and wherever the exporter restarts, the pieces hold the energy
    drawn after the first sample. A restart shows as a drop; one that does not drop
    (the counter was below what one interval adds) cannot be told from growth, by this
    code or by increase(), so the test restarts only where it shows."""
    step = 15.0
    times = np.arange(len(watts) + 1) * step
    drawn = np.array(watts) * step
    values = np.concatenate([[0.0], np.cumsum(drawn)])
    expected = float(drawn.sum())
    for i in sorted({r % len(watts) + 1 for r in resets}):
        # sample i restarts from zero: it reads only its own interval
        if i < len(values) and (values[i - 1] > drawn[i - 1] or values[i - 1] == 0):
            offset = values[i] - drawn[i - 1]
            values[i:] -= offset
    p = pieces_of(counter(list(times), list(values)), (0, float(times[-1])), max_gap=20)
    assert p.energy_over([(0, float(times[-1]))]) == pytest.approx(expected, rel=1e-9,
                                                                   abs=1e-6)

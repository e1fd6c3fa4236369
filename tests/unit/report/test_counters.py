"""Per-day counter growth: the arithmetic on raw samples, and the query plan against a
fake Prometheus that answers from a table of samples as the real one would."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date

import pytest

from suandian.report.counters import LOOKBACK_S, DailyIncrease, increase_from_points
from suandian.report.days import Day
from suandian.report.prometheus import Labels, Prometheus, Sample

DAY = Day(day=date(2026, 11, 2), start=86400.0, end=172800.0,
          partial=False)


def test_growth_after_the_start_from_the_last_sample_before_it() -> None:
    points = [(80000.0, 5.0), (86400.0, 7.0), (90000.0, 9.0), (100000.0, 12.0)]
    assert increase_from_points(points, 86400.0) == 5.0


def test_a_drop_is_a_restart_from_zero() -> None:
    points = [(86000.0, 100.0), (90000.0, 130.0), (95000.0, 4.0), (99000.0, 10.0)]
    assert increase_from_points(points, 86400.0) == 30.0 + 4.0 + 6.0


def test_a_series_born_in_the_day_counts_its_first_value() -> None:
    assert increase_from_points([(90000.0, 3.0), (91000.0, 3.0)], 86400.0) == 3.0


def test_samples_out_of_order_are_sorted() -> None:
    assert increase_from_points([(91000.0, 8.0), (90000.0, 3.0)], 86400.0) == 8.0


class FakePrometheus(Prometheus):
    """Answers the three query shapes DailyIncrease sends from raw samples per series."""

    def __init__(self, series: dict[Labels, Sequence[tuple[float, float]]]) -> None:
        super().__init__("http://fake:9090")
        self.series = series
        self.asked: list[str] = []

    def _window(self, expr: str) -> float:
        return float(expr.rsplit("[", 1)[1].split("ms]")[0]) / 1000

    def query(self, expr: str, at: float) -> list[Sample]:
        self.asked.append(expr)
        window = self._window(expr)
        out = []
        for labels, points in self.series.items():
            inside = [(t, v) for t, v in points if at - window <= t <= at]
            if expr.startswith("last_over_time(") and inside:  # keeps the name, as 2.x does
                name = expr.removeprefix("last_over_time(").split("{")[0]
                out.append(Sample(labels | {("__name__", name)}, value=inside[-1][1]))
            elif expr.startswith("resets("):
                drops = sum(b < a for (_, a), (_, b) in itertools.pairwise(inside))
                if drops:
                    out.append(Sample(labels, value=float(drops)))
            elif not expr.startswith(("last_over_time(", "resets(")) and inside:
                name = expr.split("{")[0]
                out.append(Sample(labels | {("__name__", name)}, points=tuple(inside)))
        return out


A: Labels = frozenset({("namespace", "a"), ("instance", "x")})
B: Labels = frozenset({("namespace", "b"), ("instance", "x")})


def test_a_steady_series_costs_no_raw_read() -> None:
    fake = FakePrometheus({A: [(80000.0, 10.0), (120000.0, 15.0), (170000.0, 18.0)]})
    counter = DailyIncrease(fake, "c_total", "")
    assert counter.day(DAY) == {A: 8.0}
    assert counter.raw_reads == 0


def test_a_reset_in_the_day_is_read_raw_and_counted_exactly() -> None:
    fake = FakePrometheus({A: [(80000.0, 10.0), (100000.0, 20.0), (110000.0, 2.0),
                               (150000.0, 25.0)],
                           B: [(150000.0, 7.0)]})
    counter = DailyIncrease(fake, "c_total", "")
    assert counter.day(DAY) == {A: 10.0 + 25.0, B: 7.0}
    assert counter.raw_reads == 1


def test_every_reset_series_of_a_day_comes_in_one_raw_read() -> None:
    """Only the reset series take their raw figure; a steady one keeps end - start even
    though the raw read returned it too."""
    C: Labels = frozenset({("namespace", "c"), ("instance", "x")})  # noqa: N806
    fake = FakePrometheus({A: [(80000.0, 10.0), (110000.0, 2.0)],
                           B: [(80000.0, 5.0), (110000.0, 1.0)],
                           C: [(80000.0, 1.0), (110000.0, 4.0)]})
    counter = DailyIncrease(fake, "c_total", "")
    assert counter.day(DAY) == {A: 2.0, B: 1.0, C: 3.0}
    assert counter.raw_reads == 1


def test_a_restart_back_to_the_starting_value_is_caught_by_resets() -> None:
    """0 at midnight, 12 after a job, then a restart and the series back at 0: end - start
    is 0; only resets() tells, and its labels (no __name__) must meet last_over_time's."""
    fake = FakePrometheus({A: [(86400.0, 0.0), (90000.0, 12.0), (110000.0, 0.0),
                               (170000.0, 0.0)]})
    counter = DailyIncrease(fake, "c_total", "")
    assert counter.day(DAY) == {A: 12.0}
    assert counter.raw_reads == 1


def test_a_reset_across_midnight_is_caught_even_when_the_end_is_higher() -> None:
    """100 just before midnight, restarted to 3 just after, 150 at the end: end - start
    would say 50; the counter grew by 150."""
    fake = FakePrometheus({A: [(86000.0, 100.0), (86500.0, 3.0), (170000.0, 150.0)]})
    assert DailyIncrease(fake, "c_total", "").day(DAY) == {A: 150.0}


def test_a_series_that_ended_before_the_day_adds_nothing() -> None:
    fake = FakePrometheus({A: [(80000.0, 10.0)]})
    assert DailyIncrease(fake, "c_total", "").day(DAY) == {}


def test_boundary_values_are_shared_between_consecutive_days() -> None:
    fake = FakePrometheus({A: [(80000.0, 1.0), (170000.0, 2.0), (200000.0, 4.0)]})
    counter = DailyIncrease(fake, "c_total", "")
    following = Day(day=DAY.day, start=DAY.end, end=DAY.end + 86400, partial=False)
    assert counter.day(DAY) == {A: 1.0}
    assert counter.day(following) == {A: 2.0}
    values = [q for q in fake.asked if q.startswith("last_over_time(")]
    assert len(values) == 3  # not 4: the first day's end is the next day's start
    assert f"[{round(LOOKBACK_S * 1000)}ms]" in values[0]


@pytest.mark.parametrize("matchers", ["", 'site=~"gansu"'])
def test_the_selector_carries_the_matchers(matchers: str) -> None:
    fake = FakePrometheus({})
    DailyIncrease(fake, "c_total", matchers).day(DAY)
    assert all(f"c_total{{{matchers}}}" in q for q in fake.asked)

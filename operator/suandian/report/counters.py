"""How much a Prometheus counter grew in each day, exactly, per series.

``increase(x[1d])`` is the wrong tool for a ledger: it extrapolates to the window's
edges (a fraction of a job lands in the wrong day), it drops what happens between the
last sample of one day and the first of the next, and it never counts a series' first
value (a namespace's first finished job, or a new operator replica's). Here a day's
increase is the counter's last value at or before the day's end minus its last value
at or before the day's start (0 when the series did not exist yet): two cheap
``last_over_time`` queries per day boundary for all series at once. Where a series
reset in or just before the day (an operator restart, a failover), ``resets()`` says so
and only that series' raw samples of that day are read and summed the way Prometheus
counts resets (a drop means the counter restarted from 0), one query per counter and day
for all such series.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from suandian.report.days import Day
from suandian.report.prometheus import Labels, Prometheus

LOOKBACK_S = 86400.0
"""How far before a day's start to look for a series' value: a series with no sample in
the whole day before is taken as new (0)."""


def increase_from_points(points: Iterable[tuple[float, float]], start: float) -> float:
    """The growth of a counter after ``start`` from its raw ``(time, value)`` samples.

    The last sample at or before ``start`` is the baseline (0 without one: the series
    began after it); each later sample adds its rise, or all of its value after a drop
    (the counter restarted from 0), as Prometheus's ``increase`` does without its
    extrapolation.
    """
    previous: float | None = None
    total = 0.0
    for t, value in sorted(points):
        if t <= start:
            previous = value
            continue
        base = 0.0 if previous is None else previous
        total += value - base if value >= base else value
        previous = value
    return total


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _identity(labels: Labels) -> Labels:
    """A series' labels without ``__name__``: ``last_over_time`` keeps the metric name
    (Prometheus 2.x) and ``resets`` drops it, so both are compared without it."""
    return frozenset(pair for pair in labels if pair[0] != "__name__")


class DailyIncrease:
    """Per-day increases of one counter on one Prometheus, memoising boundary values
    (a day's end is the next day's start)."""

    def __init__(self, prometheus: Prometheus, name: str, matchers: str) -> None:
        self.prometheus = prometheus
        self.name = name
        self.matchers = matchers
        self._values: dict[tuple[float, float], dict[Labels, float]] = {}
        self.raw_reads = 0

    def _selector(self) -> str:
        return f"{self.name}{{{self.matchers}}}"

    def values_at(self, at: float, window_s: float) -> dict[Labels, float]:
        """Each series' last value in ``[at - window_s, at]``."""
        key = (at, window_s)
        if key not in self._values:
            found = self.prometheus.query(
                f"last_over_time({self._selector()}[{_duration(window_s)}])", at)
            self._values[key] = {_identity(s.labels): float(s.value or 0.0) for s in found}
        return self._values[key]

    def day(self, day: Day) -> dict[Labels, float]:
        """Each series' increase in ``day`` (series that did not grow are left out)."""
        start = self.values_at(day.start, LOOKBACK_S)
        end = self.values_at(day.end, day.seconds)
        reset = {_identity(s.labels) for s in self.prometheus.query(
            f"resets({self._selector()}[{_duration(day.seconds + LOOKBACK_S)}]) > 0",
            day.end)}
        out: dict[Labels, float] = {}
        raw: set[Labels] = set()
        for labels, value in end.items():
            grown = value - start.get(labels, 0.0)
            if labels in reset or grown < 0:
                raw.add(labels)
            elif grown > 0:
                out[labels] = grown
        if raw:
            for labels, grown in self._raw(raw, day).items():
                if grown > 0:
                    out[labels] = grown
        return out

    def _raw(self, wanted: set[Labels], day: Day) -> dict[Labels, float]:
        """The growth of the ``wanted`` series in ``day`` from their raw samples: one
        query for all of them (the counter's series over the day and its lookback)."""
        self.raw_reads += 1
        found = self.prometheus.query(
            f"{self._selector()}[{_duration(day.seconds + LOOKBACK_S)}]", day.end)
        return {_identity(s.labels): increase_from_points(s.points, day.start)
                for s in found if _identity(s.labels) in wanted}


def daily(prometheus: Prometheus, name: str, matchers: str,
          days: Sequence[Day]) -> list[dict[Labels, float]]:
    """The increase of counter ``name{matchers}`` in each of ``days``, per series."""
    counter = DailyIncrease(prometheus, name, matchers)
    return [counter.day(day) for day in days]

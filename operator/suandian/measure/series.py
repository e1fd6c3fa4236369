"""From an exporter's samples to a job's energy, slot by slot: pure arithmetic.

A series is what Prometheus stored for one identity (one pod's zone, container or GPU):
raw samples, times in Unix seconds. It becomes a list of *pieces*, each a stretch of
constant power between two consecutive samples:

- a counter (joules, millijoules) gives ``(v[i+1] − v[i]) / dt`` over the stretch; a
  value that went down means the counter restarted from zero (the exporter restarted,
  a container started again), so the stretch counts ``v[i+1]`` alone — the same rule as
  PromQL's ``increase()``, without its extrapolation;
- a gauge (watts) gives the mean of its two ends (trapezoids).

Two samples further apart than ``max_gap`` are not joined: nobody measured between them,
and the stretch is left to the model. The first sample of a series is never counted on
its own (a GPU's counter runs since the machine booted). At the run's two ends a series
that starts or stops within ``max_gap`` of the edge is extended to it at the power of
its nearest piece, so a scrape interval's worth at each end is not lost (Prometheus'
``increase()`` extrapolates the same way).

Times are seconds; energy joules; ``Intervals`` are sorted, disjoint ``(start, end)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Intervals", "Pieces", "Series", "intersect", "pieces_of", "slot_edges",
           "union"]

Intervals = list[tuple[float, float]]


@dataclass(frozen=True, eq=False)
class Series:
    """Raw samples of one identity: ``kind`` ``counter`` (``scale`` joules per unit: 1
    for J, 0.001 for mJ) or ``gauge`` (``scale`` watts per unit)."""

    identity: tuple[str, ...]
    times: np.ndarray
    values: np.ndarray
    kind: str = "counter"
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("counter", "gauge"):
            raise ValueError(f"series kind {self.kind!r}: counter or gauge")
        if len(self.times) != len(self.values):
            raise ValueError("series times and values differ in length")


@dataclass(frozen=True, eq=False)
class Pieces:
    """Stretches of constant power: ``starts``/``ends`` (s) and ``watts``, and the
    stretches they cover as :data:`Intervals`."""

    starts: np.ndarray
    ends: np.ndarray
    watts: np.ndarray
    covered: Intervals

    @classmethod
    def empty(cls) -> Pieces:
        z = np.zeros(0)
        return cls(z, z, z, [])

    @classmethod
    def join(cls, parts: Iterable[Pieces]) -> Pieces:
        """Several series' pieces as one (their power adds; coverage is the union)."""
        parts = list(parts)
        if not parts:
            return cls.empty()
        covered: Intervals = []
        for p in parts:
            covered = union(covered, p.covered)
        return cls(np.concatenate([p.starts for p in parts]),
                   np.concatenate([p.ends for p in parts]),
                   np.concatenate([p.watts for p in parts]), covered)

    def energy_over(self, spans: Intervals) -> float:
        """Joules drawn within ``spans``."""
        total = 0.0
        for a, b in spans:
            overlap = np.clip(np.minimum(self.ends, b) - np.maximum(self.starts, a), 0.0, None)
            total += float(overlap @ self.watts)
        return total


def merge(series: Sequence[Series]) -> list[Series]:
    """Series with one identity joined in time order: an exporter that restarted comes
    back as a new series (its own pod and instance labels), and Kepler's ``state`` label
    turns from running to terminated; equal times keep the larger value."""
    groups: dict[tuple[str, ...], list[Series]] = {}
    for s in series:
        groups.setdefault((s.kind, str(s.scale), *s.identity), []).append(s)
    out = []
    for group in groups.values():
        times = np.concatenate([s.times for s in group]).astype(float)
        values = np.concatenate([s.values for s in group]).astype(float)
        keep = np.isfinite(times) & np.isfinite(values)
        times, values = times[keep], values[keep]
        order = np.lexsort((values, times))
        times, values = times[order], values[order]
        last = np.ones(len(times), dtype=bool)
        last[:-1] = times[1:] != times[:-1]  # of equal times, the last (largest) value
        first = group[0]
        out.append(Series(first.identity, times[last], values[last], first.kind, first.scale))
    return out


def pieces_of(series: Series, run: tuple[float, float], max_gap: float) -> Pieces:
    """The pieces of one series within ``run`` (see the module docstring)."""
    lo, hi = run
    t, v = series.times, series.values
    if len(t) < 2 or hi <= lo:
        return Pieces.empty()
    dt = np.diff(t)
    if series.kind == "counter":
        dv = np.diff(v)
        joules = np.where(dv >= 0, dv, v[1:]) * series.scale
        watts = np.divide(joules, dt, out=np.zeros_like(dt), where=dt > 0)
    else:
        watts = (v[1:] + v[:-1]) / 2.0 * series.scale
    joined = (dt > 0) & (dt <= max_gap)
    starts, ends, watts = t[:-1][joined], t[1:][joined], watts[joined]
    if starts.size == 0:
        return Pieces.empty()
    # contiguous segments, each extended to the run's edges when it comes within max_gap
    breaks = np.flatnonzero(starts[1:] != ends[:-1]) + 1
    first, last = np.r_[0, breaks], np.r_[breaks - 1, starts.size - 1]
    segments: Intervals = [(float(starts[i]), float(ends[j])) for i, j in zip(first, last,
                                                                               strict=True)]
    starts, ends = starts.copy(), ends.copy()
    if 0 < starts[0] - lo <= max_gap:
        starts[0] = lo
        segments[0] = (lo, segments[0][1])
    if 0 < hi - ends[-1] <= max_gap:
        ends[-1] = hi
        segments[-1] = (segments[-1][0], hi)
    starts, ends = np.clip(starts, lo, hi), np.clip(ends, lo, hi)
    covered = intersect(segments, [(lo, hi)])
    keep = ends > starts
    return Pieces(starts[keep], ends[keep], watts[keep], covered)


def union(a: Intervals, b: Intervals) -> Intervals:
    """The union of two interval lists."""
    out: Intervals = []
    for s, e in sorted([*a, *b]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        elif e > s:
            out.append((s, e))
    return out


def intersect(a: Intervals, b: Intervals) -> Intervals:
    """The intersection of two interval lists."""
    out: Intervals = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if e > s:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def length(spans: Intervals) -> float:
    """Total seconds of an interval list."""
    return float(sum(e - s for s, e in spans))


def slot_edges(start: float, end: float, slot_s: float) -> np.ndarray:
    """The run ``[start, end]`` cut at every multiple of ``slot_s`` since the epoch (the
    planner's slots): ``n + 1`` edges for ``n`` slots (one slot for an empty run)."""
    if slot_s <= 0:
        raise ValueError("slot length must be positive")
    first = np.floor(start / slot_s) * slot_s
    inner = np.arange(first + slot_s, end, slot_s)
    return np.concatenate([[start], inner[inner > start], [max(end, start)]])

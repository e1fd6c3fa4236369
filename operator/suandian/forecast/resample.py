"""Putting provider series with other resolutions and time zones onto a ``TimeGrid``.

Two kinds of signal, two rules:

* ``energy`` (power in kW given as interval means): each sample covers ``[t_i, t_i +
  d_i)``; a slot gets the energy that falls into it divided by the time covered. Energy
  is preserved exactly: the cumulative-energy curve is piecewise linear, and slot energy
  is its difference at the slot bounds. Hourly -> 15 min repeats the value; 5 min ->
  15 min averages three.
* ``rate`` (gCO2/kWh, price): values are interpolated linearly between interval
  midpoints and read at slot midpoints; no interpolation across a gap longer than
  ``max_gap``.

Slots no sample covers come back NaN with coverage 0; the caller decides (gap policy in
:mod:`suandian.forecast.assemble`). Times are absolute instants: aware datetimes or ISO
strings with an offset are exact; naive local times are placed in a given IANA zone,
with a repeated wall-clock hour (DST fall-back) taken as the second occurrence the
second time it appears, and a skipped hour (spring-forward) shifted forward as
``zoneinfo`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from suandian.forecast.grid import TimeGrid

__all__ = ["Kind", "fill_short_gaps", "parse_times", "resample", "to_epoch"]

Kind = Literal["energy", "rate"]


def parse_times(values: Sequence[str | datetime], zone: str = "UTC") -> np.ndarray:
    """Instants (float seconds since the epoch) of ISO strings or datetimes.

    Naive values are wall-clock times in ``zone``; an offset or ``Z`` wins over it.
    """
    tz = ZoneInfo(zone)
    out = np.empty(len(values), dtype=np.float64)
    prev_naive: datetime | None = None
    for i, v in enumerate(values):
        t = v if isinstance(v, datetime) else datetime.fromisoformat(
            v.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        if t.tzinfo is None:
            fold = 1 if prev_naive is not None and t <= prev_naive else 0
            prev_naive = t
            t = t.replace(tzinfo=tz, fold=fold)
        out[i] = t.astimezone(UTC).timestamp()
    return out


def to_epoch(times: Sequence[str | datetime] | np.ndarray, zone: str = "UTC") -> np.ndarray:
    """Float epoch seconds from datetime64 arrays, numbers, datetimes or strings."""
    if isinstance(times, np.ndarray):
        if times.dtype.kind == "M":
            result: np.ndarray = times.astype("datetime64[ms]").astype(np.int64) / 1000.0
            return result
        if times.dtype.kind in "if":
            return times.astype(np.float64)
    return parse_times(list(times), zone)


def _durations(starts: np.ndarray, durations: np.ndarray | float | None) -> np.ndarray:
    if durations is not None:
        return np.broadcast_to(np.asarray(durations, dtype=np.float64), starts.shape).copy()
    if starts.size == 1:
        raise ValueError("a single sample needs an explicit duration")
    steps = np.diff(starts)
    typical = float(np.median(steps))
    # a sample lasts until the next one, but not across a gap: at most the typical step
    return np.append(np.minimum(steps, typical), typical)


def resample(starts: np.ndarray, values: np.ndarray, grid: TimeGrid, kind: Kind, *,
             durations: np.ndarray | float | None = None,
             max_gap: float = 3600.0) -> tuple[np.ndarray, np.ndarray]:
    """Values on ``grid`` and the covered fraction of each slot (0..1).

    ``starts`` are epoch seconds of each sample's interval start (sorted or not);
    ``durations`` each interval's length in seconds (default: up to the next sample).
    NaN samples count as missing.
    """
    starts = np.asarray(starts, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if starts.shape != values.shape or starts.ndim != 1:
        raise ValueError("times and values must be 1-D and of equal length")
    n = grid.slots
    if starts.size == 0:
        return np.full(n, np.nan), np.zeros(n)
    order = np.argsort(starts, kind="stable")
    starts, values = starts[order], values[order]
    if np.any(np.diff(starts) <= 0):
        raise ValueError("duplicate sample times")
    dur = _durations(starts, None if durations is None else np.asarray(durations)[order]
                     if np.ndim(durations) else durations)
    ends = starts + dur
    if np.any(ends[:-1] > starts[1:] + 1e-6):
        raise ValueError("sample intervals overlap")
    good = np.isfinite(values)
    bounds = grid.start_epoch + grid.slot_seconds * np.arange(n + 1, dtype=np.float64)
    xp = np.column_stack([starts, ends]).ravel()
    steps = np.where(good, dur, 0.0)
    cover = np.concatenate([[0.0], np.cumsum(steps)])
    kp = np.column_stack([cover[:-1], cover[1:]]).ravel()
    covered = np.diff(np.interp(bounds, xp, kp))
    fraction = np.clip(covered / grid.slot_seconds, 0.0, 1.0)
    if kind == "energy":
        energy = np.concatenate([[0.0], np.cumsum(np.where(good, values * dur, 0.0))])
        ep = np.column_stack([energy[:-1], energy[1:]]).ravel()
        slot_energy = np.diff(np.interp(bounds, xp, ep))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(covered > 1e-9, slot_energy / np.maximum(covered, 1e-300), np.nan)
        return out, fraction
    # rate: linear between interval midpoints of good samples, no bridging of long gaps
    mids = (starts + ends)[good] / 2.0
    vals = values[good]
    slot_mid = bounds[:-1] + grid.slot_seconds / 2.0
    if mids.size == 0:
        return np.full(n, np.nan), np.zeros(n)
    out = np.interp(slot_mid, mids, vals)
    right = np.searchsorted(mids, slot_mid)
    left = np.clip(right - 1, 0, mids.size - 1)
    right_c = np.clip(right, 0, mids.size - 1)
    span = mids[right_c] - mids[left]
    inside = (slot_mid >= starts[good][0]) & (slot_mid < ends[good][-1])
    ok = inside & (span <= max_gap + float(np.max(dur)))
    # a slot whose midpoint is a sample's own is that sample, whatever lies either side
    # (after a long gap too: searchsorted puts an exact match on the right)
    exact = (np.abs(slot_mid - mids[left]) < 1e-9) | (np.abs(slot_mid - mids[right_c]) < 1e-9)
    ok |= exact
    return np.where(ok, out, np.nan), np.where(ok, np.maximum(fraction, ok * 1.0), fraction)


def fill_short_gaps(values: np.ndarray, max_slots: int) -> np.ndarray:
    """Linearly fill NaN runs of at most ``max_slots`` bounded on both sides by data."""
    out = np.array(values, dtype=np.float64)
    bad = ~np.isfinite(out)
    if not bad.any() or bad.all():
        return out
    idx = np.arange(out.size)
    filled = np.interp(idx, idx[~bad], out[~bad])
    # run lengths of NaN stretches
    edges = np.diff(np.concatenate([[0], bad.astype(np.int8), [0]]))
    for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if s > 0 and e < out.size and e - s <= max_slots:
            out[s:e] = filled[s:e]
    return out

"""Real forecasts issued over time ("vintages"): a CSV of ``issued,time,value`` rows.

A forecast service publishes a new forecast every so often (a day-ahead at 12:00, an
intraday every hour), each for some hours ahead. At a refresh at time ``T`` a policy is
told, for each slot ahead, the most recent forecast of it issued at or before ``T``: the
latest vintage where it reaches, older ones where the latest does not (a day-ahead
issued at 12:00 says nothing of this afternoon; yesterday's does). Past the last slot
any vintage reaches, the forecast is extended as the operator extends a short one
(:func:`suandian.forecast.assemble.clean_signal`): grid intensity by repeating the last
day, green power by zero. The slot of ``T`` itself must be covered: a refresh with no
forecast of the present is refused, naming it.

Only the vintages issued in the last ``LOOKBACK`` before ``T`` are looked at, and a
forecast is built when asked for, so memory is the file's and time per refresh is
bounded.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from suandian.api.powersite import PowerSite
from suandian.errors import FieldError, InputFileError, ProviderResponseError
from suandian.files import read_text
from suandian.forecast.grid import TimeGrid
from suandian.forecast.providers.base import DEFAULT_UNITS, convert_units, signal_dimension
from suandian.forecast.resample import Kind, parse_times, resample
from suandian.forecast.series import SiteForecast
from suandian.planner.model import FloatArray
from suandian.sim.inputs import CARBON, check_range

__all__ = ["LOOKBACK", "Vintages", "apply_vintages", "check_coverage", "is_vintage_file",
           "read_vintages"]

LOOKBACK = timedelta(days=7)
"""How far back a vintage may still say something of the slots ahead."""

_HEADER = ("issued", "time")


def is_vintage_file(path: Path) -> bool:
    """Whether a forecast CSV holds vintages (its first column is ``issued``)."""
    first = next((line for line in read_text(path).splitlines()
                  if line.strip() and not line.lstrip().startswith("#")), "")
    return first.split(",")[0].strip().lower() == "issued"


@dataclass(frozen=True)
class Vintages:
    """Every vintage of one signal, rows sorted by (issued, time)."""

    path: Path
    signal: str
    issued: FloatArray  # each vintage's issue time (epoch seconds), ascending
    first_row: np.ndarray  # index of each vintage's first row; one more at the end
    times: FloatArray
    values: FloatArray
    step: float  # a lone row's length: the file's typical step

    def told(self, issue: float, grid: TimeGrid) -> FloatArray:
        """What a policy is told at ``issue`` for the slots of ``grid``: each from the
        latest vintage that reaches it; NaN where none does (see the module)."""
        kind: Kind = "energy" if signal_dimension(self.signal) == "power" else "rate"
        out = np.full(grid.slots, np.nan)
        k = int(np.searchsorted(self.issued, issue, side="right")) - 1
        oldest = issue - LOOKBACK.total_seconds()
        while k >= 0 and self.issued[k] >= oldest and np.isnan(out).any():
            a, b = int(self.first_row[k]), int(self.first_row[k + 1])
            durations = self.step if b - a == 1 else None
            values, fraction = resample(self.times[a:b], self.values[a:b], grid, kind,
                                        durations=durations)
            fill = np.isnan(out) & (fraction > 1.0 - 1e-6) & np.isfinite(values)
            out[fill] = values[fill]
            k -= 1
        return out

    def extended(self, issue: float, grid: TimeGrid) -> FloatArray:
        """:meth:`told` with the slots no vintage reaches filled as the operator does a
        short forecast's; a ValueError when the first slot has no forecast."""
        out = self.told(issue, grid)
        if np.isnan(out[0]):
            raise ValueError(grid.start)
        if self.signal != "carbonIntensity":
            return np.nan_to_num(out, nan=0.0)
        day = max(int(86400 // grid.slot_seconds), 1)
        for i in np.flatnonzero(np.isnan(out)):
            out[i] = out[i - day] if i >= day and np.isfinite(out[i - day]) else out[i - 1]
        return out


def read_vintages(path: Path, signal: str, site: PowerSite) -> Vintages:
    """The vintages of ``path``, every bad row refused with its number (a time and an
    issue time each, a finite value in range); a time without an offset is the site's
    wall-clock time."""
    rows = [(n, r) for n, r in enumerate(csv.reader(io.StringIO(read_text(path))), start=1)
            if r and not r[0].lstrip().startswith("#")]
    header = [h.strip() for h in rows[0][1]] if rows else []
    unit_of = header[2][len("value"):].strip(" []") if len(header) > 2 else ""
    if (len(header) != 3 or tuple(h.lower() for h in header[:2]) != _HEADER
            or not header[2].lower().startswith("value")):
        raise InputFileError(path, [FieldError("row 1", (
            "a forecast with vintages has the header issued,time,value (value[MW] and "
            "the like convert units; vintages' bands are not read)"))])
    if len(rows) < 2:
        raise InputFileError(path, [FieldError("", "no data rows")])
    zone = site.spec.location.time_zone
    unit = unit_of or DEFAULT_UNITS.get(signal, "kW")
    problems: list[str] = []
    issued, times, values = [], [], []
    for line, row in rows[1:]:
        bad = []
        if len(row) < 3:
            bad.append(f"{len(row)} cells where the header has 3")
        stamps = []
        for i, name in enumerate(_HEADER):
            try:
                stamps.append(float(parse_times([row[i] if i < len(row) else ""], zone)[0]))
            except ValueError:
                bad.append(f"{name} {(row[i] if i < len(row) else '')!r} is not ISO 8601")
        value = _finite(row[2] if len(row) > 2 else "")
        if value is None:
            bad.append(f"value {(row[2] if len(row) > 2 else '')!r} is not a number")
        if bad:
            problems.append(f"row {line}: {', '.join(bad)}")
            continue
        issued.append(stamps[0])
        times.append(stamps[1])
        values.append(value)
    if problems:
        more = f"; and {len(problems) - 8} more rows" if len(problems) > 8 else ""
        raise InputFileError(path, [FieldError("", "; ".join(problems[:8]) + more + (
            "; correct these rows (an issue time, a time and a finite value each)"))])
    try:
        converted = convert_units("csv", signal, np.array(values, dtype=float), unit)
    except ProviderResponseError as exc:
        raise InputFileError(path, [FieldError("row 1", str(exc).removeprefix("csv: "))]
                             ) from None
    check_range(path, signal, site, converted, np.array([line for line, _ in rows[1:]]))
    order = np.lexsort((np.array(times), np.array(issued)))
    iss, tim, val = (np.array(issued)[order], np.array(times)[order], converted[order])
    twice = np.flatnonzero((np.diff(iss) == 0) & (np.diff(tim) == 0))
    if twice.size:
        numbers = np.array([n for n, _ in rows[1:]])[order]
        where = f"rows {numbers[twice[0]]} and {numbers[twice[0] + 1]}"
        raise InputFileError(path, [FieldError(where, (
            f"the same time {stamp(float(tim[twice[0]]))} twice in the vintage issued at "
            f"{stamp(float(iss[twice[0]]))}; keep one of them"))])
    unique, first = np.unique(iss, return_index=True)
    steps = np.diff(tim)[np.diff(iss) == 0]
    step = float(np.median(steps)) if steps.size else 3600.0
    return Vintages(path, signal, unique, np.append(first, iss.size), tim, val, step)


def _finite(cell: str) -> float | None:
    try:
        value = float(cell.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def apply_vintages(fc: SiteForecast, vintages: Mapping[str, Vintages]) -> SiteForecast:
    """``fc`` (issued with these signals exact) with each vintage signal replaced by what
    its vintages told at ``fc.issued_at``; the green band moves with the total (the
    vintage signals add no width to it: their P10/P90 are not known)."""
    if not vintages:
        return fc
    issue = fc.issued_at.timestamp()
    green = dict(fc.green_kw)
    carbon, c10, c90 = fc.carbon_g_per_kwh, fc.carbon_p10, fc.carbon_p90
    for signal, v in vintages.items():
        values = v.extended(issue, fc.grid)
        if signal == CARBON:
            carbon = c10 = c90 = values
        else:
            green[signal] = values
    total = np.sum(list(green.values()), axis=0) if green else np.zeros(fc.grid.slots)
    shift = total - fc.green_total_kw
    return replace(fc, green_kw=green, green_total_kw=total,
                   green_p10_kw=np.clip(fc.green_p10_kw + shift, 0.0, total),
                   green_p90_kw=np.maximum(fc.green_p90_kw + shift, total),
                   carbon_g_per_kwh=carbon, carbon_p10=c10, carbon_p90=c90)


def check_coverage(vintages: Mapping[str, Vintages], grid: TimeGrid, slots: int,
                   refresh: int) -> None:
    """Every refresh of the run finds a forecast of its own slot, or the file is refused
    naming the first refresh that does not."""
    for v in vintages.values():
        for t in range(0, slots, refresh):
            at = grid.window(t, 1)
            if np.isnan(v.told(at.start_epoch, at)[0]):
                first = stamp(float(v.issued[0]))
                raise InputFileError(v.path, [FieldError("", (
                    f"no forecast issued by {stamp(at.start_epoch)} (a refresh of the run) "
                    f"says anything of that time (the first vintage is issued at {first}); "
                    "add vintages that cover it, or start the scenario later"))])


def stamp(epoch: float) -> str:
    """An instant as the messages print it."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%MZ")

"""Measured series for the simulator: a scenario's CSV files on the run's slot grid.

The simulator replays what happened, so a series it is given must say what happened in
every slot it needs: a file that starts late, ends early or has a hole is refused (never
filled from the built-in models, never read as zero), as are values no grid or plant
has (a negative or NaN cell, an intensity above 2,000 g/kWh, more power than the site's
nameplate for that source). Every refusal is one line naming the file, the row and
what to change (:class:`~suandian.errors.InputFileError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from suandian.api.powersite import MAX_CARBON_G_PER_KWH, PowerSite
from suandian.errors import FieldError, InputFileError
from suandian.forecast.grid import TimeGrid
from suandian.forecast.providers.base import signal_dimension
from suandian.forecast.providers.csv import CsvTable, read_signal_file
from suandian.forecast.resample import Kind, resample
from suandian.forecast.series import SOURCE_TYPES, SiteForecast, capacity_by_type
from suandian.planner.model import FloatArray

__all__ = ["CARBON", "SIGNALS", "SeriesFile", "apply_bands", "load_series", "usable_slots"]

CARBON = "carbonIntensity"
SIGNALS = (*SOURCE_TYPES, CARBON)
"""The signals a scenario may give per site: green power by source (kW) and the grid's
carbon intensity (gCO2/kWh)."""

OVER_NAMEPLATE = 1.1
"""Power above this share of the site's nameplate for the source is refused (SCADA noise
rides a few percent over; more is the wrong file or the wrong unit)."""


@dataclass(frozen=True)
class SeriesFile:
    """One signal's series on the grid, and up to which slot its file has data."""

    path: Path
    signal: str
    values: FloatArray  # on the grid; NaN where the file has no data
    covered: int  # slots from the grid's start with data, without a hole
    p10: FloatArray | None = None  # a forecast's band, when its file has p10,p90 columns
    p90: FloatArray | None = None


def _stamp(grid: TimeGrid, slot: int) -> str:
    return grid.time_at(slot).strftime("%Y-%m-%dT%H:%MZ")


def load_series(path: Path, signal: str, site: PowerSite, grid: TimeGrid,
                needed: int) -> SeriesFile:
    """``signal``'s series from ``path`` on ``grid``; the first ``needed`` slots must all
    be covered. Data past ``needed`` is used up to the first slot without it."""
    # a time without an offset is wall-clock time at the site, as for the operator's
    # CSV provider (one file means the same in both)
    table = read_signal_file(path, signal, zone=site.spec.location.time_zone)
    values = table.columns["value"]
    check_range(path, signal, site, values, table.rows)
    kind: Kind = "energy" if signal_dimension(signal) == "power" else "rate"
    if values.size == 1:
        raise InputFileError(path, [FieldError(f"row {table.rows[0]}", (
            "one row says nothing of how long it lasts (a row lasts until the next); give "
            f"a row per step from {_stamp(grid, 0)} to {_stamp(grid, needed)}"))])
    try:
        series, fraction = resample(table.times, values, grid, kind)
        if kind == "rate":  # its interpolation bridges gaps up to an hour (the operator's
            # gap policy); what a file covers is what its rows last, as for power
            fraction = resample(table.times, values, grid, "energy")[1]
    except ValueError as exc:
        raise InputFileError(path, [FieldError("", (
            f"{exc}; give each time once, in one step (sorted rows)"))]) from None
    ok = (fraction > 1.0 - 1e-6) & np.isfinite(series)
    covered = int(np.argmin(ok)) if not ok.all() else grid.slots
    if covered < needed:
        raise InputFileError(path, [_uncovered(table, grid, covered, needed, ok)])
    p10, p90 = _band(path, table, grid, kind)
    return SeriesFile(path, signal, np.where(ok, series, np.nan), covered, p10, p90)


def _band(path: Path, table: CsvTable, grid: TimeGrid, kind: Kind
          ) -> tuple[FloatArray | None, FloatArray | None]:
    """A forecast file's P10/P90 on the grid (where a row leaves them empty, the value);
    rows whose band does not hold the value refused."""
    cols = table.columns
    if "p10" not in cols or "p90" not in cols:
        return None, None
    value = cols["value"]
    lo = np.where(np.isfinite(cols["p10"]), cols["p10"], value)
    hi = np.where(np.isfinite(cols["p90"]), cols["p90"], value)
    bad = (lo > value + 1e-9) | (hi < value - 1e-9)
    if bad.any():
        rows = ", ".join(str(r) for r in table.rows[bad][:8])
        raise InputFileError(path, [FieldError(f"row{'s' * (int(bad.sum()) > 1)} {rows}", (
            "the band does not hold the value (p10 <= value <= p90); correct the rows"))])
    return (resample(table.times, lo, grid, kind)[0], resample(table.times, hi, grid, kind)[0])


def apply_bands(fc: SiteForecast, files: Mapping[str, SeriesFile], offset: int
                ) -> SiteForecast:
    """``fc`` (issued at grid slot ``offset`` with these signals exact) with the bands of
    the forecast files that give them: intensity's as given, each green source's widths
    added to the total's band (as if perfectly correlated: the cautious sum)."""
    cut = slice(offset, offset + fc.grid.slots)
    banded = {k: (np.nan_to_num(f.p10[cut]), np.nan_to_num(f.p90[cut]))
              for k, f in files.items() if f.p10 is not None and f.p90 is not None}
    if not banded:
        return fc
    g10, g90 = np.array(fc.green_p10_kw), np.array(fc.green_p90_kw)
    c10, c90 = fc.carbon_p10, fc.carbon_p90
    for signal, (lo, hi) in banded.items():
        if signal == CARBON:
            c10 = np.minimum(lo, fc.carbon_g_per_kwh)
            c90 = np.maximum(hi, fc.carbon_g_per_kwh)
        else:
            value = fc.green_kw[signal]
            g10 -= np.maximum(value - lo, 0.0)
            g90 += np.maximum(hi - value, 0.0)
    total = fc.green_total_kw
    return replace(fc, green_p10_kw=np.clip(g10, 0.0, total),
                   green_p90_kw=np.maximum(g90, total), carbon_p10=c10, carbon_p90=c90)


def check_range(path: Path, signal: str, site: PowerSite, values: FloatArray,
                rows: np.ndarray) -> None:
    """Refuse the rows (file line numbers ``rows``, one per value) whose values no real
    grid or plant has, naming them: an intensity outside 0..2,000 g/kWh, negative power,
    or power above :data:`OVER_NAMEPLATE` of the site's nameplate for the source. The
    actuals, the forecast series and the forecast vintages are all checked here."""
    if signal == CARBON:
        bad = (values < 0) | (values > MAX_CARBON_G_PER_KWH)
        what = f"outside 0..{MAX_CARBON_G_PER_KWH:g} gCO2/kWh"
        fix = "give gCO2/kWh (a value[kg/kWh] header converts kilograms)"
    else:
        cap = capacity_by_type(site).get(signal, 0.0)
        bad = (values < 0) | (values > OVER_NAMEPLATE * cap)
        what = f"above {OVER_NAMEPLATE:.0%} of the site's {cap:,.0f} kW of {signal}"
        fix = ("give kW (a value[MW] header converts megawatts), or raise the source's "
               "capacityKW")
    if not bad.any():
        return
    first = float(values[bad][0])
    if signal != CARBON and first < 0:
        what, fix = "negative", "power is never below 0 kW; correct or remove the rows"
    listed_rows = np.asarray(rows)[bad]
    listed = ", ".join(str(r) for r in listed_rows[:8]) + (
        f" and {listed_rows.size - 8} more" if listed_rows.size > 8 else "")
    raise InputFileError(path, [FieldError(
        f"row{'s' * (listed_rows.size > 1)} {listed}",
        f"{signal} {first:g} is {what}; {fix}")])


def _uncovered(table: CsvTable, grid: TimeGrid, covered: int, needed: int,
               ok: np.ndarray) -> FieldError:
    """Where a file stops covering what the run needs, and what to add."""
    order = np.argsort(table.times, kind="stable")
    times, rows = table.times[order], table.rows[order]
    first_t = float(times[0])
    need_from, need_to = _stamp(grid, 0), _stamp(grid, needed)
    if covered == 0 and first_t > grid.start_epoch:
        return FieldError(f"row {rows[0]}", (
            f"the data start at {_stamp_epoch(first_t)}, after the scenario's start "
            f"{need_from}; add rows from {need_from}, or set `start:` later"))
    later = ok[covered:needed]
    if later.any():  # a hole: data again after it
        back = covered + int(np.argmax(later))
        at = int(np.searchsorted(times, grid.start_epoch + covered * grid.slot_seconds))
        before, after = rows[max(at - 1, 0)], rows[min(at, rows.size - 1)]
        return FieldError(f"rows {before}-{after}", (
            f"no data from {_stamp(grid, covered)} to {_stamp(grid, back)}; add the "
            "missing rows (the simulator never fills a gap)"))
    return FieldError(f"row {rows[-1]}", (
        f"the data end at {_stamp(grid, covered)} but the run needs them to {need_to} "
        "(its days of submissions and the latest deadline); add rows up to "
        f"{need_to}, or give fewer `days`"))


def _stamp_epoch(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%MZ")


def usable_slots(groups: Iterable[Mapping[str, Mapping[str, SeriesFile]]],
                 default: int) -> int:
    """Slots every file covers (at most ``default``): the grid the forecasts may reach."""
    ends = [f.covered for files in groups for by_signal in files.values()
            for f in by_signal.values()]
    return min([default, *ends])

"""CSV files of ``time,value`` rows, one per signal, from a file or a ConfigMap key.

Header ``time,value`` (the unit may ride along as ``value[MW]``), optional ``p10,p90``
columns. ``time`` is ISO 8601: with an offset it is exact; without, it is wall-clock time
in the site's zone (DST handled as in :func:`suandian.forecast.resample.parse_times`).
Each row lasts until the next (the last as long as the typical step). Power rows are
interval means and are resampled energy-preserving; intensity and price interpolated.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from suandian.api.powersite import CsvForecast
from suandian.errors import FieldError, InputFileError, ProviderResponseError
from suandian.files import read_text
from suandian.forecast.grid import TimeGrid
from suandian.forecast.providers.base import DEFAULT_UNITS, Signals, convert_units, signal_dimension
from suandian.forecast.resample import Kind, parse_times, resample

__all__ = ["CsvProvider", "CsvTable", "parse_csv", "parse_rows", "read_signal_file"]

_HEADER = re.compile(r"^value(?:\s*\[(?P<unit>[^\]]+)\])?$", re.IGNORECASE)


MAX_LISTED = 8  # problems named in one message; the rest are counted


def parse_csv(provider: str, signal: str, text: str, zone: str,
              unit: str | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Epoch-second times and columns (``value``, maybe ``p10``/``p90``) in canonical units.

    Every row is checked, and every bad cell of it named (``row 4: value 'nan' is not a
    number``), not only the first: a row must have a cell per column, a time ISO 8601, a
    value a finite number (an empty cell is a gap, which the gap policy handles), and
    power not negative. The same checks serve the operator's provider and the
    simulator's scenario files.
    """
    table = parse_rows(provider, signal, text, zone, unit)
    return table.times, table.columns


@dataclass(frozen=True)
class CsvTable:
    """A parsed signal CSV: times, columns in canonical units, and each value's row number
    in the file (1 is the header), so that a later check can name the row it refuses."""

    times: np.ndarray
    columns: dict[str, np.ndarray]
    rows: np.ndarray
    unit: str


def parse_rows(provider: str, signal: str, text: str, zone: str, unit: str | None, *,
               gaps: bool = True) -> CsvTable:
    """:func:`parse_csv` with the row numbers; ``gaps=False`` refuses empty cells too (the
    simulator replays what happened: a hole in the truth has no gap policy to fill it)."""
    rows = [(n, r) for n, r in enumerate(csv.reader(io.StringIO(text)), start=1)
            if r and not r[0].lstrip().startswith("#")]
    if len(rows) < 2:
        raise ProviderResponseError(provider, "Gaps", f"{signal}: no data rows")
    header = [h.strip() for h in rows[0][1]]
    m = _HEADER.match(header[1]) if len(header) > 1 else None
    if header[0].lower() != "time" or m is None:
        raise ProviderResponseError(
            provider, "MalformedResponse", f"{signal}: header must be 'time,value[,p10,p90]'")
    declared = m.group("unit")
    if declared and unit and declared.replace(" ", "").lower() != unit.replace(" ", "").lower():
        raise ProviderResponseError(
            provider, "WrongUnits", f"{signal}: header says {declared}, spec says {unit}")
    unit = declared or unit or DEFAULT_UNITS.get(signal, "kW")
    power = signal_dimension(signal) == "power"
    problems: list[str] = []
    stamps: list[str] = []
    cols: dict[str, list[float]] = {name: [] for name in header[1:]}
    for line, row in rows[1:]:
        bad = []
        if len(row) < len(header):
            bad.append(f"{len(row)} cell{'s' * (len(row) != 1)} where the header has "
                       f"{len(header)}")
        try:
            parse_times([row[0]], zone)
        except ValueError:
            bad.append(f"time {row[0].strip()!r} is not ISO 8601 (e.g. 2026-06-01T00:00:00Z)")
        for i, name in enumerate(header[1:], start=1):
            cell = row[i].strip() if i < len(row) else ""
            value = _number(cell)
            if value is None:
                bad.append(f"{name} {cell!r} is not a number")
            elif not gaps and math.isnan(value) and i < len(row):
                bad.append(f"{name} is empty (every row needs its value)")
            elif power and value < 0:
                bad.append(f"{name} {cell} is negative (power is at least 0 {unit})")
            cols[name].append(np.nan if value is None else value)
        stamps.append(row[0])
        if bad:
            problems.append(f"row {line}: {', '.join(bad)}")
    if problems:
        more = len(problems) - MAX_LISTED
        listed = "; ".join(problems[:MAX_LISTED]) + (f"; and {more} more rows" if more > 0 else "")
        raise ProviderResponseError(provider, "MalformedResponse", f"{signal}: {listed}")
    times = parse_times(stamps, zone)
    out = {"value" if k == header[1] else k.lower(): convert_units(
        provider, signal, np.array(v, dtype=float), unit) for k, v in cols.items()}
    return CsvTable(times, out, np.array([line for line, _ in rows[1:]]), unit)


def _number(cell: str) -> float | None:
    """A cell's value: NaN for an empty cell (a gap), None when it is not a finite number."""
    if not cell:
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_signal_file(path: Path | str, signal: str, zone: str = "UTC",
                     unit: str | None = None) -> CsvTable:
    """A signal's CSV file by the checks of :func:`parse_rows`, empty cells refused (what
    the simulator reads: it has no gap policy); whatever is wrong raises
    :class:`~suandian.errors.InputFileError` naming the file, each bad row, and the fix."""
    try:
        return parse_rows("csv", signal, read_text(path), zone, unit, gaps=False)
    except ProviderResponseError as exc:
        message = str(exc).removeprefix("csv: ").removeprefix(f"{signal}: ")
        if message.startswith("row "):
            message += ("; correct these rows (a time and a finite value each, power at "
                        "least 0) or remove them")
        raise InputFileError(path, [FieldError("", message)]) from None


@dataclass
class CsvProvider:
    """Reads each signal's CSV text from ``texts`` (ConfigMap data, resolved by the caller)
    or from the spec's ``paths``."""

    spec: CsvForecast
    zone: str = "UTC"
    texts: Mapping[str, str] | None = None
    name: str = "csv"

    def _text(self, signal: str) -> str:
        if self.texts and signal in self.texts:
            return self.texts[signal]
        path = (self.spec.paths or {}).get(signal)
        ref = (self.spec.signals or {}).get(signal)
        if path is None and ref is not None:
            where = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
            raise ProviderResponseError(
                self.name, "Unreachable", f"{signal}: no CSV from ConfigMap {where} key "
                f"{ref.key} (missing, or not readable by the operator: see its log)")
        if path is None:
            raise ProviderResponseError(self.name, "Gaps", f"{signal}: no CSV data given")
        try:
            return Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ProviderResponseError(self.name, "Unreachable", f"{signal}: {exc}") from exc

    def signal_names(self) -> list[str]:
        return sorted(set(self.spec.signals or {}) | set(self.spec.paths or {}))

    async def fetch(self, grid: TimeGrid, now: datetime) -> Signals:
        return self.read(grid, now)

    def read(self, grid: TimeGrid, now: datetime) -> Signals:
        """Synchronous read (files and ConfigMap data need no network)."""
        values: dict[str, np.ndarray] = {}
        p10: dict[str, np.ndarray] = {}
        p90: dict[str, np.ndarray] = {}
        for signal in self.signal_names():
            times, cols = parse_csv(self.name, signal, self._text(signal), self.zone,
                                    self.spec.units.get(signal))
            kind: Kind = "energy" if signal_dimension(signal) == "power" else "rate"
            for col, target in (("value", values), ("p10", p10), ("p90", p90)):
                if col in cols:
                    try:
                        target[signal], _ = resample(times, cols[col], grid, kind)
                    except ValueError as exc:
                        raise ProviderResponseError(
                            self.name, "MalformedResponse", f"{signal}: {exc}") from exc
        return Signals(self.name, grid, values, p10, p90, generated_at=now)

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
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from suandian.api.powersite import CsvForecast
from suandian.errors import ProviderResponseError
from suandian.forecast.grid import TimeGrid
from suandian.forecast.providers.base import DEFAULT_UNITS, Signals, convert_units, signal_dimension
from suandian.forecast.resample import Kind, parse_times, resample

__all__ = ["CsvProvider", "parse_csv"]

_HEADER = re.compile(r"^value(?:\s*\[(?P<unit>[^\]]+)\])?$", re.IGNORECASE)


def parse_csv(provider: str, signal: str, text: str, zone: str,
              unit: str | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Epoch-second times and columns (``value``, maybe ``p10``/``p90``) in canonical units."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and not r[0].lstrip().startswith("#")]
    if len(rows) < 2:
        raise ProviderResponseError(provider, "Gaps", f"{signal}: no data rows")
    header = [h.strip() for h in rows[0]]
    m = _HEADER.match(header[1]) if len(header) > 1 else None
    if header[0].lower() != "time" or m is None:
        raise ProviderResponseError(
            provider, "MalformedResponse", f"{signal}: header must be 'time,value[,p10,p90]'")
    declared = m.group("unit")
    if declared and unit and declared.replace(" ", "").lower() != unit.replace(" ", "").lower():
        raise ProviderResponseError(
            provider, "WrongUnits", f"{signal}: header says {declared}, spec says {unit}")
    unit = declared or unit or DEFAULT_UNITS.get(signal, "kW")
    try:
        times = parse_times([r[0] for r in rows[1:]], zone)
        cols = {name: np.array([float(r[i]) if i < len(r) and r[i].strip() else np.nan
                                for r in rows[1:]])
                for i, name in enumerate(header[1:], start=1)}
    except (ValueError, IndexError) as exc:
        raise ProviderResponseError(provider, "MalformedResponse", f"{signal}: {exc}") from exc
    out = {"value" if k == header[1] else k.lower(): convert_units(provider, signal, v, unit)
           for k, v in cols.items()}
    return times, out


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

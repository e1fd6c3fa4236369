"""The checks of a scenario's grid and real-data keys, apart from the rest of the
scenario's fields (:mod:`suandian.sim.scenario`): each problem becomes a
:class:`~suandian.errors.FieldError` naming the key and what would be valid, so that the
whole scenario's problems are reported at once, on one line."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from suandian.api.powersite import PowerSite
from suandian.errors import FieldError
from suandian.forecast import floor_time
from suandian.forecast.actuals import ERROR_MODELS, ErrorModel
from suandian.forecast.series import capacity_by_type
from suandian.sim.inputs import CARBON, SIGNALS
from suandian.units import format_duration

__all__ = ["MAX_DAYS", "check_grid", "error_model", "path_in", "signal_files"]


MAX_DAYS = 3660
"""Ten years of submissions: a bound on typos (``days: 36500``), not on the simulator,
whose time and memory grow linearly in days."""


def error_model(value: Any) -> ErrorModel:
    for model in ERROR_MODELS:
        if value == model:
            return model
    raise ValueError(value)


def check_grid(errors: list[FieldError], start: datetime, slot: timedelta,
               horizon: timedelta, refresh: timedelta) -> None:
    """The slot divides a day, the start lies on a slot boundary, horizon and refresh are
    whole slots: each mismatch named with the value that would fit."""
    seconds = slot.total_seconds()
    if seconds <= 0 or seconds != int(seconds) or 86400 % int(seconds):
        errors.append(FieldError("slot", (
            f"{format_duration(slot)} does not divide a day into whole slots; use e.g. 5m, "
            "15m, 30m or 1h")))
        return
    aligned = floor_time(start, slot)
    if aligned != start:
        errors.append(FieldError("start", (
            f"{start:%Y-%m-%dT%H:%M:%SZ} is not on a {format_duration(slot)} slot boundary "
            "(slots are counted "
            f"from 1970-01-01T00:00Z); use {aligned:%Y-%m-%dT%H:%M:%SZ}, or a slot that "
            "divides the hours since then")))
    for key, value in (("horizon", horizon), ("refresh", refresh)):
        if value < slot or value % slot:
            errors.append(FieldError(key, (
                f"{format_duration(value)} is not a whole number of {format_duration(slot)} "
                f"slots (at least one); use e.g. "
                f"{format_duration(max(round(value / slot), 1) * slot)}")))
            return
    if horizon < refresh:
        errors.append(FieldError("horizon", (
            f"{format_duration(horizon)} is shorter than the refresh "
            f"({format_duration(refresh)}): the policies would have no forecast before the "
            "next; make it at least the refresh")))


def signal_files(key: str, doc: Any, sites: dict[str, PowerSite], base: Path | None,
                  errors: list[FieldError]) -> dict[str, dict[str, Path]]:
    """Site -> signal -> CSV path of an ``actuals:`` or ``forecasts:`` mapping; a site the
    scenario lacks, a signal no site has, a source the site lacks, a missing file, each
    named with what would be valid."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        errors.append(FieldError(key, (
            f"a mapping of site to signal files, e.g. {{{next(iter(sites), 'site')}: "
            f"{{{CARBON}: ci.csv}}}}")))
        return {}
    out: dict[str, dict[str, Path]] = {}
    for site, signals in doc.items():
        where = f"{key}.{site}"
        if site not in sites:
            errors.append(FieldError(where, (
                f"not a site of this scenario ({', '.join(sites) or 'none'})")))
            continue
        if not isinstance(signals, dict):
            errors.append(FieldError(where, f"a mapping of signal to CSV file, e.g. "
                                            f"{{{CARBON}: ci.csv}}"))
            continue
        sources = capacity_by_type(sites[site])
        valid = [*sources, CARBON]
        out[str(site)] = {}
        for signal, value in signals.items():
            if signal not in SIGNALS:
                errors.append(FieldError(f"{where}.{signal}", (
                    f"unknown signal; signals are {', '.join(SIGNALS)}")))
            elif signal not in valid:
                errors.append(FieldError(f"{where}.{signal}", (
                    f"site {site} has no {signal} source (its signals: "
                    f"{', '.join(valid)}); add the source to its supply, or drop the file")))
            else:
                path = path_in(value, base)
                out[str(site)][str(signal)] = path
                if not path.is_file():
                    errors.append(FieldError(f"{where}.{signal}", f"no such file {path}"))
    return out


def path_in(value: Any, base: Path | None) -> Path:
    """A path from a scenario, relative to the scenario's folder."""
    path = Path(str(value))
    return path if path.is_absolute() or base is None else base / path

"""A placement decision as it lives in the cluster: in annotations and in ``status``.

The operator keeps no state only in memory. Whatever the planner decided for a job (its
site, planned start, latest start, run windows, and why) is written into the objects, and
read back from them by a restarted or failed-over operator. This module is the one
translation between the in-memory :class:`Decision` and those strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from suandian.planner.reasons import format_grams as _format_grams
from suandian.units import parse_time  # decoding annotations

__all__ = [
    "ANNOTATION_LATEST_START",
    "ANNOTATION_PLANNED_START",
    "ANNOTATION_REASON",
    "ANNOTATION_SITE",
    "ANNOTATION_WINDOWS",
    "Decision",
    "format_time",
    "parse_time",
]

PREFIX = "suandian.io/"
ANNOTATION_SITE = PREFIX + "site"
ANNOTATION_PLANNED_START = PREFIX + "planned-start"
ANNOTATION_LATEST_START = PREFIX + "latest-start"
ANNOTATION_WINDOWS = PREFIX + "windows"
ANNOTATION_REASON = PREFIX + "reason"


@dataclass(frozen=True)
class Decision:
    """Where and when one job runs, with the figures that justify it.

    ``windows`` are the run windows of an interruptible job (start, end), in order; a
    job that runs in one go has one window starting at ``planned_start`` (or none, in
    which case it runs from ``planned_start`` to completion).
    """

    site: str
    planned_start: datetime
    latest_start: datetime
    reason: str
    windows: tuple[tuple[datetime, datetime], ...] = ()
    node_preferences: tuple[tuple[str, int], ...] = ()
    expected_emissions_g: float | None = None
    run_now_emissions_g: float | None = None
    expected_green_fraction: float | None = None
    energy_kwh: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def saved_g(self) -> float | None:
        """Grams of CO2 saved against running at once (negative when worse)."""
        if self.expected_emissions_g is None or self.run_now_emissions_g is None:
            return None
        return self.run_now_emissions_g - self.expected_emissions_g

    def start_by(self) -> datetime:
        """The moment the job must be running: the planned start, never past the latest."""
        return min(self.planned_start, self.latest_start)

    def window_at(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The run window containing ``now`` (interruptible jobs), if any."""
        for start, end in self.windows:
            if start <= now < end:
                return start, end
        return None

    def next_window_start(self, now: datetime) -> datetime | None:
        """The start of the first window that begins after ``now``."""
        later = [start for start, _ in self.windows if start > now]
        return min(later) if later else None

    def annotations(self) -> dict[str, str]:
        """The decision as annotations (on the child Job or the gated Pod)."""
        out = {
            ANNOTATION_SITE: self.site,
            ANNOTATION_PLANNED_START: format_time(self.planned_start),
            ANNOTATION_LATEST_START: format_time(self.latest_start),
            ANNOTATION_REASON: self.reason[:1024],
        }
        if self.windows:
            out[ANNOTATION_WINDOWS] = json.dumps(
                [[format_time(a), format_time(b)] for a, b in self.windows]
            )
        return out

    @classmethod
    def from_annotations(cls, annotations: Mapping[str, str]) -> Decision | None:
        """Read a decision back from annotations; None when there is none (or it is torn)."""
        try:
            site = annotations[ANNOTATION_SITE]
            planned = parse_time(annotations[ANNOTATION_PLANNED_START])
            latest = parse_time(annotations[ANNOTATION_LATEST_START])
        except (KeyError, ValueError):
            return None
        windows: tuple[tuple[datetime, datetime], ...] = ()
        raw = annotations.get(ANNOTATION_WINDOWS)
        if raw:
            try:
                windows = tuple((parse_time(a), parse_time(b)) for a, b in json.loads(raw))
            except (ValueError, TypeError):
                windows = ()
        return cls(site=site, planned_start=planned, latest_start=latest,
                   reason=annotations.get(ANNOTATION_REASON, ""), windows=windows)

    def status_fields(self) -> dict[str, Any]:
        """The ``ComputeJob.status`` fields this decision sets (wire names)."""
        out: dict[str, Any] = {
            "site": self.site,
            "plannedStart": format_time(self.planned_start),
            "latestStart": format_time(self.latest_start),
            "reason": self.reason[:1024],
            "windows": [{"start": format_time(a), "end": format_time(b)}
                        for a, b in self.windows],
        }
        if self.expected_green_fraction is not None:
            fraction = min(1.0, max(0.0, float(self.expected_green_fraction)))
            out["expectedGreenFraction"] = round(fraction, 4)
            out["greenPercent"] = round(fraction * 100)
        if self.energy_kwh is not None:
            out["energyKWh"] = round(max(0.0, float(self.energy_kwh)), 4)
        emissions: dict[str, float] = {}
        if self.expected_emissions_g is not None:
            emissions["expectedGrams"] = round(float(self.expected_emissions_g), 1)
        if self.run_now_emissions_g is not None:
            emissions["runNowGrams"] = round(float(self.run_now_emissions_g), 1)
        if self.saved_g is not None:
            emissions["savedGrams"] = round(self.saved_g, 1)
            out["saved"] = format_grams(self.saved_g)
        if emissions:
            out["emissions"] = emissions
        return out

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> Decision | None:
        """Read the decision a previous run wrote into ``status`` (None when absent)."""
        try:
            site = status["site"]
            planned = parse_time(status["plannedStart"])
            latest = parse_time(status["latestStart"])
        except (KeyError, ValueError, TypeError):
            return None
        windows = []
        for window in status.get("windows") or []:
            try:
                windows.append((parse_time(window["start"]), parse_time(window["end"])))
            except (KeyError, ValueError, TypeError):
                continue
        emissions = status.get("emissions") or {}
        return cls(
            site=site, planned_start=planned, latest_start=latest,
            reason=status.get("reason") or "", windows=tuple(windows),
            expected_emissions_g=emissions.get("expectedGrams"),
            run_now_emissions_g=emissions.get("runNowGrams"),
            expected_green_fraction=status.get("expectedGreenFraction"),
            energy_kwh=status.get("energyKWh"),
        )


def format_time(when: datetime) -> str:
    """RFC 3339 in UTC with seconds, as Kubernetes writes times."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def time_of(value: Any) -> datetime | None:
    """A time from an object's field (None when absent or unreadable)."""
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None


def format_grams(grams: float) -> str:
    """Grams for ``status.saved``: ``850 g``, ``41.2 kg``, ``3.10 t`` (the planner's format,
    without the ``CO2`` the column header already says)."""
    return _format_grams(grams, unit="")

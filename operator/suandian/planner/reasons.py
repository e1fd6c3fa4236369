"""One human line per decision: where, when, how green, and what it saves."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from suandian.planner.model import JobDemand, Snapshot

__all__ = ["explain", "format_grams"]

_SOURCE_WORDS = {
    "solar": "sun", "wind": "wind", "hydro": "hydro", "directGreen": "the green line",
    "storage": "stored power",
}


def format_grams(grams: float) -> str:
    """``850 gCO2``, ``41 kgCO2``, ``3.2 tCO2``."""
    g = abs(grams)
    sign = "-" if grams < 0 else ""
    if g >= 1e6:
        return f"{sign}{g / 1e6:.1f} tCO2"
    if g >= 1e3:
        return f"{sign}{g / 1e3:.0f} kgCO2" if g >= 1e4 else f"{sign}{g / 1e3:.1f} kgCO2"
    return f"{sign}{g:.0f} gCO2"


def _wait_words(slots: int, slot_hours: float) -> str:
    hours = slots * slot_hours
    if hours < 1:
        return f"{round(hours * 60)} min"
    return f"{hours:.0f}h" if hours >= 10 or hours == int(hours) else f"{hours:.1f}h"


def _dominant_source(snap: Snapshot, site: int, slots: np.ndarray) -> str:
    by_source = snap.sites[site].green_by_source_kw
    if not by_source or int(slots[0]) >= snap.slots:
        return "green power"
    inside: slice | np.ndarray = (
        slice(int(slots[0]), min(int(slots[-1]) + 1, snap.slots))
        if int(slots[-1]) - int(slots[0]) == len(slots) - 1 else slots[slots < snap.slots])
    means = {name: float(np.asarray(arr)[inside].mean()) for name, arr in by_source.items()}
    best = max(sorted(means), key=lambda k: means[k])
    return _SOURCE_WORDS.get(best, best) if means[best] > 0 else "green power"


def explain(
    snap: Snapshot, job: JobDemand, site: int, slots: np.ndarray, wait_slots: int,
    forced: bool, over: bool, green: float, green_now: float, saved_g: float,
    latest_start: datetime, home: int,
) -> str:
    """The reason line, e.g. ``waiting 5h for wind in ningxia: 92% green vs 31% now,
    saves 41 kgCO2``."""
    name = snap.sites[site].name
    if over:
        return (f"starting in {name} although no allowed site has room or grid import "
                "left: the deadline comes first")
    if job.policy == "RunNow":
        return f"policy RunNow: starting now in {name}, {green:.0%} green"
    if forced:
        return (f"starting now in {name}: latest start reached "
                f"({latest_start:%Y-%m-%d %H:%M} UTC), {green:.0%} green")
    if job.policy == "PlaceOnly":
        return f"policy PlaceOnly: starting now in the greenest allowed site, {name} " \
               f"({green:.0%} green)"
    if job.min_green_fraction > 0 and green < job.min_green_fraction - 1e-9:
        return (f"waiting for {job.min_green_fraction:.0%} green: no window reaches it; "
                f"holds {name} at its latest start {latest_start:%Y-%m-%d %H:%M} UTC")
    interrupted = int(slots[-1]) - int(slots[0]) != len(slots) - 1
    pieces = (f" in {int((np.diff(slots) > 1).sum()) + 1} windows" if interrupted else "")
    saves = f", saves {format_grams(saved_g)}" if saved_g > 0.5 else ""
    elsewhere = f" in {snap.sites[home].name}" if home != site else ""
    if wait_slots <= 0 and not interrupted:
        when = ("starting now" if slots[0] == 0 else
                f"starting at its earliest start {snap.time_of(int(slots[0])):%m-%d %H:%M} UTC")
        if not elsewhere:
            return f"{when} in {name}: {green:.0%} green, the best before the deadline"
        return f"{when} in {name}: {green:.0%} green vs {green_now:.0%}{elsewhere}{saves}"
    source = _dominant_source(snap, site, slots)
    return (f"waiting {_wait_words(wait_slots, snap.slot_hours)} for {source} in {name}"
            f"{pieces}: {green:.0%} green vs {green_now:.0%} now{elsewhere}{saves}")

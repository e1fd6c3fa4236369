"""One human line per decision: where, when, how green, and what it saves."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from suandian.planner.model import JobDemand, Snapshot

__all__ = ["SourceMeans", "explain", "format_grams"]

_SOURCE_WORDS = {
    "solar": "sun", "wind": "wind", "hydro": "hydro", "directGreen": "the green line",
    "storage": "stored power",
}


def format_grams(grams: float, unit: str = "CO2") -> str:
    """Grams of CO2 for people: ``850 gCO2``, ``41.2 kgCO2``, ``60 kgCO2``, ``3.10 tCO2``
    (``unit=""`` for the short form of ``status.saved``: ``41.2 kg``)."""
    g = abs(grams)
    sign = "-" if grams < 0 else ""
    if g >= 1e6:
        return f"{sign}{g / 1e6:.2f} t{unit}"
    if g >= 1e3:
        kg = f"{g / 1e3:.1f}".removesuffix(".0")
        return f"{sign}{kg} kg{unit}"
    return f"{sign}{g:.0f} g{unit}"


def _wait_words(slots: int, slot_hours: float) -> str:
    hours = slots * slot_hours
    if hours < 1:
        return f"{round(hours * 60)} min"
    return f"{hours:.0f}h" if hours >= 10 or hours == int(hours) else f"{hours:.1f}h"


class SourceMeans:
    """Each site's green supply by source, stacked once per plan (sources in name order),
    so naming the dominant source of a decision is one numpy call."""

    def __init__(self, snap: Snapshot) -> None:
        self.horizon = snap.slots
        self._stamps: dict[int, str] = {}
        self.names: list[tuple[str, ...]] = []
        self.stacked: list[np.ndarray | None] = []
        for site in snap.sites:
            names = tuple(sorted(site.green_by_source_kw))
            self.names.append(names)
            self.stacked.append(np.stack([np.asarray(site.green_by_source_kw[k], dtype=float)
                                          for k in names]) if names else None)

    def stamp(self, snap: Snapshot, slot: int) -> str:
        """The start of a slot as the reason line writes it, ``06-01 14:00``
        (formatted once per slot: ``strftime`` costs more than the rest of a reason)."""
        text = self._stamps.get(slot)
        if text is None:
            text = self._stamps[slot] = f"{snap.time_of(slot):%m-%d %H:%M}"
        return text

    def dominant(self, site: int, slots: np.ndarray) -> str:
        """The source with the highest mean supply over the slots (within the horizon):
        ``argmax_k mean_t G_k[t]``, in words ("sun", "wind"); "green power" if none."""
        stacked = self.stacked[site]
        if stacked is None or int(slots[0]) >= self.horizon:
            return "green power"
        first, last = int(slots[0]), int(slots[-1])
        inside: slice | np.ndarray = (
            slice(first, min(last + 1, self.horizon))
            if last - first == len(slots) - 1 else slots[slots < self.horizon])
        means = stacked[:, inside].mean(axis=1)
        k = int(np.argmax(means))  # the first of equal means, in name order
        best = self.names[site][k]
        return _SOURCE_WORDS.get(best, best) if means[k] > 0 else "green power"


def explain(
    snap: Snapshot, job: JobDemand, site: int, slots: np.ndarray, wait_slots: int,
    forced: bool, over: bool, green: float, green_now: float, saved_g: float,
    latest_start: datetime, home: int, *, sources: SourceMeans | None = None,
    listed: list[int] | None = None,
) -> str:
    """The reason line, e.g. ``waiting 5h for wind in ningxia: 92% green vs 31% now,
    saves 41 kgCO2``, or on a grid-only site ``waiting 8h for a cleaner grid in fr: no
    green supply, saves 12 kgCO2`` (``for room`` when waiting saves nothing).
    ``sources`` (built once per plan) and ``listed`` (the slots as a list) only save work
    when explaining many decisions."""
    name = snap.sites[site].name
    if over:
        return (f"starting in {name} although no allowed site has room or grid import "
                "left: the deadline comes first")
    if job.policy == "RunNow":
        return f"policy RunNow: starting now in {name}, {green:.0%} green"
    if job.policy == "PlaceOnly":  # named first: the policy, not the deadline, decides
        return f"policy PlaceOnly: starting now in the greenest allowed site, {name} " \
               f"({green:.0%} green)"
    if forced:
        return (f"starting now in {name}: latest start reached "
                f"({latest_start:%Y-%m-%d %H:%M} UTC), {green:.0%} green")
    if job.min_green_fraction > 0 and green < job.min_green_fraction - 1e-9:
        return (f"waiting for {job.min_green_fraction:.0%} green: no window reaches it; "
                f"holds {name} at its latest start {latest_start:%Y-%m-%d %H:%M} UTC")
    first, last = (listed[0], listed[-1]) if listed is not None else (int(slots[0]),
                                                                      int(slots[-1]))
    interrupted = last - first != len(slots) - 1
    pieces = (f" in {int((np.diff(slots) > 1).sum()) + 1} windows" if interrupted else "")
    saves = f", saves {format_grams(saved_g)}" if saved_g > 0.5 else ""
    elsewhere = f" in {snap.sites[home].name}" if home != site else ""
    if wait_slots <= 0 and not interrupted:
        stamp = (sources.stamp(snap, first) if sources is not None
                 else f"{snap.time_of(first):%m-%d %H:%M}")
        when = "starting now" if first == 0 else f"starting at its earliest start {stamp} UTC"
        if not elsewhere:
            return f"{when} in {name}: {green:.0%} green, the best before the deadline"
        return f"{when} in {name}: {green:.0%} green vs {green_now:.0%}{elsewhere}{saves}"
    wait = _wait_words(wait_slots, snap.slot_hours)
    if green <= 0 and green_now <= 0:  # no green either way: the grid (or room) decides
        why = "a cleaner grid" if saved_g > 0.5 else "room"
        return f"waiting {wait} for {why} in {name}{pieces}: no green supply{elsewhere}{saves}"
    source = (sources or SourceMeans(snap)).dominant(site, slots)
    return (f"waiting {wait} for {source} in {name}{pieces}: {green:.0%} green vs "
            f"{green_now:.0%} now{elsewhere}{saves}")

"""The common time grid every forecast lives on: fixed-length UTC slots from an aligned start.

Providers answer at their own resolution (hourly, 30-minute, 5-minute) and in their own
time zone; everything is resampled onto one ``TimeGrid`` before the planner sees it, so
that slot ``i`` means the same interval for every site and every signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

__all__ = ["DEFAULT_SLOT", "DEFAULT_SLOTS", "TimeGrid", "floor_time"]

DEFAULT_SLOT = timedelta(minutes=15)
DEFAULT_SLOTS = 192  # 48 hours of 15-minute slots
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_time(t: datetime, slot: timedelta = DEFAULT_SLOT) -> datetime:
    """The start of the slot of length ``slot`` (counted from the Unix epoch) holding ``t``."""
    if t.tzinfo is None:
        raise ValueError(f"time {t.isoformat()} has no time zone; use an aware datetime")
    step = int(slot.total_seconds())
    seconds = int((t - _EPOCH).total_seconds() // step) * step
    return _EPOCH + timedelta(seconds=seconds)


@dataclass(frozen=True)
class TimeGrid:
    """``slots`` consecutive slots of length ``slot`` starting at ``start`` (UTC, aligned).

    Alignment means ``start`` is a whole number of slots after the Unix epoch, so two grids
    with the same slot length always share slot boundaries.
    """

    start: datetime
    slot: timedelta = DEFAULT_SLOT
    slots: int = DEFAULT_SLOTS

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("TimeGrid.start must be timezone-aware (UTC)")
        seconds = self.slot.total_seconds()
        if seconds <= 0 or seconds != int(seconds) or 86400 % int(seconds) != 0:
            raise ValueError(f"slot {self.slot} must be whole seconds dividing one day")
        if self.slots <= 0:
            raise ValueError(f"a grid needs at least one slot, got {self.slots}")
        start = self.start.astimezone(UTC)
        if floor_time(start, self.slot) != start:
            raise ValueError(f"start {start.isoformat()} is not aligned to {self.slot} slots")
        object.__setattr__(self, "start", start)

    @classmethod
    def covering(cls, now: datetime, *, slot: timedelta = DEFAULT_SLOT,
                 slots: int = DEFAULT_SLOTS) -> TimeGrid:
        """The grid whose first slot holds ``now``."""
        return cls(floor_time(now.astimezone(UTC), slot), slot, slots)

    @property
    def end(self) -> datetime:
        """The end of the last slot (exclusive)."""
        return self.start + self.slot * self.slots

    @property
    def slot_seconds(self) -> int:
        return int(self.slot.total_seconds())

    @property
    def slot_hours(self) -> float:
        """Slot length in hours: kW times ``slot_hours`` is kWh."""
        return self.slot.total_seconds() / 3600.0

    @property
    def start_epoch(self) -> int:
        """``start`` in seconds since the Unix epoch."""
        return int((self.start - _EPOCH).total_seconds())

    @property
    def epoch_seconds(self) -> np.ndarray:
        """Start of each slot in seconds since the Unix epoch (float64)."""
        return self.start_epoch + self.slot_seconds * np.arange(self.slots, dtype=np.float64)

    @property
    def times(self) -> np.ndarray:
        """Start of each slot as ``datetime64[s]`` (UTC)."""
        start = np.datetime64(self.start_epoch, "s")
        return start + np.arange(self.slots) * np.timedelta64(self.slot_seconds, "s")

    def time_at(self, index: int) -> datetime:
        """Start of slot ``index`` (may lie outside the grid)."""
        return self.start + self.slot * index

    def index_of(self, t: datetime) -> int:
        """Index of the slot holding ``t``; negative before the grid, ``>= slots`` after it.

        Callers that need a slot inside the grid clip the result themselves.
        """
        if t.tzinfo is None:
            raise ValueError(f"time {t.isoformat()} has no time zone; use an aware datetime")
        return int((t - self.start).total_seconds() // self.slot_seconds)

    def window(self, offset: int, slots: int) -> TimeGrid:
        """The grid of ``slots`` slots starting ``offset`` slots after this one's start."""
        return TimeGrid(self.time_at(offset), self.slot, slots)

    def __contains__(self, t: object) -> bool:
        return isinstance(t, datetime) and 0 <= self.index_of(t) < self.slots

"""The operator's memory of what arrived: the history behind expected arrivals.

The planner plans the work expected to arrive beside the jobs that exist
(:mod:`suandian.planner.arrivals`: what arrived a day ago arrives again). That needs
yesterday's jobs after they finished, so the planning service logs every demand the
first time it sees it, with its creation time and terms, and forgets it once it is more
than :data:`KEEP` old. The planner process is sent the entries each full round plans
(:mod:`suandian.planning.process`), so both plan the same.

The log is sorted by creation time, so a round's due entries are a slice found by
bisection (no scan on the event loop); the round repeats them a day later off the loop
(:func:`suandian.planner.arrivals.expected_arrivals`). Bounded: at most :data:`LIMIT`
entries, the oldest dropped first.
After a restart it holds only the jobs still pending or running: yesterday's finished
ones are not read back, so the forecast is whole again a day later.
"""

from __future__ import annotations

import bisect
from dataclasses import replace
from datetime import datetime, timedelta

from suandian.planner.arrivals import DAY, EXPECTED_PREFIX
from suandian.planning.rounds import Demand

__all__ = ["KEEP", "LIMIT", "ArrivalLog"]

KEEP = DAY
"""How long an arrival is remembered: a day (what arrived earlier recurs before now)."""

LIMIT = 200_000
"""Entries at most (a few hundred bytes each: the terms are shared with the demand)."""


class ArrivalLog:
    """Every demand as first seen (its key, terms and creation time), by creation time."""

    def __init__(self, keep: timedelta = KEEP, limit: int = LIMIT) -> None:
        self.keep, self.limit = keep, limit
        self._times: list[datetime] = []
        self._entries: list[Demand] = []
        self._seen: set[str] = set()
        self.since: datetime | None = None
        """When the log began to be read (its first :meth:`forget`): every arrival since
        then is in it."""

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, demand: Demand) -> None:
        """Log ``demand`` if its key is new (an update of a known job is not an arrival)."""
        if demand.key in self._seen or demand.key.startswith(EXPECTED_PREFIX):
            return
        self._seen.add(demand.key)
        entry = demand if demand.running_site is None and demand.remaining is None else (
            replace(demand, running_site=None, remaining=None))  # as submitted: one object
        at = bisect.bisect_right(self._times, demand.created)
        self._times.insert(at, demand.created)
        self._entries.insert(at, entry)
        if len(self._entries) > self.limit:
            self._drop(len(self._entries) - self.limit)

    def forget(self, now: datetime) -> None:
        """Drop what arrived more than :attr:`keep` before ``now``."""
        if self.since is None:
            self.since = now
        self._drop(bisect.bisect_left(self._times, now - self.keep))

    def due(self, now: datetime, until: datetime, period: timedelta = DAY
            ) -> tuple[Demand, ...]:
        """The arrivals that recur in ``(now, until]``: created in
        ``(now − period, until − period]``, oldest first, as they were (the round repeats
        them a period later: :func:`suandian.planner.arrivals.expected_arrivals`)."""
        lo = bisect.bisect_right(self._times, now - period)
        hi = bisect.bisect_right(self._times, until - period)
        return tuple(self._entries[lo:hi])

    def complete(self, now: datetime, period: timedelta = DAY) -> bool:
        """Whether the log holds every arrival of the ``period`` before ``now``, so that
        what :meth:`due` repeats is all the work forecast (not so for a day after the
        operator starts: what finished before is not read back)."""
        return self.since is not None and now - self.since >= period

    def _drop(self, count: int) -> None:
        for entry in self._entries[:count]:
            self._seen.discard(entry.key)
        del self._times[:count], self._entries[:count]

"""Work expected to arrive: a forecast of demand, so that deferring leaves room for it.

A planner that knows only the jobs already submitted fills the cleanest hours with them.
When more work arrives later with the same deadline (a nightly batch submitted from
18:00 to 22:00, due at 08:00), the capacity it needs may already be promised: on a
contended grid-only site that cost 3 to 7 missed deadlines a week, where starting at
once missed none. Large operators plan against a forecast of flexible demand as well as
of supply (Google's carbon-intelligent computing forecasts next-day flexible load);
this is the simplest such forecast that holds for batch work:

    seasonal naive: what arrived one period ago (a day by default) arrives again,
    shifted by that period, with the same shape, window and constraints.

The expected jobs go into :attr:`Snapshot.expected`; the planner places them beside the
real ones, then drops them (no decision, no load), and drops them first whenever a real
job has no room (:func:`~suandian.planner.core.plan`). A forecast that is wrong costs
at most some saving (real jobs start earlier than they had to); it never costs a real
job its deadline. Pure: the caller keeps the history and passes ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from suandian.planner.model import JobDemand

__all__ = ["DAY", "EXPECTED_PREFIX", "Arrival", "expected_arrivals"]

DAY = timedelta(days=1)
EXPECTED_PREFIX = "expected:"
"""Keys of expected jobs: ``expected:`` and the key of the job they repeat."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """One job as it was submitted: when, and its demand then (its whole duration, its
    window from submission to deadline)."""

    created: datetime
    demand: JobDemand


def expected_arrivals(history: Iterable[Arrival], now: datetime, until: datetime, *,
                      period: timedelta = DAY, limit: int = 5_000) -> tuple[JobDemand, ...]:
    """The jobs expected to arrive in ``(now, until]``: each arrival of ``history`` one
    ``period`` later, earliest first, at most ``limit`` of them (a bound on the
    planner's work; the earliest matter most, their deadlines come first).

    An expected job keeps the shape, power, sites, priority and green floor of the one it
    repeats, and its window shifted by ``period``; it holds no incumbent and runs
    nowhere yet."""
    if period <= timedelta(0):
        raise ValueError(f"period must be positive, got {period}")
    due = sorted((a for a in history if now < a.created + period <= until),
                 key=lambda a: (a.created, a.demand.key))
    return tuple(
        replace(a.demand, key=EXPECTED_PREFIX + a.demand.key,
                earliest_start=max(a.demand.earliest_start, a.created) + period,
                deadline=a.demand.deadline + period, running_site=None, incumbent=None)
        for a in due[:max(0, limit)])

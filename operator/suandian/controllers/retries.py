"""Failures in a row and the wait before the next try: one rule for every loop that must
not die (a job's step in the scheduler, a PowerSite's refresh, the planning round).

After the n-th failure in a row the next try waits ``first · 2^(n−1)``, at most ``most``;
a success starts the count afresh (the caller drops its :class:`Streak`). What is
logged: a bug (an exception the caller does not expect) at error level with its
traceback, an expected error (an API error, a planning error) as one warning line, and
the same error again as one line with the count, so a failure that lasts does not fill
the log. Counting it in a metric is the caller's: each loop has its own counter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

__all__ = ["Streak", "failed"]


@dataclass(frozen=True, slots=True)
class Streak:
    """Failures in a row of one thing: how many, and the last one's text."""

    count: int = 0
    last: str = ""


def failed(streak: Streak, exc: BaseException, *, what: str, bug: bool,
           first: timedelta, most: timedelta, logger: logging.Logger
           ) -> tuple[Streak, timedelta]:
    """Log ``exc``, the failure of ``what`` after ``streak``; the streak with it and how
    long to wait before the next try."""
    message = f"{type(exc).__name__}: {exc}"
    delay = min(most, first * (1 << min(streak.count, 16)))  # the shift cannot overflow
    after = Streak(streak.count + 1, message)
    if message == streak.last:
        logger.warning("%s failed again (%d in a row), retrying in %s: %s", what,
                       after.count, delay, message)
    elif bug:
        logger.error("%s failed, retrying in %s", what, delay, exc_info=exc)
    else:
        logger.warning("%s failed, retrying in %s: %s", what, delay, message)
    return after, delay

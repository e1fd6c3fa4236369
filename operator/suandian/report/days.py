"""Calendar days as Unix-time boundaries, in a timezone (UTC unless told otherwise).

A ledger day is local midnight to local midnight: with a timezone that has summer time,
one day a year is 23 hours long and one is 25, so boundaries are computed per day, never
as ``since + i * 86400``. A day that has not ended yet ends now and is marked partial.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from suandian.errors import SuandianError

MAX_DAYS = 400
"""A report spans at most this many days (a year and a month): each day costs Prometheus
a handful of queries."""


class ReportInputError(SuandianError):
    """A report option is wrong; the message names it and what would be right."""


@dataclass(frozen=True)
class Day:
    """One ledger day: ``start < t <= end`` in Unix seconds, labelled by its local date."""

    day: date
    start: float
    end: float
    partial: bool

    @property
    def seconds(self) -> float:
        return self.end - self.start


def timezone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``UTC``, ``Asia/Shanghai``), or an error naming the option."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ReportInputError(f"--timezone {name!r} is not an IANA time zone name "
                               "(e.g. UTC, Asia/Shanghai, Europe/Berlin)") from exc


def midnight(day: date, zone: ZoneInfo) -> float:
    """Unix time of local midnight starting ``day`` in ``zone``."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def days_between(since: date, until: date, zone: ZoneInfo, now: float) -> list[Day]:
    """The days from ``since`` (included) to ``until`` (excluded), local to ``zone``.

    Days that start after ``now`` are dropped; the day containing ``now`` ends at ``now``
    and is partial.
    """
    if until <= since:
        raise ReportInputError(f"--until {until} must be after --since {since} "
                               "(--until is the first day not in the report)")
    count = (until - since).days
    if count > MAX_DAYS:
        raise ReportInputError(f"--since {since} to --until {until} is {count} days; "
                               f"at most {MAX_DAYS} days in one report: split it")
    found = []
    for i in range(count):
        day = since + timedelta(days=i)
        start = midnight(day, zone)
        if start >= now:
            break
        end = midnight(day + timedelta(days=1), zone)
        found.append(Day(day=day, start=start, end=min(end, now), partial=end > now))
    if not found:
        raise ReportInputError(f"--since {since} is in the future: nothing is recorded yet")
    return found

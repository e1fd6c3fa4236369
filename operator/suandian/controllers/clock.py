"""The operator's clock: where "now" comes from, and how to wait until a moment.

Every decision the operator takes depends on the time (a planned start, a latest start,
a forecast slot). Taking it from one object lets tests run six hours of deferral in
milliseconds: :class:`LoopClock` reads the event loop's time, which ``looptime`` fakes,
while :class:`WallClock` reads the system clock in production. Kopf's own handler delays
are wall-clock stamps, so the controllers never use them for deferral; they sleep on
this clock instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

__all__ = ["Clock", "LoopClock", "WallClock", "first_of"]

# Sleep at most this long in one go, then look at the clock again: a wall clock can be
# stepped by NTP, and a long asyncio sleep would not notice.
MAX_NAP = timedelta(minutes=5)


class Clock(Protocol):
    """A source of timezone-aware UTC "now" and a way to sleep until a moment."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return at ``when`` or soon after (immediately if it has passed)."""
        ...


class WallClock:
    """The system clock (production)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        while (left := when - self.now()) > timedelta(0):
            await asyncio.sleep(min(left, MAX_NAP).total_seconds())


class LoopClock:
    """Time of the running event loop, anchored to a calendar moment (tests, simulations).

    ``now() = start + (loop.time() - loop time at the first call)``: the anchor is taken
    lazily, on first use inside the loop, so that a clock made in a fixture starts when
    the test's (possibly faked) time starts.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("LoopClock needs a timezone-aware start")
        self.start = start.astimezone(UTC)
        self._anchor: float | None = None

    def now(self) -> datetime:
        loop_now = asyncio.get_running_loop().time()
        if self._anchor is None:
            self._anchor = loop_now
        return self.start + timedelta(seconds=loop_now - self._anchor)

    async def sleep_until(self, when: datetime) -> None:
        left = (when - self.now()).total_seconds()
        if left > 0:
            await asyncio.sleep(left)


async def first_of(*waits: Awaitable[Any]) -> None:
    """Until the first of ``waits`` ends (a sleep on the clock, a stop, a wake-up); the
    others are cancelled and awaited, so no task outlives the wait."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

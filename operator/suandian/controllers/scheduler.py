"""One task that steps every waiting object: when something changed, or when it is due.

Each ComputeJob and gated Pod is driven by a *step* (``step(key) -> when to look again``)
that reads the object's record, acts on what is due and returns. Rather than a kopf
daemon per object (a task, a finalizer patch and kopf's bookkeeping for each of ten
thousand deferred jobs), one :class:`Scheduler` runs every step:

- ``wake(key)``: step it soon (the watch handlers call it when the object, its child Job
  or its decision changed); ``wake(key, later=True)``: step it when nothing sooner waits
  (a full round that moves a thousand deferred jobs must not hold up the arrivals: their
  steps go first, and later ones take at most an eighth of the concurrent steps and
  :data:`LATER_RATE` starts a second, so their writes leave the API server room for
  the arrivals' too);
- a step's return value: step it again at that time (None: only when woken);
- steps of different objects run concurrently, at most ``concurrency`` at once (they
  mostly wait for the API); one object is never stepped twice at the same time;
- a step that fails, whatever the error (a bug too), is retried after ``retry_delay``
  seconds, doubled at each failure in a row, at most :data:`MAX_STEP_BACKOFF`; counted
  in ``suandian_step_failures_total``; its traceback logged once.

Time is the operator's :class:`~suandian.controllers.clock.Clock`, so tests run hours of
deferral in fake time. :meth:`pause` stops all stepping (a standby replica must not act:
see :meth:`suandian.controllers.context.Context.pause`); :meth:`resume` continues.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from suandian import metrics
from suandian.controllers.clock import Clock, first_of
from suandian.controllers.retries import Streak, failed
from suandian.errors import KubeApiError, PlanningError

__all__ = ["LATER_RATE", "Scheduler", "Step"]

log = logging.getLogger(__name__)

Step = Callable[[str], Awaitable[datetime | None]]

LATER_RATE = 20.0
"""Later steps (moves of deferred jobs) started per second, at most: a forecast refresh
that moves a thousand waiting jobs (three writes each) is carried out over a minute, not
in the seconds the arrivals need the API server (a job due meanwhile is stepped then)."""
MAX_STEP_BACKOFF = timedelta(minutes=1)
"""The longest wait before a failing step is tried again (a watch event wakes it sooner)."""


class Scheduler:
    """Steps keys when woken or due (see the module docstring)."""

    def __init__(self, clock: Clock, step: Step, *, concurrency: int = 32,
                 retry_delay: float = 5.0, later_rate: float = LATER_RATE) -> None:
        self.clock = clock
        self._step = step
        self._retry = timedelta(seconds=retry_delay)
        self._limit = asyncio.Semaphore(max(1, concurrency))
        self._ready: dict[str, None] = {}  # keys to step, in wake order
        self._later: dict[str, None] = {}  # keys to step when none is ready
        self._running_later: set[str] = set()
        self._later_limit = max(1, concurrency // 8)
        self._later_rate = later_rate
        self._later_tokens = max(1.0, later_rate)  # a second's worth to begin with
        self._later_refilled: float | None = None  # loop time of the last refill
        self._later_timer: asyncio.TimerHandle | None = None
        self._due: dict[str, datetime] = {}  # key -> when to step it next
        self._heap: list[tuple[datetime, int, str]] = []  # (when, seq, key); lazily pruned
        self._seq = itertools.count()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()  # woken while its step ran
        self._gone: set[str] = set()  # forgotten while its step ran
        self._failures: dict[str, Streak] = {}  # key -> its failed steps in a row
        self._signal = asyncio.Event()
        self._active = asyncio.Event()
        self._active.set()
        self._task: asyncio.Task[None] | None = None

    # -- what the handlers call ----------------------------------------------------------

    def wake(self, key: str, *, later: bool = False) -> None:
        """Step ``key`` soon; ``later``: after every key woken without it (and with at
        most an eighth of the concurrent steps), for work that is not due (a move of a
        deferred job)."""
        self._gone.discard(key)
        if key in self._running:
            self._again.add(key)
        elif later and key not in self._ready:
            self._later[key] = None
        else:
            self._later.pop(key, None)
            self._ready[key] = None
        self._signal.set()

    def forget(self, key: str) -> None:
        """Never step ``key`` again (a running step finishes)."""
        self._ready.pop(key, None)
        self._later.pop(key, None)
        self._due.pop(key, None)
        self._again.discard(key)
        self._failures.pop(key, None)
        if key in self._running:
            self._gone.add(key)

    def _failed(self, key: str, exc: Exception) -> timedelta:
        """Log and count a failed step; how long until it is tried again: the retry
        delay, doubled at each failure in a row of that key, at most a minute. A bug's
        traceback is logged once per key and error; repeats are one line."""
        kind = ("ApiError" if isinstance(exc, KubeApiError) else
                "Planning" if isinstance(exc, PlanningError) else "Bug")
        metrics.record_step_failure(kind)
        self._failures[key], delay = failed(
            self._failures.get(key, Streak()), exc, what=f"{key}: the step", bug=kind == "Bug",
            first=self._retry, most=MAX_STEP_BACKOFF, logger=log)
        return delay

    def failures(self, key: str) -> int:
        """Failed steps of ``key`` in a row (0: its last step succeeded)."""
        return self._failures.get(key, Streak()).count

    @property
    def later_backlog(self) -> int:
        """Later steps (moves) waiting or running."""
        return len(self._later) + len(self._running_later)

    def due(self, key: str) -> datetime | None:
        """When ``key`` is next stepped by time (None: only when woken)."""
        return self._due.get(key)

    def pause(self) -> None:
        """Stop stepping (running steps finish); everything queued is dropped."""
        self._active.clear()
        self._ready.clear()
        self._later.clear()
        self._due.clear()
        self._heap.clear()
        self._again.clear()
        self._gone.update(self._running)
        self._signal.set()

    def resume(self) -> None:
        self._active.set()

    @property
    def paused(self) -> bool:
        return not self._active.is_set()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the task (from a kopf handler: it inherits kopf's event poster)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="suandian-scheduler")

    async def stop(self) -> None:
        if self._later_timer is not None:
            self._later_timer.cancel()
            self._later_timer = None
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._running.clear()

    # -- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._active.wait()
            self._signal.clear()
            self._collect_due(self.clock.now())
            while (key := self._next()) is not None and self._active.is_set():
                if key in self._running:
                    self._again.add(key)
                    continue
                await self._limit.acquire()  # back-pressure: at most `concurrency` steps
                if not self._active.is_set():
                    self._limit.release()
                    break
                self._running[key] = asyncio.create_task(self._one(key), name=f"step {key}")
            if self._ready or not self._active.is_set():
                continue
            await self._sleep()

    def _next(self) -> str | None:
        """The next key to step: the first ready one, else the first later one while
        later steps hold less than an eighth of the concurrent steps."""
        if self._ready:
            key = next(iter(self._ready))
            del self._ready[key]
            return key
        if self._later and len(self._running_later) < self._later_limit and self._token():
            key = next(iter(self._later))
            del self._later[key]
            self._running_later.add(key)
            return key
        return None

    def _token(self) -> bool:
        """Take one of the later steps' tokens (``later_rate`` a second, a burst of one
        second's worth at most); without one, set a timer for the next."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._later_refilled is not None:
            self._later_tokens = min(max(1.0, self._later_rate),
                                     self._later_tokens
                                     + (now - self._later_refilled) * self._later_rate)
        self._later_refilled = now
        if self._later_tokens >= 1.0:
            self._later_tokens -= 1.0
            return True
        if self._later_timer is None or self._later_timer.cancelled():
            wait = (1.0 - self._later_tokens) / self._later_rate
            self._later_timer = loop.call_at(now + wait, self._token_due)
        return False

    def _token_due(self) -> None:
        self._later_timer = None
        self._signal.set()

    def _collect_due(self, now: datetime) -> None:
        while self._heap and self._heap[0][0] <= now:
            when, _, key = heapq.heappop(self._heap)
            if self._due.get(key) == when:
                del self._due[key]
                self._ready[key] = None

    async def _sleep(self) -> None:
        """Until a wake-up, or the earliest due time."""
        while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # superseded entries
        if self._heap:
            await first_of(self._signal.wait(), self.clock.sleep_until(self._heap[0][0]))
        else:
            await first_of(self._signal.wait())

    async def _one(self, key: str) -> None:
        until: datetime | None = None
        try:
            until = await self._step(key)
        except Exception as exc:  # noqa: BLE001 - one object's bug must not stop the rest
            until = self.clock.now() + self._failed(key, exc)
        else:
            self._failures.pop(key, None)
        finally:
            self._running.pop(key, None)
            self._running_later.discard(key)
            self._limit.release()
        if key in self._gone:
            self._gone.discard(key)
            return
        if key in self._again:
            self._again.discard(key)
            self._ready[key] = None
        elif until is not None:
            self._due[key] = until
            heapq.heappush(self._heap, (until, next(self._seq), key))
            if len(self._heap) > 2 * len(self._due) + 64:  # superseded entries piled up
                self._heap = [(w, s, k) for w, s, k in self._heap if self._due.get(k) == w]
                heapq.heapify(self._heap)
        else:
            self._due.pop(key, None)
        self._signal.set()

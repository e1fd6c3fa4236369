"""The loop every per-object daemon runs: step, then sleep until due, woken, or stopped.

A driver's ``step()`` acts on what is due now and returns when it wants to look again
(``None``: only when something changes). Changes wake it at once: the watch handlers
set the object's wake-up event (the object changed, its child Job changed, a re-plan
moved its decision). Transient API errors are retried after ``retry_delay``; kopf's own
retry delays are not used because they are wall-clock stamps (see controllers.clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

import kopf

from suandian.controllers.context import Context
from suandian.errors import KubeApiError, PlanningError

__all__ = ["Driver", "drive"]


class Driver(Protocol):
    uid: str

    async def step(self) -> datetime | None: ...

    def finished(self) -> bool: ...


async def drive(ctx: Context, driver: Driver, stopped: kopf.DaemonStopped,
                logger: logging.Logger | logging.LoggerAdapter[Any]) -> None:
    """Run ``driver`` until it is finished or the daemon is stopped."""
    waker = ctx.waker(driver.uid)
    while not stopped and not driver.finished():
        waker.clear()
        until: datetime | None
        try:
            until = await driver.step()
        except KubeApiError as exc:
            logger.warning("Kubernetes API error, retrying: %s", exc)
            until = ctx.clock.now() + timedelta(seconds=ctx.settings.retry_delay)
        except PlanningError as exc:
            logger.warning("cannot act yet: %s", exc)
            until = ctx.clock.now() + timedelta(seconds=ctx.settings.retry_delay)
        if driver.finished():
            return
        waits = [asyncio.ensure_future(stopped.wait()), asyncio.ensure_future(waker.wait())]
        if until is not None:
            waits.append(asyncio.ensure_future(ctx.clock.sleep_until(until)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

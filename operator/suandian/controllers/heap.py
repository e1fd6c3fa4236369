"""When Python's cyclic garbage collector runs, so that it does not run during a burst.

An operator holding ten thousand jobs keeps a few million Python objects alive (its
records, kopf's per-object memory, the watch streams' caches). A full ("generation 2")
collection walks all of them: half a second to a second with the event loop stopped,
and CPython starts one whenever the objects that survived younger collections grow by a
quarter, which a burst of arrivals does. Measured in ``hack/bench_operator.py``: three
such pauses, 1.6 s in all, during one burst of 1,000 jobs.

The policy: what survives is frozen (:func:`gc.freeze`: the collector skips it from
then on), so each full collection walks only what was made since, not the whole heap.
After each full planning round the young generations are collected (milliseconds) and
everything left is frozen; whenever CPython starts a full collection on its own, its
survivors are frozen right after. Once an hour (at a full round) everything is unfrozen
and fully collected, so garbage cycles among frozen objects (rare: objects are freed by
reference counting as soon as nothing refers to them) are reclaimed too.

Not a full collection after every full round: a full round is computed while arrivals
go on being decided (:mod:`.planning`), so what a full collection walks then includes a
burst's worth of new objects: 154 ms with the event loop stopped, measured after a burst
of 1,000 jobs onto 10,000.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

__all__ = ["HeapPolicy"]

log = logging.getLogger(__name__)


class HeapPolicy:
    """Collect the young and freeze the rest after full rounds; a full collection every
    ``full_every`` seconds."""

    def __init__(self, full_every: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.full_every = full_every
        self._clock = clock
        self._last_full = clock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.freezes = 0

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Freeze the survivors of every full collection CPython runs by itself."""
        self._loop = loop
        if self._on_collection not in gc.callbacks:
            gc.callbacks.append(self._on_collection)

    def uninstall(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        self._loop = None

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        loop = self._loop
        if phase == "stop" and info.get("generation") == 2 and loop is not None:
            # not inside the collector's callback: on the loop, right after it
            loop.call_soon_threadsafe(self._freeze)

    def _freeze(self) -> None:
        gc.freeze()
        self.freezes += 1

    def after_full_round(self) -> None:
        started = self._clock()
        generation = 1
        if started - self._last_full >= self.full_every:
            gc.unfreeze()
            self._last_full, generation = started, 2
        collected = gc.collect(generation)
        gc.freeze()
        self.freezes += 1
        log.debug("heap: %d unreachable objects collected, %d frozen, in %.0f ms",
                  collected, gc.get_freeze_count(), (self._clock() - started) * 1e3)

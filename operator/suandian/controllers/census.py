"""The census of ComputeJobs by site and phase behind the ``suandian_jobs`` gauge.

The ComputeJob watch already shows the operator every job's phase and site (its own
status writes included), so the census is kept from those events: no listing, no API
call. Counts change incrementally (O(1) per event) and the gauge is replaced with the
whole picture only when a count changed, so a burst of status writes that leave every
job in its phase costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from suandian import metrics
from suandian.api.computejob import Phase

__all__ = ["JobCensus"]

Key = tuple[str | None, str]


class JobCensus:
    """``(site or None, phase) -> count`` of the ComputeJobs the watch has shown."""

    def __init__(self) -> None:
        self._where: dict[str, Key] = {}
        self._counts: dict[Key, int] = {}
        self._keys: dict[Key, Key] = {}  # one tuple per (site, phase), shared by its jobs

    def counts(self) -> dict[Key, int]:
        return dict(self._counts)

    def clear(self) -> None:
        """Forget every job (a paused replica: the active one publishes the census)."""
        self._where.clear()
        self._counts.clear()
        self._keys.clear()
        self.publish()

    def observe(self, uid: str, body: Mapping[str, Any] | None) -> None:
        """Note a job's current body (None: deleted); publish the census if it changed.

        A job without a phase yet (just created) counts as ``Pending``; its site is the
        one its status names (None before placement).
        """
        old = self._where.pop(uid, None)
        new: Key | None = None
        if body is not None:
            status = body.get("status") or {}
            phase = str(status.get("phase") or Phase.PENDING.value)
            if phase not in {p.value for p in Phase}:
                phase = Phase.PENDING.value
            key = (status.get("site") or None, phase)
            new = self._keys.setdefault(key, key)  # not a tuple and two strings per job
            self._where[uid] = new
        if old == new:
            return
        if old is not None:
            left = self._counts[old] - 1
            if left:
                self._counts[old] = left
            else:
                del self._counts[old]
        if new is not None:
            self._counts[new] = self._counts.get(new, 0) + 1
        self.publish()

    def publish(self) -> None:
        """Hand the whole census to :func:`suandian.metrics.record_jobs_by_phase`."""
        metrics.record_jobs_by_phase(self._counts)

"""What the decisions already handed out take from each site: green power and capacity.

A full planning round plans every waiting job together. Doing that for every burst of
arrivals costs time in proportion to all waiting jobs (seconds with ten thousand), so an
arrival round plans only the new jobs, against what the others leave (Kueue admits a
workload against the quota left, not by re-admitting everyone). This ledger is that
"what is left": for each decision, its facility power over its planned slots and its
resource request over the same slots, summed per site on an absolute slot axis (slot
``k`` starts at ``epoch + k·slot``), so successive rounds agree whatever "now" is.

It is an approximation between full rounds, on the safe side: a job whose decision
changes or goes away releases exactly what it committed. The grid import a site has
left follows from the same sums (the committed load beyond the green supply is drawn
from the grid; see ``PlanningService._snapshot``). It is a cache: nothing here survives
a restart, and the first round after one is a full round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from suandian.planner.model import FloatArray

__all__ = ["Commitment", "Commitments", "absolute_slot"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def absolute_slot(when: datetime, slot: timedelta) -> int:
    """The index of the slot holding ``when`` on the epoch-anchored axis."""
    return (when - _EPOCH) // slot


@dataclass(frozen=True, eq=False, slots=True)
class Commitment:
    """One decision's take: ``kw`` at ``site`` over absolute ``slots``; ``request``
    (resources,) held over the same slots, or None (running work: its pods are bound and
    already counted by the cluster view)."""

    site: str
    slots: np.ndarray
    kw: float
    request: FloatArray | None


class _SiteLoad:
    """Load (kW) and requests (resources × slots) of one site from slot ``origin`` on."""

    def __init__(self, origin: int, resources: int) -> None:
        self.origin = origin
        self.kw = np.zeros(0)
        self.requests = np.zeros((resources, 0))

    def _grow(self, end: int) -> None:
        need = end - self.origin - self.kw.size
        if need > 0:
            extra = max(need, self.kw.size, 256)
            self.kw = np.concatenate([self.kw, np.zeros(extra)])
            self.requests = np.concatenate(
                [self.requests, np.zeros((self.requests.shape[0], extra))], axis=1)

    def add(self, c: Commitment, sign: float) -> None:
        if c.slots.size == 0:
            return
        first = int(c.slots.min())
        if first < self.origin and sign > 0:  # extend the axis backwards
            extra = self.origin - first
            self.kw = np.concatenate([np.zeros(extra), self.kw])
            self.requests = np.concatenate(
                [np.zeros((self.requests.shape[0], extra)), self.requests], axis=1)
            self.origin = first
        # a release of slots already forgotten (the past) only takes back what is left
        slots = c.slots[c.slots >= self.origin] if first < self.origin else c.slots
        if slots.size == 0:
            return
        self._grow(int(slots.max()) + 1)
        at = slots - self.origin
        self.kw[at] += sign * c.kw
        if c.request is not None:
            self.requests[:, at] += sign * c.request[:, None]

    def window(self, start: int, n: int) -> tuple[FloatArray, FloatArray]:
        """Load and requests over absolute slots ``[start, start + n)`` (zeros beyond)."""
        kw, req = np.zeros(n), np.zeros((self.requests.shape[0], n))
        lo, hi = max(start, self.origin), min(start + n, self.origin + self.kw.size)
        if hi > lo:
            kw[lo - start:hi - start] = self.kw[lo - self.origin:hi - self.origin]
            req[:, lo - start:hi - start] = self.requests[:, lo - self.origin:hi - self.origin]
        return np.maximum(kw, 0.0), np.maximum(req, 0.0)

    def forget_before(self, start: int) -> None:
        """Drop the past (slots before ``start``): the arrays only grow forward."""
        cut = min(start - self.origin, self.kw.size)
        if cut > 0:
            self.kw = self.kw[cut:].copy()
            self.requests = self.requests[:, cut:].copy()
            self.origin += cut


class Commitments:
    """Per-key commitments and their per-site sums (see the module docstring)."""

    def __init__(self, resources: int) -> None:
        self._resources = resources
        self._by_key: dict[str, Commitment] = {}
        self._sites: dict[str, _SiteLoad] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def clear(self) -> None:
        self._by_key.clear()
        self._sites.clear()

    def commit(self, key: str, commitment: Commitment) -> None:
        """Record ``key``'s take (replacing what it took before)."""
        self.release(key)
        self._by_key[key] = commitment
        site = self._sites.get(commitment.site)
        if site is None:
            origin = int(commitment.slots.min()) if commitment.slots.size else 0
            site = self._sites[commitment.site] = _SiteLoad(origin, self._resources)
        site.add(commitment, 1.0)

    def items(self) -> list[tuple[str, Commitment]]:
        """Every key's take, in the order they were committed."""
        return list(self._by_key.items())

    def release(self, key: str) -> None:
        old = self._by_key.pop(key, None)
        if old is not None and old.site in self._sites:
            self._sites[old.site].add(old, -1.0)

    def window(self, site: str, start: int, n: int) -> tuple[FloatArray, FloatArray]:
        """What the committed decisions take at ``site`` over ``[start, start + n)``:
        kW per slot ``(n,)`` and requests ``(resources, n)``."""
        load = self._sites.get(site)
        if load is None:
            return np.zeros(n), np.zeros((self._resources, n))
        load.forget_before(start)
        return load.window(start, n)

"""Small synthetic snapshots for planner tests: hourly slots, blocks of sun, flat grids."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from suandian.planner import JobDemand, NodeInfo, SiteSupply, Snapshot

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SLOT = timedelta(hours=1)
RESOURCES = ("cpu", "memory", "nvidia.com/gpu")


def site(name: str, green: Sequence[float] | np.ndarray, carbon: float | Sequence[float],
         *, p10: Sequence[float] | None = None, import_kw: float = 1e6, pue: float = 1.0,
         cpu: float = 1e6, sources: dict[str, np.ndarray] | None = None) -> SiteSupply:
    g = np.asarray(green, dtype=float)
    n = g.size
    cap = np.full((3, n), 1e9)
    cap[0] = cpu
    return SiteSupply(
        name=name, green_p50_kw=g, green_p10_kw=np.asarray(p10 if p10 is not None else g, float),
        carbon_g_per_kwh=np.broadcast_to(np.asarray(carbon, float), (n,)).copy(),
        import_limit_kw=np.full(n, import_kw), pue=pue, capacity=cap,
        green_by_source_kw=sources or {"solar": g},
    )


def job(key: str, *, kw: float = 100.0, hours: int = 2, slack: float = 10.0, start: int = 0,
        cpu: float = 1.0, **kw_args: Any) -> JobDemand:
    earliest = NOW + SLOT * start
    return JobDemand(
        key=key, resources=np.array([cpu, 0.0, 0.0]), power_w=kw * 1000.0,
        duration=timedelta(hours=hours), earliest_start=earliest,
        deadline=earliest + timedelta(hours=hours + slack), **kw_args,
    )


def snapshot(sites: Sequence[SiteSupply], jobs: Sequence[JobDemand],
             nodes: Sequence[NodeInfo] = ()) -> Snapshot:
    return Snapshot(now=NOW, slot=SLOT, resources=RESOURCES, sites=tuple(sites),
                    jobs=tuple(jobs), nodes=tuple(nodes))


def sun(slots: int = 24, peak: float = 100.0, start: int = 6, end: int = 18) -> np.ndarray:
    """A block of ``peak`` kW of sun between ``start`` and ``end`` each day."""
    hours = np.arange(slots) % 24
    return np.where((hours >= start) & (hours < end), peak, 0.0)

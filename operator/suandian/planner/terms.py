"""A job's quantities in slot units, computed once per planning round."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from suandian.planner.model import JobDemand, PlanParams, Snapshot

__all__ = ["Terms", "job_terms"]


@dataclass(frozen=True)
class Terms:
    """Per-job quantities in slot units, computed once."""

    index: int
    demand: JobDemand
    n: int
    power_kw: float  # mean IT power over the held slots
    earliest: int
    latest: int  # latest start slot (may be negative)
    end: int  # slots usable before deadline - margin (exclusive)
    latest_start: datetime
    forced: bool


def job_terms(snap: Snapshot, params: PlanParams, i: int, job: JobDemand) -> Terms:
    slot_s = snap.slot.total_seconds()
    n = max(1, math.ceil(job.duration.total_seconds() / slot_s - 1e-9))
    earliest = max(0, math.ceil((job.earliest_start - snap.now).total_seconds() / slot_s - 1e-9))
    latest_start = job.deadline - job.duration - params.safety_margin
    latest = math.floor((latest_start - snap.now).total_seconds() / slot_s + 1e-9)
    end = math.floor((job.deadline - params.safety_margin - snap.now).total_seconds() / slot_s
                     + 1e-9)
    power_kw = job.power_w / 1000.0 * job.duration.total_seconds() / (n * slot_s)
    forced = job.policy == "RunNow" or latest <= earliest
    return Terms(i, job, n, power_kw, earliest, max(latest, earliest), max(end, earliest + n),
                latest_start, forced)

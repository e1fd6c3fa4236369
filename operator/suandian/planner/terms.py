"""A job's quantities in slot units, computed once per planning round."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from suandian.planner.data import SiteData, site_data
from suandian.planner.model import FloatArray, JobDemand, PlanParams, Snapshot

__all__ = [
    "Terms",
    "all_terms",
    "before_data",
    "first_slot",
    "job_terms",
    "mean_kw",
    "moved_g",
    "sites_of",
    "slots_for",
    "slotted",
    "transfer_g",
]


def slots_for(duration: timedelta, slot: timedelta) -> int:
    """Whole slots a run of ``duration`` holds: ``n = ceil(d/Δ)``, at least one (a
    nanosecond's float error over a whole slot does not add one). The one rounding rule
    of the planner, the operator's ledger, the simulator and the oracle."""
    return _slots_of(duration.total_seconds(), slot.total_seconds())


def first_slot(when: datetime, now: datetime, slot_s: float) -> int:
    """The first slot that starts at or after ``when`` (0 when that is past): a job's
    earliest slot, ``max(0, ceil((t − now)/Δ))`` with the same float guard."""
    return max(0, math.ceil((when - now).total_seconds() / slot_s - 1e-9))


def _slots_of(duration_s: float, slot_s: float) -> int:
    """:func:`slots_for` in seconds."""
    return max(1, math.ceil(duration_s / slot_s - 1e-9))


def mean_kw(power_w: float, duration: timedelta, slots: int, slot: timedelta) -> float:
    """Mean IT power over the ``slots`` a run holds, kW: ``P·d / (n·Δ)``, so its energy
    stays ``P·d`` whatever the rounding of ``d`` to whole slots."""
    return _kw_of(power_w, duration.total_seconds(), slots, slot.total_seconds())


def _kw_of(power_w: float, duration_s: float, slots: int, slot_s: float) -> float:
    """:func:`mean_kw` in seconds."""
    return power_w / 1000.0 * duration_s / (slots * slot_s)


@dataclass(slots=True)
class Terms:
    """Per-job quantities in slot units, computed once (never mutated; not frozen only
    because frozen dataclasses are several times slower to build, 10,000 per round)."""

    index: int
    demand: JobDemand
    n: int
    power_kw: float  # mean IT power over the held slots
    earliest: int
    latest: int  # latest start slot (may be negative)
    end: int  # slots usable before deadline - margin (exclusive)
    latest_start: datetime
    forced: bool
    request: FloatArray  # the whole job's resources as float64, converted once
    takes_capacity: bool  # any resource requested (else commits skip the capacity update)
    request_floor: FloatArray  # (resources, 1): request - 1e-9, the capacity test's bar
    held_site: int = -1  # the incumbent decision's site (-1: none, or it has begun)
    held: np.ndarray | None = None  # its slots, sorted, all >= 0
    expected: bool = False  # an expected arrival: holds capacity, draws no power
    data: SiteData | None = None  # the data it reads, per site (None: none declared)
    # the sites it may run at (:func:`sites_of`; None: every site), made once
    # (:func:`all_terms`): a job's sites never change once its terms exist
    sites: np.ndarray | None = None
    # (1 + resources, 1): -1e-9 then ``request_floor``, the bar of the ledger's ``room``
    # (import left, then free capacity) for a load the green supply covers
    room_floor: FloatArray | None = None


def all_terms(snap: Snapshot, params: PlanParams,
              jobs: tuple[JobDemand, ...] | None = None) -> list[Terms]:
    """:func:`job_terms` of every job of the snapshot (or of ``jobs``, indexed in that
    order), the resource arrays converted in one numpy pass rather than three small
    calls per job."""
    jobs = snap.jobs if jobs is None else jobs
    if not jobs:
        return []
    # one array from the list (a quarter of np.stack's cost: no array per job first)
    requests = np.array([j.resources for j in jobs], dtype=np.float64)
    takes = [bool(x) for x in np.any(requests, axis=1).tolist()]
    floors = (requests - 1e-9)[:, :, None]
    rooms = np.concatenate([np.full((len(jobs), 1, 1), -1e-9), floors], axis=1)
    out = []
    for i, job in enumerate(jobs):
        t = job_terms(snap, params, i, job, requests[i], takes[i], floors[i])
        t.room_floor = rooms[i]
        if t.demand.allowed_sites is not None:  # (data may have narrowed them)
            t.sites = np.asarray(t.demand.allowed_sites, dtype=int)
        out.append(t)
    return out


def job_terms(snap: Snapshot, params: PlanParams, i: int, job: JobDemand,
              request: FloatArray | None = None, takes_capacity: bool | None = None,
              request_floor: FloatArray | None = None) -> Terms:
    slot_s = snap.slot.total_seconds()
    now = snap.now
    duration_s = job.duration.total_seconds()
    n = _slots_of(duration_s, slot_s)
    earliest = first_slot(job.earliest_start, now, slot_s)
    latest_start = job.deadline - job.duration - params.safety_margin
    latest = math.floor((latest_start - now).total_seconds() / slot_s + 1e-9)
    end = math.floor((job.deadline - params.safety_margin - now).total_seconds() / slot_s
                     + 1e-9)
    power_kw = _kw_of(job.power_w, duration_s, n, slot_s)
    forced = job.policy == "RunNow" or latest <= earliest
    if request is None:
        request = np.asarray(job.resources, dtype=np.float64)
    held = _held_slots(snap, job)
    held_site = -1 if held is None or job.incumbent is None else job.incumbent.site
    data = None
    if job.data_gb > 0:
        job, data = _with_data(snap, params, job, earliest, max(latest, earliest),
                               forced or job.policy != "Optimize", held_site,
                               -1 if held is None else int(held[0]))
    return Terms(i, job, n, power_kw, earliest, max(latest, earliest), max(end, earliest + n),
                 latest_start, forced, request,
                 bool(request.any()) if takes_capacity is None else takes_capacity,
                 (request - 1e-9)[:, None] if request_floor is None else request_floor,
                 held_site, held, data=data)


def _with_data(snap: Snapshot, params: PlanParams, job: JobDemand, earliest: int,
               latest: int, fixed: bool, held_site: int, held_start: int
               ) -> tuple[JobDemand, SiteData]:
    """The job restricted to the sites its data reaches by its latest start (by its
    earliest, for a job whose start is fixed), and its transfer to each site. When none
    does, every allowed site stays and no start waits for the data (the job must start;
    it reads its data remotely), its energy still counted."""
    data = site_data(snap.site_names, params.data_links, job.data_gb, job.data_site,
                     earliest, snap.slot, held_site, held_start)
    allowed = range(len(snap.sites)) if job.allowed_sites is None else job.allowed_sites
    bar = earliest if fixed else latest
    reach = tuple(s for s in allowed if int(data.first[s]) <= bar)
    if not reach:
        return job, replace(data, first=np.full_like(data.first, earliest))
    if job.allowed_sites is None or len(reach) < len(job.allowed_sites):
        job = replace(job, allowed_sites=reach)
    return job, data


def before_data(t: Terms, sites: np.ndarray, a: int, b: int) -> np.ndarray:
    """``(sites, b - a)``: True for the slots at each site before the job's data can be
    there (a job without data: none; call only when ``t.data`` is set)."""
    assert t.data is not None
    ready: np.ndarray = np.arange(a, b)[None, :] < t.data.first[sites][:, None]
    return ready


def transfer_g(t: Terms, carbon: FloatArray, sites: np.ndarray, starts: np.ndarray
               ) -> FloatArray:
    """``(sites, starts)``: grams of the transfer to each site for each start slot,
    its kWh at the data site's grid intensity in the start slot (the destination's
    when the data lives at no site of the snapshot)."""
    assert t.data is not None
    kwh = t.data.kwh[sites][:, None]
    at = carbon[t.data.row, starts][None, :] if t.data.row >= 0 else carbon[sites][:, starts]
    return np.asarray(kwh * at, dtype=np.float64)


def moved_g(t: Terms, carbon: FloatArray, site: int, start: int) -> float:
    """Grams of moving the job's data to ``site`` for a start in slot ``start``."""
    return float(transfer_g(t, carbon, np.array([site]), np.array([start]))[0, 0])


def _held_slots(snap: Snapshot, job: JobDemand) -> np.ndarray | None:
    """The incumbent's slots on this round's grid; None when there is none, when it has
    begun (the job should be running: nothing to keep) or is off the grid."""
    held = job.incumbent
    if held is None or not held.windows or job.running_site is not None:
        return None
    slot_s = snap.slot.total_seconds()
    runs = []
    for start, end in held.windows:
        a = (start - snap.now).total_seconds() / slot_s
        b = (end - snap.now).total_seconds() / slot_s
        if a < -1e-9 or b <= a or abs(a - round(a)) > 1e-6 or abs(b - round(b)) > 1e-6:
            return None
        runs.append(np.arange(round(a), round(b)))
    return runs[0] if len(runs) == 1 else np.unique(np.concatenate(runs))


def slotted(t: Terms, width: int) -> bool:
    """Whether a job may take any ``n`` slots of its range (an interruptible ``Optimize``
    job, not forced, with more than ``n`` slots before its end or ``width``), rather than
    one window: how the repair and the exchanges place it."""
    return (t.demand.interruptible and t.demand.policy == "Optimize" and not t.forced
            and min(t.end, width) - t.earliest > t.n)


def sites_of(t: Terms, all_sites: np.ndarray) -> np.ndarray:
    """The indices of the sites a job may run at."""
    if t.sites is not None:
        return t.sites
    allowed = t.demand.allowed_sites
    return all_sites if allowed is None else np.asarray(allowed, dtype=int)

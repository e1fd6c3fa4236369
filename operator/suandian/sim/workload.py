"""Job traces: the CSV format, and the generator behind the built-in scenarios.

CSV columns (header required; the last seven optional)::

    name,submit,duration,power_w,deadline,interruptible,resources,sites,priority,min_green_fraction,nominal,window,data_gb,data_site
    etl-1,2026-06-01T18:00:00Z,3h,250000,12h,false,cpu=4000;memory=16000,jing-jin-ji|ningxia,0,0,,,500,jing-jin-ji
    etl-2,,3h,250000,,false,cpu=4000,ningxia,0,0,2026-06-02T01:00:00Z,8h,,

``deadline`` is an RFC 3339 time (``completeBy``) or a duration (``maxDelay``: the job
must finish by ``submit + duration + maxDelay``). ``resources`` are ``name=amount``
pairs in planner units (CPUs, GiB, GPUs). ``sites`` lists the allowed sites, the first
being the job's home (where it runs without Suandian).

``nominal`` is when the job would run without shifting (its cron time; the ``nominal``
policy starts it then); left out, it is ``submit``. ``window`` (with ``nominal``, and
``submit`` and ``deadline`` left empty) says how far it may move either way: it is
submitted ``window`` before its nominal start and due ``window`` after its nominal end
("nominally at 01:00, may move 8 h either way").

``data_gb`` and ``data_site``: the data the job reads and the site where it lives (both
or neither); running elsewhere waits for its transfer and pays its energy
(:mod:`suandian.planner.data`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from suandian.errors import FieldError, InputFileError
from suandian.files import read_text
from suandian.units import format_duration, parse_duration, parse_time

__all__ = ["JOB_CLASSES", "JobClass", "TraceJob", "generate_trace", "read_trace", "write_trace"]


@dataclass(frozen=True)
class TraceJob:
    """One job of a trace."""

    name: str
    submit: datetime
    duration: timedelta
    power_w: float
    deadline: datetime
    interruptible: bool
    resources: dict[str, float]
    sites: tuple[str, ...]
    priority: int = 0
    min_green_fraction: float = 0.0
    nominal: datetime | None = None
    """When the job would run unshifted (``None``: at ``submit``)."""
    data_gb: float = 0.0
    data_site: str = ""
    """The data it reads, GB, and the site where it lives (0 and "": none)."""

    @property
    def nominal_start(self) -> datetime:
        return self.submit if self.nominal is None else self.nominal


@dataclass(frozen=True)
class JobClass:
    """A kind of batch work: its share of jobs, size, length, slack and submit hours (UTC)."""

    name: str
    share: float
    power_mw: tuple[float, float]
    hours: tuple[int, int]
    slack_hours: tuple[int, int]
    interruptible: float
    gpus_per_mw: float
    submit_hours: tuple[int, ...] = field(default_factory=lambda: tuple(range(24)))


JOB_CLASSES: tuple[JobClass, ...] = (
    # Large-model training and fine-tuning: GPU-heavy, long, a day or two of slack.
    JobClass("train", 0.30, (1.0, 6.0), (6, 20), (18, 40), 0.6, 700.0),
    # Nightly ETL and analytics: CPU, submitted in the (Beijing) evening, due by morning.
    JobClass("etl", 0.30, (0.3, 2.0), (2, 5), (6, 12), 0.0, 0.0,
             submit_hours=(10, 11, 12, 13, 14)),
    # Rendering and transcoding: mixed, half a day of slack.
    JobClass("render", 0.25, (0.5, 3.0), (3, 8), (8, 20), 0.3, 300.0),
    # Batch inference and embeddings: short, little slack.
    JobClass("inference", 0.15, (0.2, 1.5), (1, 3), (2, 6), 0.0, 1000.0),
)

EAST = ("jing-jin-ji", "yangtze-delta", "guangdong")
WEST = ("inner-mongolia", "ningxia", "gansu", "guizhou", "chengyu")


def generate_trace(
    *, start: datetime, days: int, jobs_per_day: float, sites: Sequence[str],
    rng: np.random.Generator, power_scale: float = 1.0, residency_share: float = 0.25,
    classes: Sequence[JobClass] = JOB_CLASSES, window: timedelta | None = None,
    nominal_hour: int | None = None, data_share: float = 0.0, data_gb: float = 0.0,
) -> list[TraceJob]:
    """A week of mixed batch work submitted in the east, allowed to run in the west.

    Each job's home is an eastern hub among ``sites`` (any site if none is eastern); a
    ``residency_share`` of jobs may only run at home, the rest anywhere in ``sites``.
    Whole-hour durations and submit times. With ``window``, the drawn time is the job's
    nominal start (``nominal_hour`` of its day, if given) and it may move ``window``
    either way (submitted then, never before ``start``; due ``window`` after its nominal
    end) instead of having its class's slack. A ``data_share`` of jobs read ``data_gb``
    of data living at their home (drawn after all the jobs, and only when the share is
    above 0: the jobs are those of the same seed without data). Deterministic for ``rng``'s
    state.
    """
    homes = [s for s in sites if s in EAST] or list(sites)
    count = int(rng.poisson(jobs_per_day * days))
    shares = np.array([c.share for c in classes])
    out = []
    for i in range(count):
        c = classes[int(rng.choice(len(classes), p=shares / shares.sum()))]
        day = int(rng.integers(0, days))
        hour = int(rng.choice(c.submit_hours))
        submit = start + timedelta(days=day, hours=hour)
        hours = int(rng.integers(c.hours[0], c.hours[1] + 1))
        slack = int(rng.integers(c.slack_hours[0], c.slack_hours[1] + 1))
        mw = float(np.exp(rng.uniform(math.log(c.power_mw[0]), math.log(c.power_mw[1]))))
        mw *= power_scale
        home = str(rng.choice(homes))
        allowed = (home,) if rng.random() < residency_share else (
            home, *sorted(s for s in sites if s != home))
        gpus = round(mw * c.gpus_per_mw)
        deadline = submit + timedelta(hours=hours + slack)
        nominal = None
        if window is not None:
            nominal = submit if nominal_hour is None else start + timedelta(
                days=day, hours=nominal_hour)
            submit = max(nominal - window, start)
            deadline = nominal + timedelta(hours=hours) + window
        out.append(TraceJob(
            name=f"{c.name}-{i:04d}", submit=submit, duration=timedelta(hours=hours),
            power_w=round(mw * 1e6, -3), deadline=deadline,
            interruptible=bool(rng.random() < c.interruptible),
            resources={"cpu": round(mw * 2000.0), "memory": round(mw * 8000.0),
                       "nvidia.com/gpu": gpus},
            sites=allowed, nominal=nominal,
        ))
    if data_share > 0:  # drawn after every job, so the jobs are those without data
        reads = rng.random(len(out)) < data_share
        out = [replace(j, data_gb=data_gb, data_site=j.sites[0]) if r else j
               for j, r in zip(out, reads.tolist(), strict=True)]
    out.sort(key=lambda j: (j.submit, j.name))
    return out


_COLUMNS = ("name", "submit", "duration", "power_w", "deadline", "interruptible",
            "resources", "sites", "priority", "min_green_fraction", "nominal", "window",
            "data_gb", "data_site")
_REQUIRED = ("name", "duration", "power_w", "interruptible", "resources", "sites")


def write_trace(jobs: Sequence[TraceJob]) -> str:
    """The trace as CSV text (``read_trace`` reads it back unchanged)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_COLUMNS)
    for j in jobs:
        w.writerow([j.name, j.submit.isoformat(), format_duration(j.duration), j.power_w,
                    j.deadline.isoformat(), str(j.interruptible).lower(),
                    ";".join(f"{k}={v:g}" for k, v in j.resources.items()),
                    "|".join(j.sites), j.priority, j.min_green_fraction,
                    "" if j.nominal is None else j.nominal.isoformat(), "",
                    f"{j.data_gb:g}" if j.data_gb > 0 else "", j.data_site])
    return buf.getvalue()


def read_trace(path: Path, known_sites: Sequence[str]) -> list[TraceJob]:
    """Parse a trace CSV; every bad cell is reported as ``line N, column: problem``."""
    errors: list[FieldError] = []
    jobs: list[TraceJob] = []
    reader = csv.DictReader(io.StringIO(read_text(path)))
    have = reader.fieldnames or []
    missing = [c for c in _REQUIRED if c not in have]
    if "nominal" not in have or "window" not in have:  # submit and deadline are needed
        missing += [c for c in ("submit", "deadline") if c not in have]
    if missing:
        raise InputFileError(path, [FieldError("header", (
            f"missing columns {', '.join(sorted(missing, key=_COLUMNS.index))}; a trace's "
            f"columns are {','.join(_COLUMNS)} (the last six optional; submit and "
            "deadline may be left out with nominal and window)"))])
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            errors.append(FieldError(f"line {line}", (
                f"{len(row.get(None) or []) + sum(v is not None for v in row.values())} "
                f"cells where the header has {len(reader.fieldnames or [])}")))
            continue
        try:
            jobs.append(_row(row, known_sites))
        except (ValueError, KeyError) as exc:
            errors.append(FieldError(f"line {line}", str(exc)))
    if errors:
        raise InputFileError(path, errors)
    return sorted(jobs, key=lambda j: (j.submit, j.name))


def _row(row: dict[str, str], known_sites: Sequence[str]) -> TraceJob:
    """One trace row; every bad cell is named (a ValueError listing them all)."""
    bad: list[str] = []

    def cell(column: str, read: Any, default: Any = None) -> Any:
        try:
            return read(row.get(column) or "")
        except ValueError as exc:
            bad.append(f"{column}: {exc}")
            return default

    duration = cell("duration", lambda t: _positive(parse_duration(t.strip())))
    nominal = cell("nominal", lambda t: _time(t) if t.strip() else None)
    window = cell("window", lambda t: _window(t) if t.strip() else None)
    submit: datetime | None = None
    if window is not None or (row.get("window") or "").strip():
        if nominal is None:
            bad.append("window: needs a nominal start in the nominal column")
        if (row.get("submit") or "").strip() or (row.get("deadline") or "").strip():
            bad.append("window: give either nominal and window, or submit and deadline "
                       "(leave submit and deadline empty: the window sets them)")
        if nominal is not None and window is not None and duration is not None:
            submit = nominal - window
            row = {**row, "deadline": format_duration(2 * window)}  # after submit + duration
    else:
        submit = cell("submit", _time)
    power = cell("power_w", _watts)
    mgf = cell("min_green_fraction", lambda t: _share(t or "0"), 0.0)
    priority = cell("priority", lambda t: int(t or 0), 0)
    sites = tuple(s.strip() for s in row["sites"].split("|") if s.strip())
    unknown = [s for s in sites if s not in known_sites]
    if not sites or unknown:
        bad.append(f"sites: unknown {unknown or 'empty'}; known: {list(known_sites)}")
    resources = cell("resources", _resources, {})
    deadline = None
    if submit is not None and duration is not None:
        deadline = cell("deadline", lambda t: _deadline(t.strip(), submit, duration))
    if (nominal is not None and submit is not None and deadline is not None
            and duration is not None and not submit <= nominal <= deadline - duration):
        bad.append("nominal: must lie between submit and deadline - duration")
    data_gb = cell("data_gb", lambda t: _gigabytes(t) if t.strip() else 0.0, 0.0)
    data_site = (row.get("data_site") or "").strip()
    if (data_gb > 0) != bool(data_site):
        bad.append("data_gb, data_site: give both (the GB a job reads and the site where "
                   "they live) or neither")
    elif data_site and data_site not in known_sites:
        bad.append(f"data_site: unknown {data_site!r}; known: {list(known_sites)}")
    if bad or deadline is None or submit is None:
        raise ValueError("; ".join(bad))
    return TraceJob(
        name=row["name"].strip(), submit=submit, duration=duration, power_w=power,
        deadline=deadline, interruptible=row["interruptible"].strip().lower() in ("true", "1",
                                                                                   "yes"),
        resources=resources, sites=sites, priority=priority, min_green_fraction=mgf,
        nominal=nominal, data_gb=data_gb, data_site=data_site,
    )


def _deadline(text: str, submit: datetime, duration: timedelta) -> datetime:
    """A time, or a duration after ``submit + duration`` (a max delay)."""
    deadline = (parse_time(text) if "T" in text or "-" in text
                else submit + duration + parse_duration(text))
    if deadline < submit + duration:
        raise ValueError("earlier than submit + duration")
    return deadline


def _window(text: str) -> timedelta:
    window = parse_duration(text.strip())
    if window < timedelta(0):
        raise ValueError("must not be negative, e.g. 8h")
    return window


def _positive(duration: timedelta) -> timedelta:
    if duration <= timedelta(0):
        raise ValueError("must be longer than zero")
    return duration


def _watts(text: str) -> float:
    power = float(text)
    if not (math.isfinite(power) and power >= 0):
        raise ValueError(f"{text!r} is not a number of watts >= 0")
    return power


def _gigabytes(text: str) -> float:
    size = float(text)
    if not (math.isfinite(size) and size >= 0):
        raise ValueError(f"{text.strip()!r} is not a number of GB >= 0")
    return size


def _share(text: str) -> float:
    share = float(text)
    if not 0.0 <= share <= 1.0:
        raise ValueError("must be within [0, 1]")
    return share


def _resources(text: str) -> dict[str, float]:
    out = {}
    for pair in filter(None, (p.strip() for p in text.split(";"))):
        key, _, value = pair.partition("=")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{key.strip()}={value} is not an amount >= 0")
        out[key.strip()] = number
    return out


def _time(text: str) -> datetime:
    """An RFC 3339 time; the cell's column is named by the caller."""
    try:
        return parse_time(text)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not an RFC 3339 time, e.g. "
                         "2026-06-01T01:00:00Z") from None

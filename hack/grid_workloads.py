#!/usr/bin/env python3
"""The job traces of the grid-only scenarios in ``hack/scenarios/`` (the trace CSV of
:mod:`suandian.sim.workload`), deterministic for a seed.

- ``nightly``: one batch job a night, nominally at 00:00 UTC (01:00 in the grid's
  time zone), free to move 8 hours either way: the case of the issue where a delay
  penalty in absolute grams lost to per-job best-window on a clean grid.
- ``contended``: 40 jobs a night on one site whose capacity runs 10 of them at once,
  submitted 18:00–22:00 UTC, due by 08:00; 1–4 hours each, a third interruptible: the
  capacity, not the grid, decides who runs in the clean hours.
- ``year``: 12 jobs a day for a year on two grid-only sites (the continental and the
  nuclear grid), windows of 4–24 hours; half may run at either site.

    python hack/grid_workloads.py nightly --start 2026-03-02 --days 7 > nightly.csv
    python hack/grid_workloads.py contended --start 2026-03-02 --days 7 > contended.csv
    python hack/grid_workloads.py year --start 2026-01-01 --days 365 > year.csv
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np

HEADER = ("name,submit,duration,power_w,deadline,interruptible,resources,sites,priority,"
          "min_green_fraction,nominal,window")


def _time(t: datetime | None) -> str:
    return "" if t is None else f"{t:%Y-%m-%dT%H:%M:%SZ}"


def _row(name: str, submit: datetime | None, hours: float, kw: float,
         deadline: datetime | None, interruptible: bool, cpu: int, sites: str,
         nominal: datetime | None = None, window: str = "") -> str:
    minutes = round(hours * 60)
    return (f"{name},{_time(submit)},{minutes}m,{kw * 1000:.0f},{_time(deadline)},"
            f"{str(interruptible).lower()},cpu={cpu};memory={cpu * 4},{sites},0,0,"
            f"{_time(nominal)},{window}")


def nightly(start: datetime, days: int, rng: np.random.Generator) -> Iterator[str]:
    for d in range(days):
        nominal = start + timedelta(days=d + 1)  # 00:00 UTC of the next day
        yield _row(f"nightly-{d:03d}", None, 2.0, 500.0, None, False, 100, "grid",
                   nominal=nominal, window="8h")


def contended(start: datetime, days: int, rng: np.random.Generator) -> Iterator[str]:
    for d in range(days):
        evening = start + timedelta(days=d, hours=18)
        due = start + timedelta(days=d + 1, hours=8)
        for i in range(40):
            submit = evening + timedelta(minutes=30 * int(rng.integers(0, 9)))
            hours = 0.5 * int(rng.integers(2, 9))  # 1 to 4 hours
            kw = float(rng.uniform(100.0, 400.0))
            yield _row(f"night{d:03d}-{i:02d}", submit, hours, kw, due,
                       bool(rng.random() < 1 / 3), 1000, "grid")


def year(start: datetime, days: int, rng: np.random.Generator) -> Iterator[str]:
    for d in range(days):
        for i in range(12):
            submit = start + timedelta(days=d, minutes=30 * int(rng.integers(0, 48)))
            hours = 0.5 * int(rng.integers(1, 13))
            slack = timedelta(hours=int(rng.integers(4, 25)))
            home = "continental" if rng.random() < 0.5 else "nuclear"
            other = "nuclear" if home == "continental" else "continental"
            sites = home if rng.random() < 0.5 else f"{home}|{other}"
            yield _row(f"y{d:03d}-{i:02d}", submit, hours, float(rng.uniform(50, 600)),
                       submit + timedelta(hours=hours) + slack, bool(rng.random() < 0.3),
                       500, sites)


def main() -> None:
    kinds = {"nightly": nightly, "contended": contended, "year": year}
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=sorted(kinds))
    ap.add_argument("--start", required=True, help="first day, a UTC date (YYYY-MM-DD)")
    ap.add_argument("--days", type=int, required=True)
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args()
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    rng = np.random.default_rng(args.seed)
    sys.stdout.write(HEADER + "\n")
    rows = list(kinds[args.kind](start, args.days, rng))
    rows.sort(key=lambda r: (r.split(",")[1] or r.split(",")[10], r.split(",")[0]))
    sys.stdout.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()

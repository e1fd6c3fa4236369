#!/usr/bin/env python3
"""Decision churn: how many deferred jobs a re-plan moves when only the clock moves.

The operator re-plans every waiting job in a full round (every replan interval, each
forecast refresh). Here ``--jobs`` jobs (default 10,000) over 50 sites x 192 slots
(hack/bench_planner.py's generator, green supply scaled by ``--green`` so the sites are
contended) are planned, then the clock moves one slot at a time, ``--rounds`` times,
with nothing else changed: the jobs due start and keep drawing their power, the rest
wait. After each round the waiting jobs whose decision (site or slots) changed are
counted: each change is a status write, maybe a child Job patch and an Event, and a
different story told to the user.

Two planners in the same process on the same rounds:

- baseline: every round planned afresh, no move threshold (the planner before stable
  decisions);
- held: each waiting job's decision passed back as its incumbent, with the default move
  threshold (100 g or 5% of its emissions), as the operator does.

Printed per variant: decisions changed per round (and the share of the waiting jobs),
the sum of the plans' expected emissions, CPU and wall seconds per round; then the
ratios held / baseline, and the machine's load average before and after.

    python hack/bench_churn.py                 # 10,000 jobs, 4 rounds (about a minute)
    python hack/bench_churn.py --jobs 2000     # quicker
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_planner import SLOT, make_snapshot
from suandian.planner import Incumbent, JobDemand, PlanParams, Snapshot, plan

BASELINE = PlanParams(move_threshold_g=0.0, move_threshold_share=0.0, improvement_passes=1)
HELD = PlanParams()


@dataclass
class Figures:
    changed: list[int]
    waiting: list[int]
    emissions_t: list[float]
    cpu_s: list[float]
    wall_s: list[float]


def at(snap: Snapshot, k: int, scale: float, jobs: list[JobDemand]) -> Snapshot:
    """The snapshot ``k`` slots later: arrays cut at the new now, supply scaled."""
    sites = tuple(replace(
        s, green_p50_kw=scale * s.green_p50_kw[k:], green_p10_kw=scale * s.green_p10_kw[k:],
        carbon_g_per_kwh=s.carbon_g_per_kwh[k:], import_limit_kw=s.import_limit_kw[k:],
        capacity=s.capacity[:, k:],
        green_by_source_kw={n: scale * v[k:] for n, v in s.green_by_source_kw.items()})
        for s in snap.sites)
    return replace(snap, now=snap.now + SLOT * k, sites=sites, jobs=tuple(jobs))


def run(base: Snapshot, scale: float, rounds: int, params: PlanParams, held: bool
        ) -> Figures:
    jobs = {j.key: j for j in base.jobs}
    before: dict[str, tuple[str | None, tuple[int, ...]]] = {}
    out = Figures([], [], [], [], [])
    for k in range(rounds + 1):
        snap = at(base, k, scale, list(jobs.values()))
        cpu, wall = time.process_time(), time.perf_counter()
        result = plan(snap, params)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if k:
            waiting = [d for d in result.decisions if d.key in before
                       and jobs[d.key].running_site is None]
            out.changed.append(sum(1 for d in waiting
                                   if before[d.key] != (d.site, _absolute(d.slots, k))))
            out.waiting.append(len(waiting))
            out.emissions_t.append(sum(d.expected_emissions_g for d in result.decisions) / 1e6)
            out.cpu_s.append(cpu)
            out.wall_s.append(wall)
        before = {d.key: (d.site, _absolute(d.slots, k)) for d in result.decisions}
        jobs = _advance(jobs, result.decisions, snap, held)
    return out


def _absolute(slots: tuple[int, ...], k: int) -> tuple[int, ...]:
    return tuple(s + k for s in slots)


def _advance(jobs: dict[str, JobDemand], decisions: tuple, snap: Snapshot, held: bool
             ) -> dict[str, JobDemand]:
    """One slot on: jobs due now start (running where planned), running ones lose a slot
    (and go when done), waiting ones keep their decision as incumbent if ``held``."""
    later = snap.now + SLOT
    out = {}
    for d in decisions:
        j = jobs[d.key]
        if j.running_site is not None or (d.start_now and d.site_index is not None):
            left = j.duration - SLOT
            if left > timedelta(0):
                site = j.running_site if j.running_site is not None else d.site_index
                out[d.key] = replace(j, running_site=site, duration=left,
                                     earliest_start=later, incumbent=None)
            continue
        incumbent = (Incumbent(d.site_index, d.windows)
                     if held and d.site_index is not None else None)
        out[d.key] = replace(j, earliest_start=max(j.earliest_start, later),
                             incumbent=incumbent)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--green", type=float, default=0.02,
                        help="scale of the generator's green supply (lower: more contention)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    base = make_snapshot(args.jobs, 50, 192 + args.rounds + 8, 5000)
    print(f"{args.jobs} jobs, 50 sites x 192 slots, green x{args.green}, {args.rounds} "
          f"rounds of one slot with nothing else changed; load {load:.2f}")
    results = {}
    for name, params, held in (("baseline", BASELINE, False), ("held", HELD, True)):
        f = results[name] = run(base, args.green, args.rounds, params, held)
        shares = ", ".join(f"{c} ({c / max(w, 1):.0%})" for c, w in zip(f.changed, f.waiting,
                                                                      strict=True))
        print(f"{name:9s} changed per round: {shares}")
        print(f"{'':9s} expected emissions {sum(f.emissions_t) / len(f.emissions_t):.2f} t "
              f"per round, CPU {sum(f.cpu_s) / len(f.cpu_s):.2f} s, wall "
              f"{sum(f.wall_s) / len(f.wall_s):.2f} s per round")
    b, h = results["baseline"], results["held"]
    print(f"held / baseline: changes {sum(h.changed) / max(sum(b.changed), 1):.3f}, CPU "
          f"{sum(h.cpu_s) / sum(b.cpu_s):.2f}x, expected emissions "
          f"{sum(h.emissions_t) / max(sum(b.emissions_t), 1e-9):.3f}; load after "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

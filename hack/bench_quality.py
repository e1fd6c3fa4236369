#!/usr/bin/env python3
"""Planning quality on every built-in scenario, against the oracle and the baselines.

For each scenario and forecast error (0 and 0.15 by default) it runs every policy and
prints emissions, savings against run-now, the share of the oracle's savings (the
oracle's best schedule found) and of its proven bound (a floor on the true share),
deadline misses; then checks issue 4's targets and says PASS or MISS for each, with the
figure. The targets are judged against the oracle pooled over the forecast errors of a
scenario (the oracle's problem does not depend on the forecasts): its best schedule from
any run and its best proven bound. PASS needs the share against the bound; UNPROVEN
means only the share against the best schedule found reaches the target. Nothing is
tuned per run: the planner runs with the operator's defaults (safety margin 0 in the
simulator, where actions are instant). The oracle's search has a time limit, so its
figures depend a little on the machine's speed and load.

    python hack/bench_quality.py                       # both scenarios, errors 0 and 0.15
    python hack/bench_quality.py --seeds 1 2 3 --oracle-seconds 60
    python hack/bench_quality.py --scenarios contention --oracle-seconds 300
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator

from suandian.sim.run import SimReport, simulate
from suandian.sim.scenario import builtin_scenarios, load_scenario


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """HiGHS prints a banner on file descriptor 1; keep this script's table clean."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def row(report: SimReport, name: str) -> str:
    r = report.results[name]
    base = report.results["run-now"].emissions_g
    share, bound = report.share_of_oracle(name), report.share_of_bound(name)
    saved = (base - r.emissions_g) / 1e6
    return (f"  {name:12s} {r.emissions_g / 1e6:9.1f} t  saved {saved:8.1f} t"
            f"  green {r.green_fraction:6.1%}  misses {r.deadline_misses:2d}"
            f"  oracle {'  n/a' if share is None else f'{share:6.1%}'}"
            f"  bound {'  n/a' if bound is None else f'{bound:6.1%}'}"
            f"  delay {r.mean_delay_s / 3600:5.1f} h")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--errors", type=float, nargs="+", default=[0.0, 0.15])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--oracle-seconds", type=float, default=30.0)
    ap.add_argument("--scenarios", nargs="+", default=None,
                    help="built-in scenario names (default: all)")
    args = ap.parse_args()
    checks: list[tuple[str, bool | str, str]] = []
    for name in args.scenarios or builtin_scenarios():
        sc = load_scenario(name)
        for seed in args.seeds:
            reports: dict[float, SimReport] = {}
            for err in args.errors:
                t0 = time.perf_counter()
                with quiet_stdout():
                    report = simulate(sc, seed=seed, forecast_error=err,
                                      oracle_time_limit_s=args.oracle_seconds)
                secs = time.perf_counter() - t0
                reports[err] = report
                print(f"\n{name}, seed {seed}, forecast error {err:.0%}: "
                      f"{len(report.world.jobs)} jobs, {secs:.1f} s; oracle: "
                      f"{report.oracle_note}")
                for policy in report.results:
                    print(row(report, policy))
            # the oracle's problem is the same at every forecast error (actual supply,
            # every job known): its best schedule and its best bound from any of the runs
            # hold for all of them
            found = [r.results["oracle"].emissions_g for r in reports.values()
                     if "oracle" in r.results]
            bounds = [r.oracle_bound_g for r in reports.values() if r.oracle_bound_g is not None]
            best = min(found) if found else None
            bound_g = max(bounds) if bounds else None
            if best is not None and bound_g is not None:
                print(f"\n{name}, seed {seed}: pooled oracle over the runs: best schedule "
                      f"{best / 1e6:.1f} t, best proven bound {bound_g / 1e6:.1f} t "
                      f"(the true optimum lies between)")
            for err, report in reports.items():
                base_g = report.results["run-now"].emissions_g
                mine_g = report.results["suandian"].emissions_g
                share = None if best is None else (base_g - mine_g) / (base_g - best)
                bound = None if bound_g is None else (base_g - mine_g) / (base_g - bound_g)
                want = 0.95 if err == 0 else 0.85 if err <= 0.15 else None
                tag = f"{name} seed {seed} error {err:.0%}"
                if want is not None:
                    # PASS only on the proven bound (a floor on the true share); UNPROVEN
                    # when only the oracle's best schedule found says so
                    status = ("PASS" if bound is not None and bound >= want else "UNPROVEN"
                              if share is not None and share >= want else "MISS")
                    checks.append((f"{tag}: suandian >= {want:.0%} of oracle savings",
                                   status,
                                   f"{share:.1%} of best found, {bound:.1%} of proven bound"
                                   if share is not None and bound is not None else "n/a"))
                for policy in ("run-now", "best-window", "suandian", "oracle"):
                    if policy in report.results:
                        misses = report.results[policy].deadline_misses
                        checks.append((f"{tag}: {policy} misses no deadline", misses == 0,
                                       f"{misses} misses"))
                if name == "contention":
                    mine = base_g - mine_g
                    theirs = base_g - report.results["best-window"].emissions_g
                    checks.append((f"{tag}: suandian saves >= 1.2x best-window",
                                   mine >= 1.2 * theirs,
                                   f"{mine / theirs:.2f}x" if theirs > 0 else "none saved"))
    print("\ntargets (issue 4):")
    for text, ok, figure in checks:
        status = ok if isinstance(ok, str) else "PASS" if ok else "MISS"
        print(f"  {status:8s}  {text}: {figure}")


if __name__ == "__main__":
    main()

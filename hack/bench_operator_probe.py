#!/usr/bin/env python
"""hack/bench_operator.py with the planning service watched: where a burst's time goes.

The benchmark's latency runs from a ComputeJob's creation to a status with its decision
stored in the API server. This runs the same benchmark (same arguments) and records, in
the operator's process:

- the **planning part** of each job's latency: from its first demand (``upsert``) to its
  first decision told to its listener;
- each arrival round (start, length, size) and whether a full round was computing
  meanwhile (arrivals must not wait for one), and each full round's start and length;
- every half second, the CPU time of the operator and of each of its child processes
  (the API server it serves from, the planner process), from ``/proc``.

At the end it prints, for the last two bursts of demands (in a whole run: the plain burst
and the one with a full re-plan), the planning part's p50/p99, the arrival rounds, and
the CPU each process took during the burst; ``BENCH_PROBE_OUT`` names a file for the raw
records (JSON), and ``BENCH_PROBE_FAST=1`` leaves out the benchmark's 2-hour delay of one
site (the moves it causes take minutes at their bounded rate; the other phases stay).

    python hack/bench_operator_probe.py --json
    PYTHONPATH=/tmp/old/operator:/tmp/old python /tmp/old/hack/bench_operator_probe.py
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

T0 = time.perf_counter()
Record = dict[str, Any]


def now() -> float:
    return time.perf_counter() - T0


def instrument(rec: Record) -> None:
    """Wrap the planning service's methods to record into ``rec``."""
    from suandian.controllers import planning as module

    service = module.PlanningService
    upsert, arrivals, spawn = service.upsert, service._arrivals, service._spawn

    def on_upsert(self: Any, demand: Any, on_change: Callable[[Any], None] | None = None
                  ) -> None:
        key = demand.key
        rec["upsert"].setdefault(key, now())
        if on_change is not None:
            inner = on_change

            def told(decision: Any) -> None:
                rec["told"].setdefault(key, now())
                inner(decision)

            on_change = told
        upsert(self, demand, on_change)

    async def on_arrivals(self: Any) -> Any:
        started, size, busy = now(), len(self._fresh) + len(self._recheck), self.computing
        result = await arrivals(self)
        rec["arrivals"].append((started, now() - started, size, busy))
        return result

    def on_spawn(self: Any, inputs: Any) -> Any:
        future = spawn(self, inputs)
        if inputs.full:
            started = now()
            future.add_done_callback(
                lambda _: rec["full"].append((started, now() - started)))
        return future

    service.upsert = on_upsert  # type: ignore[method-assign]
    service._arrivals = on_arrivals  # type: ignore[method-assign]
    service._spawn = on_spawn  # type: ignore[method-assign]


def sample_cpu(rec: Record, period: float = 0.5) -> None:
    """Every ``period``: CPU seconds of this process and of its children, by pid."""
    me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")

    def read() -> dict[str, float]:
        out = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue  # gone meanwhile
            fields = stat[stat.rfind(")") + 2:].split()
            if int(pid) == me or int(fields[1]) == me:
                out[pid] = (int(fields[11]) + int(fields[12])) / tick
        return out

    def run() -> None:
        while True:
            time.sleep(period)
            rec["cpu"].append((now(), read()))

    threading.Thread(target=run, name="cpu-sampler", daemon=True).start()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def bursts(rec: Record, least: int = 50) -> list[tuple[float, float]]:
    """Spans of at least ``least`` first demands with gaps under a second."""
    times = sorted(rec["upsert"].values())
    spans, i = [], 0
    while i < len(times):
        j = i
        while j + 1 < len(times) and times[j + 1] - times[j] < 1.0:
            j += 1
        if j - i + 1 >= least:
            spans.append((times[i], times[j]))
        i = j + 1
    return spans


def summary(rec: Record) -> list[str]:
    """What the module docstring says is printed, a line each."""
    lines = []
    first: dict[str, float] = {}
    for t, cpu in rec["cpu"]:
        for pid in cpu:
            first.setdefault(pid, t)
    me = str(os.getpid())
    for a, b in bursts(rec)[-2:]:
        keys = [k for k, t in rec["upsert"].items() if a <= t <= b]
        part = [rec["told"][k] - rec["upsert"][k] for k in keys if k in rec["told"]]
        rounds = [r for r in rec["arrivals"] if a <= r[0] <= b]
        lines.append(
            f"burst at {a:.0f} s: {len(keys)} demands over {b - a:.1f} s; planning part p50 "
            f"{pct(part, 0.5) * 1e3:.0f} ms, p99 {pct(part, 0.99) * 1e3:.0f} ms; "
            f"{len(rounds)} arrival rounds ({sum(1 for r in rounds if r[3])} while a full "
            f"round computed), longest {max((r[1] for r in rounds), default=0) * 1e3:.0f} ms")
        for start, length in rec["full"]:
            if start <= b and start + length >= a:
                lines.append(f"  full round from {start - a:+.1f} s for {length:.1f} s")
        inside = [(t, cpu) for t, cpu in rec["cpu"] if a <= t <= b]
        if len(inside) >= 2:
            (t1, c1), (t2, c2) = inside[0], inside[-1]
            taken = ", ".join(
                f"{'operator' if pid == me else 'child ' + pid} {c2[pid] - c1[pid]:.2f} s"
                for pid in sorted(set(c1) & set(c2), key=lambda p: first[p]))
            lines.append(f"  CPU in {t2 - t1:.1f} s of it: {taken}")
    return lines


def main() -> None:
    rec: Record = {"upsert": {}, "told": {}, "arrivals": [], "full": [], "cpu": []}
    instrument(rec)
    sample_cpu(rec)
    import hack.bench_operator as bench

    if os.environ.get("BENCH_PROBE_FAST"):
        def no_delay(ctx: Any, hours: float) -> str:
            ctx.planning.replan()  # a full round, as the delay's refresh asks for
            return "(none: BENCH_PROBE_FAST)"

        bench.delay_green = no_delay  # type: ignore[assignment]
    sys.argv[0] = str(ROOT / "hack" / "bench_operator.py")
    try:
        bench.main()
    finally:
        for line in summary(rec):
            print(line, file=sys.stderr)
        out = os.environ.get("BENCH_PROBE_OUT")
        if out:
            Path(out).write_text(json.dumps(rec))


if __name__ == "__main__":
    main()

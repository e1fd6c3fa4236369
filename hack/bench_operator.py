#!/usr/bin/env python
"""Benchmark the operator against an API server: decision latency and memory.

Two processes, so that the operator's memory is its own: a child serves the API
(tests/support's emulator over HTTP on 127.0.0.1, or with ``--control-plane`` a real
etcd, kube-apiserver, controller manager and scheduler from ``KUBEBUILDER_ASSETS``, the
operator then using the chart's ServiceAccount) and creates the objects; this process
runs the real operator (kopf + the kubernetes client) against it, in real time (see
``hack/bench_servers.py``).

1. Latency: ``--jobs`` ComputeJobs (default 1,000) created at ``--rate`` per second
   (default 200), once the operator is idle (see 2); latency = creation (the API server
   stores it) to decision (the API server stores a status with ``plannedStart``),
   p50/p99/max.
2. Memory: ``--idle-jobs`` deferred ComputeJobs (default 10,000) and ``--nodes`` Nodes
   (default 5,000) already exist when the operator starts; peak RSS once every job has
   its decision (each deferred job keeps a record in the operator and a suspended child
   Job in the API). ``--memory-profile`` shows where the live memory is.

The operator runs as ``suandian run`` does (its heap policy included); the emulator,
standing in for a Go API server, moves its stored objects out of its collector's way.

3. Full re-plans, once the burst is decided: a **no-change** full round (only the clock
   moved: the writes it causes are counted, target 0), a **forecast refresh** of every
   site moving green supply by +10% (writes and changed decisions counted), and a
   second burst of ``--jobs`` at ``--rate`` with such a refresh (back by -10%) starting
   1 s into it: the decision latency while a full round of every waiting job computes
   (``replan_p99_ms``, target < 250 ms).
4. The event loop's stalls throughout: a task that sleeps 5 ms and records how late it
   wakes; the longest stall of each phase is printed (target < 50 ms during a full
   round of 10,000 jobs).

Baseline, in the same run: a bare kopf operator whose only handler writes a status on
creation, against the same server at the same rate: the ratio says what planning and
placing cost over kopf itself. Targets: p99 < 250 ms, peak memory < 250 MB.

    python hack/bench_operator.py                      # the full run (a few minutes)
    python hack/bench_operator.py --jobs 200 --idle-jobs 1000 --nodes 500   # quick
    KUBEBUILDER_ASSETS=$(../shared/kube/unpack.sh) \
        python hack/bench_operator.py --control-plane --idle-jobs 2000 --nodes 1000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hack.bench_memory import KubernetesAbsent  # noqa: E402
from hack.bench_servers import GREEN_KW, SITES, serve_control_plane, serve_emulator  # noqa: E402


def rss_mb() -> float:
    """Peak resident memory of this process so far, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_now_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (this one by default) now, MB (Linux); 0 when it is
    gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return 0.0


class RssSampler:
    """The resident memory of the operator and of its planner process, sampled together
    every 50 ms in a thread (it samples through loop stalls): the pod's memory is their
    sum at one moment, which the sum of the two peaks only bounds from above."""

    PERIOD = 0.05

    def __init__(self, ctx: Any) -> None:
        import threading

        self.ctx = ctx
        self.samples: list[tuple[float, float, float]] = []  # (when, operator, planner)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.PERIOD):
            planner = getattr(self.ctx.planning, "_planner", None)
            process = getattr(planner, "_process", None)
            child = rss_now_mb(process.pid) if process is not None else 0.0
            self.samples.append((time.perf_counter(), rss_now_mb(), child))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self, since: float = 0.0, until: float = math.inf) -> tuple[float, float, float]:
        """The highest operator, planner process and summed RSS sampled in the span."""
        span = [(o, c) for t, o, c in self.samples if since <= t <= until] or [(0.0, 0.0)]
        return (round(max(o for o, _ in span), 1), round(max(c for _, c in span), 1),
                round(max(o + c for o, c in span), 1))


# -- the operator side ---------------------------------------------------------------------

async def run_suandian(server: dict[str, str], conn: Any, args: argparse.Namespace
                       ) -> dict[str, Any]:
    from tests.support.forecasts import ScriptedProvider, keeper_factory
    from tests.support.operator import start_operator

    from suandian.config import Settings
    from suandian.controllers.clock import WallClock
    from suandian.controllers.heap import HeapPolicy

    green_at = datetime.now(UTC) + timedelta(hours=24)  # every idle job waits for it
    providers = {s: ScriptedProvider(lambda t: GREEN_KW if t >= green_at else 0.0)
                 for s in SITES}
    settings = Settings(plan_batch_window=args.batch_window, api_workers=args.api_workers)
    before = rss_mb()
    t0 = time.perf_counter()
    handle = await start_operator(_Server(server["url"]), WallClock(),  # type: ignore[arg-type]
                                  keeper_factory(providers), settings=settings,
                                  heap=HeapPolicy(),  # as suandian run
                                  token=server.get("token"), ca_file=server.get("ca_file"))
    loop = asyncio.get_running_loop()
    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run())
    sampler = RssSampler(handle.parts.context)
    print(f"operator ready after {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    conn.send(("wait-decided", "idle-", args.idle_jobs, args.timeout))
    decided, deferred = await loop.run_in_executor(None, conn.recv)
    settle = time.perf_counter() - t0
    t_idle = time.perf_counter()
    peak_idle, now_idle = rss_mb(), rss_now_mb()
    planner_idle = sampler.samples[-1][2] if sampler.samples else 0.0
    print(f"RSS with the idle jobs decided: {now_idle:.0f} MB now, {peak_idle:.0f} MB peak",
          file=sys.stderr, flush=True)
    if args.memory_profile:
        import tracemalloc

        snapshot = tracemalloc.take_snapshot()
        total = sum(s.size for s in snapshot.statistics("filename"))
        print(f"live allocations (tracemalloc): {total / 2**20:.1f} MB; largest by file, "
              "then by line:", file=sys.stderr)
        for stat in snapshot.statistics("filename")[:15]:
            print(f"  {stat.size / 2**20:8.1f} MB {stat.count:9d} blocks  "
                  f"{stat.traceback[0].filename}", file=sys.stderr)
        for stat in snapshot.statistics("lineno")[:20]:
            print(f"  {stat.size / 2**20:8.1f} MB {stat.count:9d} blocks  "
                  f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}", file=sys.stderr)
        from tests.support.memory import deep_size

        ctx = handle.parts.context
        planning = ctx.planning
        seen: set[int] = set()
        for what, obj in (("job records", ctx.book), ("child Jobs", ctx.cluster.child_jobs),
                          ("nodes", ctx.cluster.nodes), ("demands", planning._demands),
                          ("decisions", planning._decisions),
                          ("commitments", planning._commitments),
                          ("scheduler", ctx.scheduler)):
            print(f"  {deep_size(obj, seen) / 2**20:8.1f} MB in {what}", file=sys.stderr)
    quiet = await quiesce(args.timeout)
    print(f"operator quiet {quiet:.1f} s after the last decision", file=sys.stderr, flush=True)
    cpu0, wall0 = cpu_s(), time.perf_counter()
    conn.send(("burst", "job-", args.jobs, args.rate))
    latencies = await loop.run_in_executor(None, conn.recv)
    burst_cpu, burst_wall = cpu_s() - cpu0, time.perf_counter() - wall0
    burst_stall = lag.max_ms(wall0)
    out = {"decided_idle": decided, "deferred_idle": deferred, "settle_s": settle,
           "latencies": latencies, "burst_cpu_s": burst_cpu, "burst_wall_s": burst_wall,
           "rss_before_mb": before, "rss_after_idle_mb": peak_idle,
           "planner_rss_idle_mb": planner_idle,
           "burst_stall_ms": burst_stall, "settle_stall_ms": lag.max_ms(0.0, wall0),
           "burst_gc_ms": lag.gc_ms(wall0)}
    if not args.skip_replans:
        out.update(await replans(handle.parts.context, conn, args, lag))
    out["rss_peak_mb"] = rss_mb()
    out["planner_process_peak_rss_mb"] = planner_rss_mb(handle.parts.context)
    sampler.stop()
    idle = sampler.peaks(until=t_idle)
    out["sampled_peaks_idle_mb"] = idle
    out["sampled_peaks_mb"] = sampler.peaks()
    out["sampled_peaks_after_idle_mb"] = sampler.peaks(since=t_idle)
    lag_task.cancel()
    await handle.stop()
    return out


async def changes(name: str, planning: Any, conn: Any, args: argparse.Namespace,
                  before: dict[str, Any], writes: dict[str, int]) -> dict[str, Any]:
    """Once the operator is quiet: the decisions changed since ``before`` and the writes
    since ``writes``, as ``<name>_changed_decisions``, ``_written`` and ``_writes``."""
    await quiesce(args.timeout)
    after = decisions_of(planning)
    done = written(writes, await ask(conn, "writes"))
    return {f"{name}_changed_decisions": sum(1 for k, v in after.items()
                                             if k in before and before[k] != v),
            f"{name}_written": done, f"{name}_writes": sum(done.values())}


async def replans(ctx: Any, conn: Any, args: argparse.Namespace, lag: LoopLag
                  ) -> dict[str, Any]:
    """Phase 3 (see the module docstring): full re-plans with and without a burst."""
    planning, rounds, out = ctx.planning, FullRounds(ctx.planning), {}
    await quiesce(args.timeout)
    # a full round with only the clock moved
    w0, t0, c0 = await ask(conn, "writes"), time.perf_counter(), cpu_s()
    planning.replan()
    out["full_replan_s"] = round(await rounds.next(args.timeout), 2)
    out["full_replan_cpu_s"] = round(cpu_s() - c0, 2)
    out["full_replan_stall_ms"] = lag.max_ms(t0)
    out["full_replan_gc_ms"] = lag.gc_ms(t0)
    await quiesce(args.timeout)
    out["no_change_replan_written"] = written(w0, await ask(conn, "writes"))
    out["no_change_replan_writes"] = sum(out["no_change_replan_written"].values())
    print(f"no-change full re-plan: {out['full_replan_s']} s, writes "
          f"{out['no_change_replan_written'] or 0}", file=sys.stderr, flush=True)
    # a forecast refresh moving every site's green supply by +10%
    before, w0, t0 = decisions_of(planning), await ask(conn, "writes"), time.perf_counter()
    scale_green(ctx, 1.1)
    out["refresh_replan_s"] = round(await rounds.next(args.timeout), 2)
    out["refresh_stall_ms"] = lag.max_ms(t0)
    out.update(await changes("refresh", planning, conn, args, before, w0))
    print(f"forecast refresh (+10% green): {out['refresh_changed_decisions']} decisions "
          f"changed, writes {out['refresh_written'] or 0}", file=sys.stderr, flush=True)
    # a forecast refresh that delays one site's green by two hours: decisions change
    before, w0 = decisions_of(planning), await ask(conn, "writes")
    out["delayed_site"] = delay_green(ctx, 2.0)
    out["delay_replan_s"] = round(await rounds.next(args.timeout), 2)
    t0 = time.perf_counter()  # moves are carried out at a bounded rate: until they are
    while ctx.scheduler.later_backlog and time.perf_counter() - t0 < args.timeout:
        await asyncio.sleep(0.5)
    out["delay_moves_s"] = round(time.perf_counter() - t0, 1)
    out.update(await changes("delay", planning, conn, args, before, w0))
    print(f"forecast refresh (green 2 h later at {out['delayed_site']}): "
          f"{out['delay_changed_decisions']} decisions changed, writes "
          f"{out['delay_written'] or 0}", file=sys.stderr, flush=True)
    # a burst with a forecast refresh (back by -10%) starting 1 s into it
    t0, c0, counted = time.perf_counter(), cpu_s(), rounds.count
    asyncio.get_running_loop().call_later(1.0, scale_green, ctx, 1 / 1.1)
    out["replan_latencies"] = await ask(conn, "burst", "replan-", args.jobs, args.rate)
    out["replan_burst_stall_ms"] = lag.max_ms(t0)
    out["replan_burst_gc_ms"] = lag.gc_ms(t0)
    out["replan_burst_cpu_s"] = round(cpu_s() - c0, 2)
    out["replan_burst_full_rounds"] = rounds.count - counted
    return out


class LoopLag:
    """How late the event loop wakes a task sleeping 5 ms: its stalls, as they happen."""

    TICK = 0.005

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (when it slept, seconds late)
        self.collections: list[tuple[float, int, float]] = []  # (when, generation, s)
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """Full collections stop the loop too: their share of the stalls, printed."""
        if phase == "start":
            self._started = time.perf_counter()
        elif info.get("generation") == 2:
            self.collections.append((self._started, 2, time.perf_counter() - self._started))

    def gc_ms(self, since: float, until: float | None = None) -> float:
        end = until if until is not None else math.inf
        return round(max((d for t, _, d in self.collections if since <= t <= end),
                         default=0.0) * 1e3, 1)

    async def run(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(self.TICK)
            self.samples.append((t, time.perf_counter() - t - self.TICK))

    def max_ms(self, since: float, until: float | None = None) -> float:
        end = until if until is not None else math.inf
        lags = [lag for t, lag in self.samples if since <= t <= end]
        return round(max(lags, default=0.0) * 1e3, 1)


async def ask(conn: Any, *command: Any) -> Any:
    """A command to the server process, answered off the event loop."""
    conn.send(command)
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


def written(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(after)
            if after.get(k, 0) != before.get(k, 0)}


def scale_green(ctx: Any, factor: float) -> None:
    """A forecast refresh of every site whose green supply moved by ``factor``."""
    from dataclasses import replace

    from suandian.controllers.planning import SiteEntry

    for name, entry in list(ctx.sites.items()):
        f = entry.forecast
        ctx.sites[name] = SiteEntry(entry.site, replace(
            f, green_kw={k: v * factor for k, v in f.green_kw.items()},
            green_total_kw=f.green_total_kw * factor, green_p10_kw=f.green_p10_kw * factor,
            green_p90_kw=f.green_p90_kw * factor))
    ctx.planning.replan()


def delay_green(ctx: Any, hours: float) -> str:
    """A forecast refresh of the first site (by name) whose green supply comes ``hours``
    later than forecast before: the jobs waiting for it there must move. Returns it."""
    from dataclasses import replace

    import numpy as np

    from suandian.controllers.planning import SiteEntry

    name = sorted(ctx.sites)[0]
    entry = ctx.sites[name]
    f = entry.forecast
    first = int(np.argmax(f.green_total_kw > 0))
    cut = slice(first, first + int(hours * 3600 // f.grid.slot.total_seconds()))

    def later(values: Any) -> Any:
        out = np.array(values, dtype=float)
        out[cut] = 0.0
        return out

    ctx.sites[name] = SiteEntry(entry.site, replace(
        f, green_kw={k: later(v) for k, v in f.green_kw.items()},
        green_total_kw=later(f.green_total_kw), green_p10_kw=later(f.green_p10_kw),
        green_p90_kw=later(f.green_p90_kw)))
    ctx.planning.replan()
    return name


class FullRounds:
    """Counts the full rounds handed out (wraps the planning service's hook)."""

    def __init__(self, planning: Any) -> None:
        self.count = 0
        self.ended = asyncio.Event()
        inner = planning.after_full_round

        def hook() -> None:
            self.count += 1
            self.ended.set()
            if inner is not None:
                inner()

        planning.after_full_round = hook

    async def next(self, timeout: float) -> float:
        """Seconds until the next full round is handed out."""
        t0, start = time.perf_counter(), self.count
        while self.count == start:
            self.ended.clear()
            await asyncio.wait_for(self.ended.wait(), timeout)
        return time.perf_counter() - t0


def decisions_of(planning: Any) -> dict[str, tuple[Any, ...]]:
    return {k: (d.site, d.windows) for k, d in planning._decisions.items()}


def planner_rss_mb(ctx: Any) -> float | None:
    """Peak resident memory of the planner process (SUANDIAN_FULL_ROUNDS=process), MB."""
    planner = getattr(ctx.planning, "_planner", None)
    if planner is None or planner._process is None:
        return None
    try:
        with open(f"/proc/{planner._process.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        return None
    return None


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def quiesce(timeout: float, window: float = 1.0, busy: float = 0.15) -> float:
    """Wait until this process (the operator) uses under ``busy`` of a core for a whole
    ``window``: the burst then measures decisions, not a backlog of start-up events."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        before = cpu_s()
        await asyncio.sleep(window)
        if cpu_s() - before < busy * window:
            break
    return time.perf_counter() - t0


async def run_baseline(server: dict[str, str], conn: Any, args: argparse.Namespace
                       ) -> list[float]:
    """A bare kopf operator: on creation, write a status (no planning, no child Job)."""
    import kopf

    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        if "token" not in server:
            return kopf.ConnectionInfo(server=server["url"], insecure=True)
        return kopf.ConnectionInfo(server=server["url"], scheme="Bearer",
                                   token=server["token"], ca_path=server["ca_file"])

    @kopf.on.create("suandian.io", "v1alpha1", "computejobs", registry=registry)
    async def created(patch: kopf.Patch, **_: Any) -> None:
        patch.status["plannedStart"] = "2026-06-21T00:00:00Z"

    settings = kopf.OperatorSettings()
    settings.watching.inactivity_timeout = 3600
    settings.posting.enabled = False
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(kopf.operator(registry=registry, settings=settings,
                                             clusterwide=True, standalone=True,
                                             stop_flag=stop, ready_flag=ready))
    await ready.wait()
    loop = asyncio.get_running_loop()
    cpu0 = cpu_s()
    conn.send(("burst", "base-", args.jobs, args.rate))
    latencies: list[float] = await loop.run_in_executor(None, conn.recv)
    print(f"baseline burst: {cpu_s() - cpu0:.1f} s CPU", file=sys.stderr, flush=True)
    stop.set()
    await task
    return latencies


class _Server:
    """What start_operator needs of the API server when it lives in another process."""

    def __init__(self, url: str) -> None:
        self.url = url


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0 if ordered else float(
        "nan")


def by_second(latencies: list[float], rate: float) -> list[float]:
    """p99 of the jobs created in each second of a burst (latencies in creation order)."""
    per = max(1, int(rate))
    return [round(pct(latencies[i:i + per], 0.99), 1) for i in range(0, len(latencies), per)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--idle-jobs", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--batch-window", type=float, default=0.05)
    parser.add_argument("--api-workers", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for the deferred jobs to be decided")
    parser.add_argument("--control-plane", action="store_true",
                        help="against a real control plane from KUBEBUILDER_ASSETS (etcd, "
                             "kube-apiserver, controller manager, scheduler), the operator "
                             "as the chart's ServiceAccount, instead of the emulator")
    parser.add_argument("--skip-replans", action="store_true",
                        help="only the burst and the memory (not phase 3's full re-plans)")
    parser.add_argument("--with-kubernetes", action="store_true",
                        help="let kopf import the kubernetes package if it is installed "
                             "(the image has none; by default it is hidden, as there)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--debug", action="store_true", help="log planning rounds to stderr")
    parser.add_argument("--profile", action="store_true", help="profile the operator (stderr)")
    parser.add_argument("--memory-profile", action="store_true",
                        help="print where the operator's live memory is, once the idle jobs "
                             "are decided (tracemalloc: slow, and RSS figures include it)")
    args = parser.parse_args()
    if not args.with_kubernetes:
        sys.meta_path.insert(0, KubernetesAbsent())  # as in the image
    if args.debug:
        import logging

        logging.basicConfig(level=logging.WARNING,
                            format="%(relativeCreated)8.0f ms %(name)s: %(message)s")
        logging.getLogger("suandian").setLevel(logging.DEBUG)

    serve = serve_control_plane if args.control_plane else serve_emulator
    load_before = os.getloadavg()
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    server = ctx.Process(target=serve, args=(theirs, args.nodes, args.idle_jobs), daemon=True)
    server.start()
    info = ours.recv()
    print(f"API server up at {info['url']}; starting the operator", file=sys.stderr,
          flush=True)
    if args.memory_profile:
        import tracemalloc

        tracemalloc.start()
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(asyncio.run, run_suandian(info, ours, args))
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        profiler.dump_stats("bench_operator.prof")
        print("profile saved to bench_operator.prof (python -m pstats)", file=sys.stderr)
    else:
        result = asyncio.run(run_suandian(info, ours, args))
    print("operator run done; baseline next", file=sys.stderr, flush=True)
    base_server_conn, base_theirs = ctx.Pipe()
    ours.send(("stop",))
    ours.recv()
    base = ctx.Process(target=serve, args=(base_theirs, 0, 0), daemon=True)
    base.start()
    base_info = base_server_conn.recv()
    baseline = asyncio.run(run_baseline(base_info, base_server_conn, args))
    base_server_conn.send(("stop",))
    base_server_conn.recv()
    load_after = os.getloadavg()

    lat = result["latencies"]
    figures = {
        "jobs": args.jobs, "rate_per_s": args.rate, "decided": len(lat),
        "p50_ms": round(pct(lat, 0.50), 1), "p99_ms": round(pct(lat, 0.99), 1),
        "max_ms": round(max(lat) * 1000.0, 1) if lat else None,
        "mean_ms": round(statistics.fmean(lat) * 1000.0, 1) if lat else None,
        "baseline_p50_ms": round(pct(baseline, 0.50), 1),
        "baseline_p99_ms": round(pct(baseline, 0.99), 1),
        "p99_ratio_vs_bare_kopf": round(pct(lat, 0.99) / max(pct(baseline, 0.99), 1e-9), 2),
        "idle_jobs": args.idle_jobs, "idle_jobs_decided": result["decided_idle"],
        "idle_jobs_deferred": result["deferred_idle"],
        "nodes": args.nodes, "settle_s": round(result["settle_s"], 1),
        "rss_before_operator_mb": round(result["rss_before_mb"], 1),
        "rss_with_idle_jobs_mb": round(result["rss_after_idle_mb"], 1),
        "rss_peak_mb": round(result["rss_peak_mb"], 1),
        "burst_cpu_s": round(result["burst_cpu_s"], 2),
        "burst_wall_s": round(result["burst_wall_s"], 2),
        "peak_rss_mb": round(result["rss_peak_mb"], 1),
        "planner_process_peak_rss_mb": result["planner_process_peak_rss_mb"],
        "pod_peak_rss_mb": round(result["rss_peak_mb"] + (
            result["planner_process_peak_rss_mb"] or 0.0), 1),
        # sampled together every 50 ms: (operator, planner process, their sum at one moment)
        "sampled_peak_rss_mb": dict(zip(("operator", "planner_process", "pod"),
                                        result["sampled_peaks_mb"], strict=True)),
        "sampled_peak_rss_idle_mb": dict(zip(("operator", "planner_process", "pod"),
                                             result["sampled_peaks_idle_mb"], strict=True)),
        "sampled_peak_rss_after_idle_mb": dict(zip(
            ("operator", "planner_process", "pod"), result["sampled_peaks_after_idle_mb"],
            strict=True)),
        "planner_process_rss_idle_mb": round(result["planner_rss_idle_mb"], 1),
        "cpu_s": round(cpu_s(), 1),
        "mb_per_1000_jobs": round((result["rss_after_idle_mb"] - result["rss_before_mb"])
                                  / max(args.idle_jobs / 1000, 1e-9), 1),
        "burst_stall_ms": result["burst_stall_ms"],
        "settle_stall_ms": result["settle_stall_ms"],
        "burst_gc_ms": result["burst_gc_ms"],
        "server": "control plane" if args.control_plane else "emulator",
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
    }
    if not args.skip_replans:
        rl = result["replan_latencies"]
        figures.update({k: result[k] for k in (
            "full_replan_s", "full_replan_cpu_s", "full_replan_stall_ms", "full_replan_gc_ms",
            "replan_burst_gc_ms",
            "no_change_replan_writes", "no_change_replan_written", "refresh_replan_s",
            "refresh_stall_ms", "refresh_changed_decisions", "refresh_writes",
            "refresh_written", "delayed_site", "delay_replan_s", "delay_moves_s",
            "delay_changed_decisions",
            "delay_writes", "delay_written", "replan_burst_stall_ms", "replan_burst_cpu_s",
            "replan_burst_full_rounds")})
        figures.update({
            "replan_decided": len(rl), "replan_p50_ms": round(pct(rl, 0.50), 1),
            "replan_p99_ms": round(pct(rl, 0.99), 1),
            "replan_max_ms": round(max(rl) * 1000.0, 1) if rl else None,
            "replan_p99_ratio_vs_bare_kopf": round(
                pct(rl, 0.99) / max(pct(baseline, 0.99), 1e-9), 2)})
    if not args.skip_replans:
        figures["replan_p99_by_second_ms"] = by_second(result["replan_latencies"], args.rate)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"decision latency, {args.jobs} ComputeJobs at {args.rate:g}/s "
          f"({len(lat)} decided): p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, "
          f"max {figures['max_ms']} ms  (target p99 < 250 ms)")
    print(f"baseline (bare kopf, status on create): p50 {figures['baseline_p50_ms']} ms, "
          f"p99 {figures['baseline_p99_ms']} ms; ratio p99 {figures['p99_ratio_vs_bare_kopf']}x")
    print(f"operator CPU during the burst: {figures['burst_cpu_s']} s over "
          f"{figures['burst_wall_s']} s wall; API server: {figures['server']}; load average "
          f"{' '.join(map(str, figures['load_before']))} before, "
          f"{' '.join(map(str, figures['load_after']))} after ({os.cpu_count()} CPUs)")
    print(f"event loop: longest stall {figures['settle_stall_ms']} ms while the idle jobs "
          f"were decided, {figures['burst_stall_ms']} ms in the burst (longest full garbage "
          f"collection there {figures['burst_gc_ms']} ms)")
    if not args.skip_replans:
        print(f"no-change full re-plan of {args.idle_jobs + args.jobs} jobs: "
              f"{figures['full_replan_s']} s ({figures['full_replan_cpu_s']} s CPU; target "
              f"< 2 s), {figures['no_change_replan_writes']} writes (target 0), longest "
              f"loop stall {figures['full_replan_stall_ms']} ms (target < 50 ms; longest full "
              f"garbage collection {figures['full_replan_gc_ms']} ms)")
        print(f"forecast refresh, green +10%: {figures['refresh_changed_decisions']} "
              f"decisions changed, {figures['refresh_writes']} writes "
              f"{figures['refresh_written']}, in {figures['refresh_replan_s']} s")
        changed = max(figures["delay_changed_decisions"], 1)
        print(f"forecast refresh, green 2 h later at {figures['delayed_site']}: "
              f"{figures['delay_changed_decisions']} decisions changed, "
              f"{figures['delay_writes']} writes {figures['delay_written']} "
              f"({figures['delay_writes'] / changed:.2f} per changed decision), planned in "
              f"{figures['delay_replan_s']} s, carried out in {figures['delay_moves_s']} s")
        print(f"burst with a full re-plan 1 s in ({figures['replan_decided']} decided, "
              f"{figures['replan_burst_full_rounds']} full rounds): p50 "
              f"{figures['replan_p50_ms']} ms, p99 {figures['replan_p99_ms']} ms, max "
              f"{figures['replan_max_ms']} ms (target p99 < 250 ms; "
              f"{figures['replan_p99_ratio_vs_bare_kopf']}x bare kopf's p99); longest loop "
              f"stall {figures['replan_burst_stall_ms']} ms (full garbage collection "
              f"{figures['replan_burst_gc_ms']} ms)")
    if not args.skip_replans:
        print("  p99 by second of the burst (the re-plan starts 1 s in): "
              + ", ".join(f"{v:.0f}" for v in figures["replan_p99_by_second_ms"]) + " ms")
    print(f"memory: {args.idle_jobs} ComputeJobs ({result['decided_idle']} decided, "
          f"{result['deferred_idle']} of them deferred, in "
          f"{figures['settle_s']} s) and {args.nodes} Nodes indexed: peak RSS "
          f"{figures['rss_peak_mb']} MB (process before the operator: "
          f"{figures['rss_before_operator_mb']} MB; target < 250 MB); "
          f"{figures['mb_per_1000_jobs']} MB per 1,000 jobs (the operator's fixed part "
          f"included); the planner process beside it: peak "
          f"{figures['planner_process_peak_rss_mb']} MB; the pod, both peaks added: "
          f"{figures['pod_peak_rss_mb']} MB")
    sampled, idle = figures["sampled_peak_rss_mb"], figures["sampled_peak_rss_idle_mb"]
    print(f"  sampled together every 50 ms: operator {sampled['operator']}, planner process "
          f"{sampled['planner_process']}, their sum at one moment {sampled['pod']} MB "
          f"(until the idle jobs were decided: {idle['operator']}, "
          f"{idle['planner_process']}, {idle['pod']} MB); the planner process held "
          f"{figures['planner_process_rss_idle_mb']} MB between rounds then; operator CPU "
          f"{figures['cpu_s']} s in all")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""What the operator keeps per ComputeJob (and per Node), in bytes, against keeping what
the API server serves: the figures behind issue 11's "memory grows 13.6 KB per job".

For each ``--jobs`` count (default 10,000 and 50,000) a fresh process receives that many
ComputeJobs and their child Jobs as the API server serves them (copies of
``tests/support/served-objects.json``, captured from kube-apiserver 1.36 after the
operator decided them: ``managedFields``, the decision in ``status``, the child's whole
pod template; each copy decoded from its own JSON text, as off the wire, with its own
name, uid, namespace and times, in ``--shapes`` job shapes), and ``--nodes`` Nodes, and
keeps of them exactly what the operator keeps:

- **kopf**: its memory of every object it watches (``ResourceMemories.recall``, as its
  watch does for each ComputeJob);
- **record**: the job's :class:`~suandian.controllers.book.JobRecord` (``JobBook.observe``);
- **child Job**: what the cluster view keeps of it (``ClusterCache.set_child``);
- **census**, **scheduler** (its due time), **demand** (what the planning rounds are
  given: :class:`~suandian.planning.rounds.Demand`);
- **node**: the cluster view's :class:`~suandian.controllers.view.NodeRecord`.

Live bytes are measured with ``tracemalloc`` (each part's growth once the bodies are
gone), so they do not depend on the machine's load. The **unpruned** baseline, in the
same process, keeps the decoded ComputeJob and child Job bodies in place of the record
and the child view. The process's resident memory (after the imports, the operator's
``suandian run`` imports without ``kubernetes`` as in the image, and after the state)
and the CPU and wall time taken are printed too, with the load average.

    python hack/bench_memory.py                          # 10,000 and 50,000 jobs
    python hack/bench_memory.py --jobs 1000 --nodes 500  # quick
    python hack/bench_memory.py --jobs 50000 --nodes 20000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.abc
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.served import served, served_nodes  # noqa: E402

PER_JOB_TARGET = 4096


class KubernetesAbsent(importlib.abc.MetaPathFinder):
    """``kubernetes`` as in the operator image: not installed (kopf imports it if it is)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in ("kubernetes", "kubernetes_asyncio"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_mb() -> float:
    return _status_kb("VmHWM") / 1024


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- what the operator keeps ---------------------------------------------------------------


class Parts:
    """The operator's per-object state, built as its watches build it."""

    def __init__(self, *, pruned: bool) -> None:
        import kopf
        from kopf._core.reactor.inventory import ResourceMemories

        from suandian.controllers.book import JobBook
        from suandian.controllers.census import JobCensus
        from suandian.controllers.clock import WallClock
        from suandian.controllers.scheduler import Scheduler
        from suandian.controllers.view import ClusterCache

        try:  # the operator's memo: one for all objects (older commits: kopf's copies)
            from suandian.controllers import SharedMemo as Memo
        except ImportError:
            Memo = kopf.Memo  # noqa: N806
        self.pruned = pruned
        self.memories = ResourceMemories()
        self.memo = (Memo if pruned else kopf.Memo)(ctx=object())
        self.book = JobBook()
        self.cluster = ClusterCache()
        self.census = JobCensus()
        self.demands: dict[str, Any] = {}
        self.bodies: dict[str, Any] = {}  # the unpruned baseline's record
        self.children: dict[str, Any] = {}  # and child view
        self.scheduler = Scheduler(WallClock(), self._step)
        self.due = datetime(2026, 12, 2, tzinfo=UTC)

    async def _step(self, key: str) -> datetime:
        del key
        return self.due

    async def kopf(self, body: dict[str, Any]) -> None:
        await self.memories.recall(body, memobase=self.memo, noticed_by_listing=True)

    def record(self, body: dict[str, Any]) -> Any:
        if self.pruned:
            return self.book.observe(body)
        self.bodies[body["metadata"]["uid"]] = body
        return None

    def child(self, owner: str, body: dict[str, Any]) -> None:
        if self.pruned:
            self.cluster.set_child(owner, body)
        else:
            self.children[owner] = body

    def census_of(self, body: dict[str, Any]) -> None:
        self.census.observe(body["metadata"]["uid"], body)

    async def schedule(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        await self.scheduler._limit.acquire()
        await self.scheduler._one(f"ComputeJob/{meta['namespace']}/{meta['name']}")

    def demand(self, record: Any, body: dict[str, Any]) -> None:
        from suandian.controllers.book import record_from_body
        from suandian.planning.rounds import Demand

        record = record or record_from_body(body, share=self.book.share)
        self.demands[record.key] = Demand(record.key, record.terms, record.created)

    def node(self, body: dict[str, Any]) -> None:
        self.cluster.set_node(body["metadata"]["name"], body)


async def _fill(parts: Parts, n: int, shapes: int, nodes: int, offset: int = 0) -> None:
    """Feed the objects in, as the watches do: one decoded body for all that read it."""
    for cj_text, job_text in served(n, shapes, offset):
        cj, job = json.loads(cj_text), json.loads(job_text)
        await parts.kopf(cj)
        record = parts.record(cj)
        parts.child(cj["metadata"]["uid"], job)
        parts.census_of(cj)
        await parts.schedule(cj)
        parts.demand(record, cj)
    for text in served_nodes(nodes):
        parts.node(json.loads(text))


def _structures(parts: Parts) -> dict[str, list[Any]]:
    """What each part is made of (sized in this order, nothing counted twice)."""
    cluster, book, sched = parts.cluster, parts.book, parts.scheduler
    return {
        "kopf": [parts.memories._items],
        "record": [book._records, book._terms, parts.bodies],
        "child Job": [cluster.child_jobs, cluster.child_versions, parts.children],
        "census": [parts.census._where, parts.census._counts],
        "scheduler": [sched._due, sched._heap],
        "demand": [parts.demands],
        "node": [cluster.nodes],
    }


def measure(n: int, nodes: int, shapes: int, pruned: bool) -> dict[str, Any]:
    """One configuration, in this process: the live bytes all parts hold together
    (``tracemalloc``, after a full collection: exact, whatever the machine's load), and
    how they divide between the parts (``deep_size``: the objects each part refers to,
    each object counted once; "unattributed" is the difference, <0 when a part holds
    strings allocated before the measurement, such as interned names)."""
    from tests.support.memory import deep_size

    asyncio.run(_fill(Parts(pruned=pruned), 200, shapes, 10, offset=10**7))  # lazy caches
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    parts = Parts(pruned=pruned)
    asyncio.run(_fill(parts, n, shapes, nodes))
    gc.collect()
    total = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    seen: set[int] = {id(parts.memo)}  # the one operator memo: not per job
    sizes = {part: sum(deep_size(obj, seen) for obj in objs)
             for part, objs in _structures(parts).items()}
    per_node = sizes.pop("node") / max(1, nodes)
    per_job = {k: v / n for k, v in sizes.items()}
    per_job["unattributed"] = (total - sum(sizes.values()) - per_node * nodes) / n
    return {"pruned": pruned, "per_job": per_job, "per_node": per_node,
            "per_job_total": sum(per_job.values()), "total_bytes": total, "parts": parts}


def child_main(args: argparse.Namespace) -> None:
    """One ``--jobs`` count and mode, in its own process (its RSS is that alone): once
    plainly (resident memory, CPU and wall time), once measured (live bytes)."""
    if not args.with_kubernetes:
        sys.meta_path.insert(0, KubernetesAbsent())
    n, nodes, pruned = args.child, args.nodes[0], args.mode == "pruned"
    rss0 = rss_mb()
    import suandian.cli
    import suandian.controllers.main

    del suandian
    out: dict[str, Any] = {"jobs": n, "nodes": nodes, "shapes": args.shapes,
                           "kubernetes": "kubernetes" in sys.modules,
                           "rss_start_mb": rss0, "rss_imports_mb": rss_mb()}
    asyncio.run(_fill(Parts(pruned=pruned), 200, args.shapes, 10, offset=10**7))  # warm
    gc.collect()
    cpu0, wall0 = cpu_s(), time.perf_counter()
    parts = Parts(pruned=pruned)
    asyncio.run(_fill(parts, n, args.shapes, nodes))
    out["cpu_s"], out["wall_s"] = cpu_s() - cpu0, time.perf_counter() - wall0
    gc.collect()
    out["rss_state_mb"], out["rss_peak_mb"] = rss_mb(), peak_mb()
    out["loadavg"] = os.getloadavg()
    del parts
    gc.collect()
    found = measure(n, nodes, args.shapes, pruned)
    found.pop("parts")
    out.update(found)
    print(json.dumps(out))


def report(base: dict[str, Any], ours: dict[str, Any]) -> None:
    n, nodes = ours["jobs"], ours["nodes"]
    print(f"\n{n:,} ComputeJobs (+ child Jobs), {nodes:,} Nodes, {ours['shapes']} job "
          f"shapes (kubernetes imported: {'yes' if ours['kubernetes'] else 'no'})")
    print(f"  {'live bytes per job':24s} {'unpruned':>10s} {'operator':>10s}")
    for part in ours["per_job"]:
        print(f"  {part:24s} {base['per_job'].get(part, 0):10,.0f} "
              f"{ours['per_job'][part]:10,.0f}")
    print(f"  {'total per job':24s} {base['per_job_total']:10,.0f} "
          f"{ours['per_job_total']:10,.0f}   (target < {PER_JOB_TARGET:,})")
    print(f"  {'MB per 1,000 jobs':24s} {base['per_job_total'] * 1000 / 2**20:10.2f} "
          f"{ours['per_job_total'] * 1000 / 2**20:10.2f}")
    print(f"  {'live bytes per node':24s} {base['per_node']:10,.0f} {ours['per_node']:10,.0f}")
    for what, key in (("RSS after the imports, MB", "rss_imports_mb"),
                      ("RSS holding the state, MB", "rss_state_mb"),
                      ("peak RSS, MB", "rss_peak_mb"), ("CPU, s", "cpu_s"),
                      ("wall, s", "wall_s")):
        print(f"  {what:24s} {base[key]:10.1f} {ours[key]:10.1f}")
    grown = (ours["rss_state_mb"] - ours["rss_imports_mb"]) * 2**20
    print(f"  {'RSS growth per job':24s} "
          f"{(base['rss_state_mb'] - base['rss_imports_mb']) * 2**20 / n:10,.0f} "
          f"{grown / n:10,.0f}   (bytes; nodes included)")
    print(f"  CPU/wall: receiving the {n:,} jobs and {nodes:,} nodes, tracemalloc off; "
          f"load average {', '.join(f'{x:.2f}' for x in ours['loadavg'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--nodes", type=int, nargs="+", default=None,
                        help="Nodes for each --jobs count (default: 5,000 and 20,000).")
    parser.add_argument("--shapes", type=int, default=64, help="Distinct job specs.")
    parser.add_argument("--with-kubernetes", action="store_true",
                        help="Let kopf import the kubernetes package if it is installed.")
    parser.add_argument("--json", action="store_true", help="Print one JSON line per count.")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("pruned", "unpruned"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child_main(args)
        return
    nodes = args.nodes or [5_000 if n <= 10_000 else 20_000 for n in args.jobs]
    if len(nodes) != len(args.jobs):
        parser.error("give one --nodes count per --jobs count")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "operator"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for n, node_count in zip(args.jobs, nodes, strict=True):
        found = {}
        for mode in ("unpruned", "pruned"):
            argv = [sys.executable, __file__, "--child", str(n), "--nodes", str(node_count),
                    "--shapes", str(args.shapes), "--mode", mode]
            if args.with_kubernetes:
                argv.append("--with-kubernetes")
            done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                sys.exit(done.stderr)
            found[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        if args.json:
            print(json.dumps(found))
        else:
            report(found["unpruned"], found["pruned"])


if __name__ == "__main__":
    main()

"""What a ComputeJob costs the operator while it waits, in live bytes (``tracemalloc``,
deterministic: not a timing): its record, the view of its child Job, its place in the
census, and kopf's own memory of the object (with the one shared memo). Measured on
1,000 jobs as a real API server serves them (``tests/support/served.py``); the target is
4 KB a job (issue 11), the record alone under 2 KB. ``hack/bench_memory.py`` prints the
same per part, at 10,000 and 50,000 jobs, against keeping the served bodies."""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from typing import Any

from kopf._core.reactor.inventory import ResourceMemories
from tests.support.served import served

from suandian.controllers import SharedMemo
from suandian.controllers.book import JobBook
from suandian.controllers.census import JobCensus
from suandian.controllers.view import ClusterCache

JOBS = 1000


class State:
    def __init__(self) -> None:
        self.memories, self.memo = ResourceMemories(), SharedMemo(ctx=object())
        self.book, self.cluster, self.census = JobBook(), ClusterCache(), JobCensus()

    def take(self, pairs: list[tuple[str, str]], parts: set[str]) -> None:
        async def go() -> None:
            for cj_text, job_text in pairs:
                cj, job = json.loads(cj_text), json.loads(job_text)
                if "kopf" in parts:
                    await self.memories.recall(cj, memobase=self.memo)
                if "record" in parts:
                    self.book.observe(cj)
                if "child" in parts:
                    self.cluster.set_child(cj["metadata"]["uid"], job)
                if "census" in parts:
                    self.census.observe(cj["metadata"]["uid"], cj)

        asyncio.run(go())


def per_job(parts: set[str]) -> float:
    warm = list(served(50, 64, offset=10**6))
    pairs = list(served(JOBS, 64))
    State().take(warm, parts)  # lazy imports and caches are not per job
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        state = State()
        state.take(pairs, parts)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(state.book._records) in (0, JOBS)
    del state
    return grown / JOBS


def test_a_waiting_job_costs_the_operator_under_4_kb() -> None:
    everything: Any = per_job({"kopf", "record", "child", "census"})
    assert everything < 4096, f"{everything:.0f} bytes a job"


def test_a_job_record_is_under_2_kb() -> None:
    record = per_job({"record"})
    assert record < 2048, f"{record:.0f} bytes a record"

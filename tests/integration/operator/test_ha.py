"""HA: two operator replicas in one kopf peering; only the leader acts, the standby takes over.

Each replica runs in its own thread with its own event loop, as it would in its own pod.
Two ``kopf.operator()`` calls cannot share a loop: when one stops, kopf's ``run_tasks``
treats every task created in the loop since its start as its own "hung" sub-task
(``aiotasks.all_tasks(ignored=existing)``, "the loop is not fully ours" in its source),
waits 5 s and cancels them all, the other replica's tasks included (and the test's own):
that is why a graceful stop "hung" and the standby "never took over" in one loop.

Real time, not looptime: kopf judges peers alive by ``datetime.now()`` (wall clock) against
their ``lastseen + lifetime`` while it sleeps on the loop's clock, so fake loop time would
never let a peer expire. The support code sets a 5 s peering lifetime and a 1 s interval;
the scenario takes a few seconds.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, JOBS, PSITES, computejob, eventually
from tests.support.operator import OperatorHandle, start_operator

from suandian.controllers.clock import LoopClock

REGION = "topology.kubernetes.io/region"
PEERINGS = "kopf.dev/v1/clusterkopfpeerings"
GREEN = datetime(2026, 6, 21, 3, 0, tzinfo=UTC)  # a slot boundary: the green window
LEAD = timedelta(seconds=15)  # real seconds from the first replica's start to it


@pytest.fixture
def clock() -> LoopClock:
    """Real time, anchored ``LEAD`` before a green window opens (objects are stamped and
    the operators plan on this one clock)."""
    return LoopClock(GREEN - LEAD)


class ThreadedReplica:
    """One operator replica in its own thread and event loop, stopped as on SIGTERM."""

    def __init__(self, api: Any, clock: LoopClock, factory: Any, priority: int,
                 token: str | None = None) -> None:
        self.api, self.clock, self.factory, self.priority = api, clock, factory, priority
        self.token = token  # a bearer token of its own: the request log tells who wrote
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.handle: OperatorHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),),
                                       name=f"replica-{priority}", daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            self.handle = await start_operator(self.api, self.clock, self.factory,
                                               standalone=False, priority=self.priority,
                                               token=self.token)
        except BaseException as exc:  # reported by start() in the test's thread
            self.error = exc
            raise
        finally:
            self.ready.set()
        await self._stopping.wait()
        await self.handle.stop()

    async def start(self) -> None:
        self.thread.start()
        assert await asyncio.to_thread(self.ready.wait, 30), "replica did not start"
        if self.error is not None:
            raise self.error

    async def stop(self, timeout: float = 20) -> None:
        """Graceful stop (kopf's stop flag), bounded: fails if the replica hangs."""
        if self.thread.ident is None:
            return  # never started
        if self._loop is not None and self._stopping is not None and self.thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        await asyncio.to_thread(self.thread.join, timeout)
        assert not self.thread.is_alive(), f"replica {self.priority} did not stop in {timeout}s"


def job_posts(api: Any) -> list[str]:
    """Names in every POST of a Job, refused ones too: a standby that acted would post a
    duplicate (answered 409) that the stored objects alone would not show."""
    return [(r.data or {}).get("metadata", {}).get("name") for r in api._requests
            if r.method.value == "POST" and r.resource is not None
            and r.resource.plural == "jobs"]


def peers(api: Any) -> dict[str, Any]:
    return dict((api.read(PEERINGS, None, "suandian") or {}).get("status") or {})


async def test_only_the_leader_acts_and_the_standby_takes_over(api: Any, cluster: Any,
                                                               clock: LoopClock) -> None:
    providers = {"ningxia": ScriptedProvider(lambda t: 1000.0)}
    cluster.add_node("ningxia-1", {REGION: "ningxia"})
    api.create(PSITES, powersite("ningxia", "ningxia"))
    api.create(PEERINGS, {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                          "metadata": {"name": "suandian"}})
    factory = keeper_factory(providers)
    leader = ThreadedReplica(api, clock, factory, priority=200)
    standby = ThreadedReplica(api, clock, factory, priority=100)
    try:
        await leader.start()
        await standby.start()
        await eventually(lambda: len(peers(api)) == 2, timeout=10, step=0.1,
                         what="both replicas in the peering object")
        api.create(CJ, computejob("first"))
        await eventually(lambda: api.read(JOBS, "batch", "first"), timeout=10, step=0.1,
                         what="the leader to create the child Job")
        await asyncio.sleep(2)  # room for a duplicate, if the standby acted too
        assert job_posts(api) == ["first"]
        first_uid = api.read(JOBS, "batch", "first")["metadata"]["uid"]

        await leader.stop()
        assert len(peers(api)) == 1, peers(api)  # the leader removed its own entry
        api.create(CJ, computejob("second"))
        await eventually(lambda: api.read(JOBS, "batch", "second"), timeout=15, step=0.1,
                         what="the standby to take over")
        await asyncio.sleep(1)
        # the new leader may try to create "first" again while its index of child Jobs
        # fills (answered 409 and read back): no new Job, nothing started twice
        assert job_posts(api).count("second") == 1
        assert api.read(JOBS, "batch", "first")["metadata"]["uid"] == first_uid
        assert sorted(name for name, _ in cluster.starts) == ["first", "second"]
    finally:
        for replica in (standby, leader):
            await replica.stop()


WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def writes_by(api: Any, token: str, since: int = 0) -> list[str]:
    """``METHOD plural/name`` of every write sent with ``token`` from request ``since``
    on, the kopf peering keep-alive aside (a standby announces itself: that is all it
    may write)."""
    found = []
    for request in api._requests[since:]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if (request.method.value not in WRITES or request.resource is None
                or headers.get("authorization") != f"Bearer {token}"
                or request.resource.plural.endswith("kopfpeerings")):
            continue
        name = request.name or (request.data or {}).get("metadata", {}).get("name")
        found.append(f"{request.method.value} {request.resource.plural}/{name}")
    return found


async def test_a_paused_replica_writes_nothing_and_writes_again_when_it_resumes(
        api: Any, cluster: Any, clock: LoopClock) -> None:
    """The low-priority replica defers three jobs alone; a high-priority one arrives, and
    when the green window opens (about 15 s later) only the newcomer starts them. Once
    it stops, the first resumes and acts again. Fails when ``Context.pause`` does
    nothing: the paused replica's scheduler would start the jobs at the window too."""
    providers = {"ningxia": ScriptedProvider(lambda t: 1000.0 if t >= GREEN else 0.0)}
    cluster.add_node("ningxia-1", {REGION: "ningxia"})
    api.create(PSITES, powersite("ningxia", "ningxia"))
    api.create(PEERINGS, {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                          "metadata": {"name": "suandian"}})
    factory = keeper_factory(providers)
    low = ThreadedReplica(api, clock, factory, priority=100, token="low")
    high = ThreadedReplica(api, clock, factory, priority=200, token="high")
    names = ["etl-1", "etl-2", "etl-3"]
    try:
        await low.start()
        for name in names:
            api.create(CJ, computejob(name, duration="1h", max_delay="20h"))
        # the child Job is created before the status that records the plan is written:
        # wait for both, or the status may not be there yet
        await eventually(lambda: all((api.read(JOBS, "batch", n) or {}).get("spec", {})
                                     .get("suspend") for n in names)
                         and all("plannedStart" in (api.read(CJ, "batch", n) or {})
                                 .get("status", {}) for n in names),
                         timeout=10, step=0.1, what="three deferred child Jobs, planned")
        assert [n for n in names if api.read(CJ, "batch", n)["status"]["plannedStart"]
                != GREEN.strftime("%Y-%m-%dT%H:%M:%SZ")] == []
        await high.start()
        await eventually(lambda: len(peers(api)) == 2, timeout=10, step=0.1,
                         what="both replicas in the peering object")
        await asyncio.sleep(1)  # the low replica sees its better and pauses
        handover = len(api._requests)
        assert clock.now() < GREEN - timedelta(seconds=3), "too slow to hand over in time"
        await eventually(lambda: len(cluster.starts) == 3, timeout=LEAD.seconds + 10,
                         step=0.2, what="three starts at the green window")
        await asyncio.sleep(1)  # room for a duplicate write, if the paused one acted
        assert writes_by(api, "low", handover) == []
        assert {f"PATCH jobs/{n}" for n in names} <= set(writes_by(api, "high", handover))
        assert sorted(name for name, _ in cluster.starts) == names

        await high.stop()
        resumed = len(api._requests)
        api.create(CJ, computejob("after", duration="1h"))
        await eventually(lambda: api.read(JOBS, "batch", "after"), timeout=15, step=0.1,
                         what="the low replica to resume and create the child Job")
        assert "POST jobs/after" in writes_by(api, "low", resumed)
        assert writes_by(api, "high", resumed) == []
    finally:
        for replica in (high, low):
            await replica.stop()

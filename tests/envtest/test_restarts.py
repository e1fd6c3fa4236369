"""Process death on a real server: ``kill -9`` of the operator at random moments while
ComputeJobs wait and start, and a standby replica taking over from a killed leader.

All state lives in the API objects, so a restarted operator must carry on: no job lost
(each ends with its child Job and a status), none duplicated (one child Job, created
once, per job), none started after its latest start. The real Job controller stamps each
child's ``status.startTime`` when it is unsuspended: that, not the operator's word, is
when a job started. The figures are printed (``pytest -s``) and asserted.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.envtest import envkit
from tests.support.controlplane import ControlPlane
from tests.support.kube import Kube, wait_for
from tests.support.objects import computejob
from tests.support.process import OperatorProcess

from suandian.units import parse_time

NS = "envtest-restarts"
WAITING, ARRIVING = 40, 60  # deferred for hours / created while the operator is killed
LATEST_AFTER = timedelta(seconds=30)  # each arrival's latest start, after its creation
GRACE = timedelta(minutes=1)  # the operator's DEADLINE_GRACE: a start later is a miss
KILLS = 6
SEED = 20261201


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def arrival(i: int) -> dict[str, Any]:
    """A job to start at once at gansu whose latest start is 30 s after its creation."""
    manifest = computejob(f"arrive-{i:02d}", namespace=NS, sites=["gansu"], duration="1h",
                          cpu="500m", watts=1000.0)
    deadline = datetime.now(UTC) + timedelta(hours=1, minutes=15) + LATEST_AFTER
    manifest["spec"]["deadline"] = {"completeBy": stamp(deadline)}
    return manifest


def jobs_by_owner(kube: Kube) -> Counter[str]:
    return Counter(j["metadata"]["ownerReferences"][0]["uid"]
                   for j in kube.list(f"/apis/batch/v1/namespaces/{NS}/jobs"))


def successful_creates(plane: ControlPlane) -> Counter[str]:
    """Child Jobs the API server created in NS, by name (the audit log's 201s)."""
    return Counter(e["objectRef"].get("name") for e in plane.audit_events()
                   if e.get("verb") == "create" and e["objectRef"].get("resource") == "jobs"
                   and e["objectRef"].get("namespace") == NS
                   and e["responseStatus"].get("code") == 201)


def test_kill_9_at_random_moments_loses_duplicates_and_delays_nothing(
        kube: Kube, control_plane: ControlPlane, operator_kubeconfig: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    envkit.namespace(kube, NS)
    rng = random.Random(SEED)
    proc = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("restarts"),
                           env={"SUANDIAN_RETRY_DELAY": "1"}).start()
    try:
        for i in range(WAITING):  # ningxia's green power comes in six hours: they wait
            kube.create(computejob(f"wait-{i:02d}", namespace=NS, sites=["ningxia"],
                                   max_delay="20h", cpu="500m", watts=1000.0))
        arrivals: list[dict[str, Any]] = []

        def arrive() -> None:
            for i in range(ARRIVING):
                arrivals.append(kube.create(arrival(i)))
                time.sleep(0.5)

        creator = threading.Thread(target=arrive, name="arrivals")
        creator.start()
        downtimes = []
        for _ in range(KILLS):
            time.sleep(rng.uniform(1.0, 4.0))
            proc.kill()
            killed = time.monotonic()
            time.sleep(rng.uniform(0.0, 2.0))
            proc.start()
            downtimes.append(time.monotonic() - killed)
        creator.join()

        def settled() -> list[dict[str, Any]] | None:
            jobs = kube.list(f"/apis/suandian.io/v1alpha1/namespaces/{NS}/computejobs")
            done = [j for j in jobs if (j.get("status") or {}).get("phase") in (
                "Deferred", "Running")]
            return jobs if len(done) == WAITING + ARRIVING else None

        try:
            jobs = wait_for(settled, timeout=90, what="every job Deferred or Running")
        except AssertionError as exc:  # say which, and what they say
            stuck = {j["metadata"]["name"]: (j.get("status") or {}).get("phase", "-") + ": " + str(
                (j.get("status") or {}).get("reason", ""))[:120] for j in kube.list(
                    f"/apis/suandian.io/v1alpha1/namespaces/{NS}/computejobs")
                if (j.get("status") or {}).get("phase") not in ("Deferred", "Running")}
            raise AssertionError(f"{exc}; not settled: {stuck}; log:\n{proc.tail()}") from None
        children = {j["metadata"]["name"]: j
                    for j in kube.list(f"/apis/batch/v1/namespaces/{NS}/jobs")}
        wait_for(lambda: all((c.get("status") or {}).get("startTime") for n, c in (
            (n, kube.get(f"/apis/batch/v1/namespaces/{NS}/jobs/{n}") or {})
            for n in children if n.startswith("arrive-"))), timeout=60,
            what="the Job controller to stamp every started child")
        children = {j["metadata"]["name"]: j
                    for j in kube.list(f"/apis/batch/v1/namespaces/{NS}/jobs")}
    finally:
        proc.stop()

    # 0 lost: every job has its child and a status that says what it does
    by_phase = Counter(j["status"]["phase"] for j in jobs)
    assert by_phase == {"Deferred": WAITING, "Running": ARRIVING}, by_phase
    assert sorted(children) == sorted(j["metadata"]["name"] for j in jobs)
    # 0 duplicated: one child per job, each created once by the server
    owners = jobs_by_owner(kube)
    assert set(owners.values()) == {1} and len(owners) == WAITING + ARRIVING
    creates = successful_creates(control_plane)
    assert {n: c for n, c in creates.items() if c != 1} == {}
    # waiting jobs stay suspended; started ones started by their latest start
    assert all(children[f"wait-{i:02d}"]["spec"]["suspend"] for i in range(WAITING))
    late, delays, margins = [], [], []
    for cj in jobs:
        name = cj["metadata"]["name"]
        if not name.startswith("arrive-"):
            continue
        started = parse_time(children[name]["status"]["startTime"])
        latest = parse_time(cj["status"]["latestStart"])
        delays.append((started - parse_time(cj["metadata"]["creationTimestamp"])
                       ).total_seconds())
        margins.append((latest - started).total_seconds())
        if started > latest + GRACE:
            late.append((name, started - latest))
    print(f"\nkill -9 x{KILLS}: downtime {', '.join(f'{d:.1f}' for d in downtimes)} s "
          f"(restart included); {WAITING} waiting, {ARRIVING} arriving jobs; lost 0, "
          f"duplicated 0; creation to start: median {statistics.median(delays):.1f} s, "
          f"max {max(delays):.1f} s (latest start: +{LATEST_AFTER.total_seconds():.0f} s, "
          f"least margin left {min(margins):.0f} s); late starts {len(late)}")
    assert late == []


def test_the_standby_takes_over_when_the_leader_is_killed(
        kube: Kube, operator_kubeconfig: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    envkit.namespace(kube, NS)
    workdir = tmp_path_factory.mktemp("ha")
    env = {"SUANDIAN_RETRY_DELAY": "1", "SUANDIAN_PEERING_LIFETIME": "10"}
    leader = OperatorProcess(operator_kubeconfig, workdir, name="leader",
                             args=["--priority", "20"], env=env)
    standby = OperatorProcess(operator_kubeconfig, workdir, name="standby",
                              args=["--priority", "10"], env=env)
    try:
        leader.start()
        standby.start()
        first = kube.create(computejob("ha-first", namespace=NS, sites=["gansu"]))
        wait_for(lambda: envkit.status_of(kube, first).get("phase") == "Running", timeout=60,
                 what="the leader to start the first job")
        # kopf starts every replica paused; the standby stays so while the leader lives
        assert "Resuming operations after the pause" not in standby.log()
        leader.kill()
        killed = time.monotonic()
        second = kube.create(computejob("ha-second", namespace=NS, sites=["gansu"]))
        wait_for(lambda: envkit.status_of(kube, second).get("phase") == "Running",
                 timeout=60, what="the standby to take over and start the second job")
        takeover = time.monotonic() - killed
        assert "Resuming operations after the pause" in standby.log()
        assert jobs_by_owner(kube)[second["metadata"]["uid"]] == 1
        print(f"\nleader killed: the standby started the next job {takeover:.1f} s later "
              "(peering lifetime 10 s)")
        assert takeover < 10 + 20  # the lifetime, one keepalive and a step
    finally:
        leader.stop()
        standby.stop()

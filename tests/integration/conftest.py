"""Integration fixtures: the API-server emulator with our CRDs, the clock, the cluster sim.

``kmock`` is kmock's pytest fixture (an HTTP server on 127.0.0.1), made to use our
:class:`~tests.support.emulator.ApiEmulator` for every test under this directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import kmock as kmock_lib
import pytest
from tests.support.cluster import ClusterSim
from tests.support.emulator import ApiEmulator

from suandian.controllers.clock import LoopClock

START = datetime(2026, 6, 21, 0, 0, tzinfo=UTC)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.kmock(cls=ApiEmulator))


def register_resources(emulator: ApiEmulator) -> None:
    """Built-ins (as k3s serves them), our CRDs and kopf's peering, each with /status."""
    emulator.resources.load_bundled()
    verbs = {"list", "watch", "get", "patch", "create", "delete"}
    emulator.resources["suandian.io/v1alpha1/computejobs"] = kmock_lib.ResourceInfo(
        kind="ComputeJob", singular="computejob", namespaced=True, verbs=verbs,
        shortnames={"cjob"}, subresources={"status"})
    emulator.resources["suandian.io/v1alpha1/powersites"] = kmock_lib.ResourceInfo(
        kind="PowerSite", singular="powersite", namespaced=False, verbs=verbs,
        shortnames={"psite"}, subresources={"status"})
    emulator.resources["suandian.io/v1alpha1/gridevents"] = kmock_lib.ResourceInfo(
        kind="GridEvent", singular="gridevent", namespaced=False, verbs=verbs,
        shortnames={"gev"}, subresources={"status"})
    emulator.resources["kopf.dev/v1/clusterkopfpeerings"] = kmock_lib.ResourceInfo(
        kind="ClusterKopfPeering", singular="clusterkopfpeering", namespaced=False,
        verbs=verbs)
    for plural in ("jobs", "pods"):
        for res in list(emulator.resources):
            if res.plural == plural and res.group in ("batch", ""):
                emulator.resources[res].subresources.add("status")


@pytest.fixture
def clock() -> LoopClock:
    """The operator's clock: 2026-06-21T00:00Z when the test's (fake) time starts."""
    return LoopClock(START)


@pytest.fixture
async def api(kmock: ApiEmulator, clock: LoopClock) -> AsyncIterator[ApiEmulator]:
    """The emulator with our resources registered, stamping times from ``clock``."""
    kmock.clock = clock.now
    register_resources(kmock)
    return kmock


@pytest.fixture
async def cluster(api: ApiEmulator, clock: LoopClock) -> AsyncIterator[ClusterSim]:
    sim = ClusterSim(api=api, now=clock.now)
    yield sim
    await sim.close()

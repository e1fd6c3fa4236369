"""Manifests and waiting helpers for the operator scenarios."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["CJ", "JOBS", "PODS", "PSITES", "computejob", "eventually"]

CJ = "suandian.io/v1alpha1/computejobs"
PSITES = "suandian.io/v1alpha1/powersites"
JOBS = "batch/v1/jobs"
PODS = "v1/pods"

T = TypeVar("T")


def computejob(name: str, *, namespace: str = "batch", duration: str = "2h",
               max_delay: str = "12h", watts: float = 50_000.0, interruptible: bool = False,
               sites: list[str] | None = None, cpu: str = "4", **spec: Any) -> dict[str, Any]:
    """A ComputeJob manifest: one pod of ``cpu`` CPUs drawing ``watts``."""
    body: dict[str, Any] = {
        "apiVersion": "suandian.io/v1alpha1", "kind": "ComputeJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "template": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox",
                                "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}],
            }}}},
            "duration": duration,
            "deadline": {"maxDelay": max_delay},
            "power": {"watts": watts},
            "interruptible": interruptible,
            **spec,
        },
    }
    if sites is not None:
        body["spec"]["sites"] = sites
    return body


async def eventually(probe: Callable[[], T], timeout: float = 60.0, step: float = 0.5,
                     what: str = "condition") -> T:
    """Poll ``probe`` (on loop time) until it returns something truthy; fail after timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = probe()
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(step)

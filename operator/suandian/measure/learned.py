"""The power model that learns: measured watts per job template become the next estimate.

A job's *template* is what makes two jobs draw alike: its namespace (the owner: one
team's jobs of one shape), the images of its containers, one pod's resource requests
and how many pods run at once. :func:`template_key` turns them into
``<namespace>/<12 hex digits>`` (a hash: images and requests stay out of labels and
logs). Each finished run that was measured for at least half its time teaches its
template its mean measured IT power; the estimate is the mean of the template's last
:attr:`PowerModel.runs_kept` runs, so it follows a change of code or data within a few
runs and converges for a steady one.

Memory is bounded: at most ``capacity`` templates, the least recently used forgotten
first. The model is rebuilt after a restart from the finished ComputeJobs' own status
(``status.measurement.template`` and ``measuredWatts``, written at completion), so it
needs no store of its own; deleting finished ComputeJobs forgets what they taught.

Which estimate a job's plan used (``status.powerEstimate.source``): ``declared``
(``spec.power``), ``learned`` (from N runs of its template) or ``default`` (from its
requests: :func:`suandian.planner.estimate_power_w`).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Estimate", "PowerModel", "template_key"]

MIN_MEASURED_SHARE = 0.5  # a run teaches only when measured for at least this share


def template_key(namespace: str, containers: list[Mapping[str, Any]],
                 per_pod: Mapping[str, float], pods: int) -> str:
    """``<namespace>/<hash of images, one pod's requests (planner units) and pods>``."""
    images = sorted(str(c.get("image") or "") for c in containers)
    shape = {"images": images, "requests": sorted((k, round(float(v), 6))
                                                  for k, v in per_pod.items()),
             "pods": int(pods)}
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]
    return f"{namespace}/{digest}"


@dataclass(frozen=True)
class Estimate:
    """The power a plan used for a job and where it came from."""

    source: str  # declared | learned | default
    watts: float
    runs: int = 0
    template: str = ""

    def status(self) -> dict[str, Any]:
        """``status.powerEstimate``."""
        out: dict[str, Any] = {"source": self.source, "watts": round(self.watts, 1)}
        if self.template:
            out["template"] = self.template
        if self.source == "learned":
            out["runs"] = self.runs
        return out

    def describe(self) -> str:
        if self.source == "learned":
            return f"{self.watts:.0f} W learned from {self.runs} runs of its template"
        if self.source == "declared":
            return f"{self.watts:.0f} W declared in spec.power"
        return f"{self.watts:.0f} W estimated from its requests"


class PowerModel:
    """Measured watts by template (see the module docstring)."""

    def __init__(self, capacity: int = 1024, runs_kept: int = 10) -> None:
        if capacity < 1 or runs_kept < 1:
            raise ValueError("capacity and runs_kept must be at least 1")
        self.capacity = capacity
        self.runs_kept = runs_kept
        self._runs: OrderedDict[str, OrderedDict[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._runs)

    def learn(self, template: str, run: str, watts: float) -> None:
        """One run (``run``: the job's uid, so a run seen twice counts once) drew ``watts``."""
        if not template or not watts > 0:
            return
        runs = self._runs.pop(template, None) or OrderedDict()
        runs.pop(run, None)
        runs[run] = float(watts)
        while len(runs) > self.runs_kept:
            runs.popitem(last=False)
        self._runs[template] = runs
        while len(self._runs) > self.capacity:
            self._runs.popitem(last=False)

    def estimate(self, template: str) -> tuple[float, int] | None:
        """``(watts, runs)`` learned for ``template``, or None."""
        runs = self._runs.get(template)
        if not runs:
            return None
        self._runs.move_to_end(template)
        return sum(runs.values()) / len(runs), len(runs)

    def learn_from_status(self, uid: str, status: Mapping[str, Any]) -> bool:
        """Learn from a finished ComputeJob's ``status.measurement`` (after a restart, the
        listing brings them all back); True when it taught something."""
        m = status.get("measurement")
        if status.get("phase") not in ("Succeeded", "Failed") or not isinstance(m, Mapping):
            return False
        watts, template = m.get("measuredWatts"), m.get("template")
        share = m.get("measuredShare") or 0.0
        if not isinstance(watts, int | float) or not isinstance(template, str):
            return False
        if not isinstance(share, int | float):
            return False
        return self.learn_run(template, uid, float(watts), float(share))

    def learn_run(self, template: str, uid: str, watts: float, share: float) -> bool:
        """Learn a finished run's watts if it was measured for at least
        :data:`MIN_MEASURED_SHARE` of its energy (the one rule, for the completion and
        for the listing alike); True when it taught something."""
        if share < MIN_MEASURED_SHARE:
            return False
        self.learn(template, uid, watts)
        return True

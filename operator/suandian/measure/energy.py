"""A job's IT energy slot by slot: measured where its exporters cover the run, else the model.

Each exporter (Kepler, DCGM) gives the job's pieces (:mod:`.series`). An exporter that
has no series at all for the job is *absent* (a CPU job has no GPU series) and is left
out; the others must all cover an instant for it to count as measured, since each
measures a different part of the machine (Kepler the CPU package and DRAM, DCGM the
GPUs). Where one of them is missing, that time is modelled at the job's planned power
(``model_w``) and what the other measured then is not added to it: a figure is never
half exporter and half model within one stretch.

A job that was suspended between run windows has pods only while it ran, so only
``run_s`` seconds (its run time, suspensions left out) can be uncovered: the model's
seconds are ``run_s − covered`` spread over the uncovered part of ``[start, end]``.

Provenance: ``measured`` when nothing was modelled, ``modelled`` when nothing was
measured, else ``partial`` with the measured share of the IT energy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from suandian.measure.series import Intervals, Pieces, intersect, length, slot_edges

__all__ = ["JOULES_PER_KWH", "PROVENANCES", "SlotEnergy", "job_energy"]

PROVENANCES = ("measured", "partial", "modelled")
"""How a job's energy is known: read from Kepler/DCGM for its whole run, for part of it
(the rest filled by the model), or only from the model (the ledger's ``provenance``)."""
JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True, eq=False)
class SlotEnergy:
    """IT energy (no PUE) of one run in slots: ``edges`` (Unix s, ``n + 1``), joules
    ``measured_j`` and ``modelled_j`` (``n``), the measured joules of each exporter,
    seconds covered by measurement, and why anything was modelled."""

    edges: np.ndarray
    measured_j: np.ndarray
    modelled_j: np.ndarray
    by_exporter_j: Mapping[str, float] = field(default_factory=dict)
    covered_s: float = 0.0
    run_s: float = 0.0
    model_w: float = 0.0
    why: str = ""

    @property
    def it_j(self) -> np.ndarray:
        return np.asarray(self.measured_j + self.modelled_j, dtype=float)

    @property
    def it_kwh(self) -> float:
        return float(self.it_j.sum()) / JOULES_PER_KWH

    @property
    def measured_share(self) -> float:
        """The measured share of the IT energy (of the run time when it drew nothing)."""
        measured, modelled = float(self.measured_j.sum()), float(self.modelled_j.sum())
        if measured + modelled > 0:
            return measured / (measured + modelled)
        return min(1.0, self.covered_s / self.run_s) if self.run_s > 0 else 0.0

    @property
    def provenance(self) -> str:
        if self.covered_s <= 0:
            return "modelled"
        if float(self.modelled_j.sum()) <= 0 and self.covered_s >= 0.999 * self.run_s:
            return "measured"
        return "partial"

    @property
    def exporters(self) -> tuple[str, ...]:
        """The exporters that measured some of it, in name order."""
        return tuple(sorted(k for k, v in self.by_exporter_j.items() if v > 0)) or (
            tuple(sorted(self.by_exporter_j)) if self.covered_s > 0 else ())

    @property
    def measured_watts(self) -> float | None:
        """Mean measured IT power over the covered time (None: nothing covered)."""
        if self.covered_s <= 0:
            return None
        return float(self.measured_j.sum()) / self.covered_s


def job_energy(readings: Mapping[str, Pieces], run: tuple[float, float], run_s: float,
               model_w: float, slot_s: float, why: str = "") -> SlotEnergy:
    """The run's IT energy by slot (see the module docstring). ``readings`` maps an
    exporter's name to the job's pieces from it (absent exporters: empty pieces)."""
    lo, hi = run
    hi = max(hi, lo)
    edges = slot_edges(lo, hi, slot_s)
    present = {k: p for k, p in readings.items() if p.covered}
    covered: Intervals = [(lo, hi)] if present else []
    for p in present.values():
        covered = intersect(covered, p.covered)
    n = len(edges) - 1
    measured = np.zeros(n)
    uncovered = np.zeros(n)
    by_exporter = dict.fromkeys(present, 0.0)
    for k in range(n):
        spans = intersect(covered, [(float(edges[k]), float(edges[k + 1]))])
        for name, p in present.items():
            joules = p.energy_over(spans)
            by_exporter[name] += joules
            measured[k] += joules
        uncovered[k] = float(edges[k + 1] - edges[k]) - length(spans)
    covered_s = length(covered)
    fill_s = max(0.0, min(run_s, hi - lo) - covered_s)
    open_s = float(uncovered.sum())
    modelled = (uncovered * (fill_s / open_s) * max(0.0, model_w) if open_s > 0
                else np.zeros(n))
    if not why and fill_s > 0 and present:
        missing = min(present, key=lambda name: length(present[name].covered))
        why = f"{missing} covered {length(present[missing].covered) / max(run_s, 1e-9):.0%}" \
              f" of the run"
    return SlotEnergy(edges=edges, measured_j=measured, modelled_j=modelled,
                      by_exporter_j=by_exporter, covered_s=covered_s, run_s=run_s,
                      model_w=model_w, why=why)

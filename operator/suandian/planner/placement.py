"""Placement inside a site: rank the site's nodes for a job as weighted preferences.

The site is required node affinity; these weights (1..100) become preferred node
affinity, so kube-scheduler still binds pods and may overrule us when a node fills up.
Vectorised over (jobs of a site) × (nodes of the site); the loop is over sites only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from suandian.planner.model import FloatArray, NodeInfo

__all__ = ["GPU_EFFICIENCY", "GPU_MODEL_LABELS", "gpu_efficiency", "rank_nodes"]

GPU_MODEL_LABELS = ("nvidia.com/gpu.product", "suandian.io/gpu-model", "gpu-model")
"""Node labels read, in order, for the GPU model."""

GPU_EFFICIENCY: Mapping[str, float] = {
    # Relative useful work per watt (dense BF16/FP16 TFLOPS per TDP watt, vendor sheets,
    # normalised to H100 SXM = 1.0). Unknown models get 0.5.
    "h200": 1.0, "h100": 1.0, "h800": 1.0, "h20": 0.35, "a100": 0.55, "a800": 0.55,
    "l40s": 1.0, "l40": 0.7, "l4": 1.0, "a10": 0.7, "t4": 0.6, "v100": 0.3,
    "910b": 0.8, "ascend-910b": 0.8,
}

_KEYS_LONGEST_FIRST = sorted(GPU_EFFICIENCY, key=len, reverse=True)


def gpu_efficiency(labels: Mapping[str, str]) -> float:
    """Efficiency factor of a node's GPU model from its labels (0.5 when unknown).

    Matches the first table key found in the label value, case-insensitively, longest
    key first, so ``NVIDIA-H100-80GB-HBM3`` is an H100 and ``NVIDIA-L40S`` an L40S.
    """
    for label in GPU_MODEL_LABELS:
        value = labels.get(label)
        if value:
            found = _model_efficiency(value)
            if found is not None:
                return found
    return 0.5


@lru_cache(maxsize=256)
def _model_efficiency(value: str) -> float | None:
    """Efficiency of one label value, None if no model matches (few distinct values per
    cluster: cached)."""
    text = value.lower()
    for key in _KEYS_LONGEST_FIRST:
        if key in text:
            return GPU_EFFICIENCY[key]
    return None


def rank_nodes(
    nodes: Sequence[NodeInfo],
    requests: FloatArray,
    wants_gpu: np.ndarray,
    top: int,
) -> list[tuple[tuple[str, int], ...]]:
    """Weighted node preferences for each job of one site.

    ``requests`` is ``(jobs, resources)`` (one pod each), ``wants_gpu`` ``(jobs,)`` bool.
    For job j and node m that fits (``req ≤ alloc`` for every resource)::

        pack[j, m] = mean over requested r of req[j, r] / alloc[m, r]   (tighter is better:
                     fills nodes instead of fragmenting them, as MostAllocated does)
        eff[j, m]  = GPU efficiency of m if j wants a GPU, else 1
        score      = 0.5 · pack + 0.5 · eff
        weight     = 1 + round(99 · score / max_m score)

    Nodes that do not fit are left out; the ``top`` best are returned, best first.
    """
    if not nodes or requests.shape[0] == 0:
        return [() for _ in range(requests.shape[0])]
    alloc = np.stack([n.allocatable for n in nodes])  # (M, R)
    eff = np.array([gpu_efficiency(n.labels) for n in nodes])  # (M,)
    asked = requests > 0  # (J, R)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = requests[:, None, :] / alloc[None, :, :]  # (J, M, R)
    fits = np.all(~asked[:, None, :] | (ratio <= 1.0 + 1e-9), axis=2)
    ratio = np.where(asked[:, None, :], np.nan_to_num(ratio, posinf=0.0), 0.0)
    pack = ratio.sum(axis=2) / np.maximum(asked.sum(axis=1), 1)[:, None]
    efficiency = np.where(wants_gpu[:, None], eff[None, :], 1.0)
    score = np.where(fits, 0.5 * pack + 0.5 * efficiency, -1.0)
    k = min(top, len(nodes))
    best = np.argsort(-score, axis=1, kind="stable")[:, :k]
    out: list[tuple[tuple[str, int], ...]] = []
    for j in range(requests.shape[0]):
        row = score[j, best[j]]
        peak = row.max() if row.size else 0.0
        prefs = tuple(
            (nodes[m].name, 1 + round(99 * float(s) / peak) if peak > 0 else 1)
            for m, s in zip(best[j], row, strict=True)
            if s >= 0
        )
        out.append(prefs)
    return out

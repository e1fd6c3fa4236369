"""Power estimate for a job whose ``spec.power`` is unset, from its requested resources.

IT power, watts, while the job runs (the site's PUE is applied by the planner):

- CPU: 4 W per requested CPU (one Kubernetes CPU is one hyperthread; Cloud Carbon
  Footprint's 3.5 W per vCPU at full load, rounded up for platform share).
- Memory: 0.4 W per GiB (Cloud Carbon Footprint: 0.392 W per GB).
- GPU: the model's board power (TDP) from the table below when the node selector or
  ``gpu_model`` names it, else 400 W per GPU.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "CPU_WATTS",
    "DEFAULT_GPU_WATTS",
    "DEFAULT_RESOURCES",
    "GPU_WATTS",
    "MEMORY_WATTS_PER_GIB",
    "estimate_power_w",
]

DEFAULT_RESOURCES = ("cpu", "memory", "nvidia.com/gpu")
"""Resources the planner tracks by default: CPUs, memory in GiB, GPUs."""

CPU_WATTS = 4.0
MEMORY_WATTS_PER_GIB = 0.4
DEFAULT_GPU_WATTS = 400.0
GPU_WATTS: Mapping[str, float] = {
    "h200": 700.0, "h100": 700.0, "h800": 700.0, "h20": 400.0, "a100": 400.0,
    "a800": 400.0, "l40s": 350.0, "l40": 300.0, "l4": 72.0, "a10": 150.0, "t4": 70.0,
    "v100": 300.0, "910b": 400.0,
}
_GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu", "huawei.com/ascend-910")


def gpu_watts(model: str | None) -> float:
    """Board power of one GPU of ``model`` (matched by the longest table key it contains)."""
    if model:
        text = model.lower()
        for key in sorted(GPU_WATTS, key=len, reverse=True):
            if key in text:
                return GPU_WATTS[key]
    return DEFAULT_GPU_WATTS


def estimate_power_w(requests: Mapping[str, float], gpu_model: str | None = None) -> float:
    """Watts for total requests: ``4·cpu + 0.4·memory_GiB + Σ gpu·W(model)``.

    ``requests`` maps resource names to amounts in planner units (CPUs, GiB, count).
    """
    cpu = float(requests.get("cpu", 0.0))
    mem = float(requests.get("memory", 0.0))
    gpus = sum(float(requests.get(name, 0.0)) for name in _GPU_RESOURCES)
    return CPU_WATTS * cpu + MEMORY_WATTS_PER_GIB * mem + gpus * gpu_watts(gpu_model)

"""Synthetic Kepler and DCGM-exporter series, in their real names and labels, backfilled
into a real Prometheus with ``promtool tsdb create-blocks-from openmetrics``.

Each series is sampled every ``step`` seconds from 5 s after its start to 5 s before its
end (a pod's series exist while it runs); a counter's value is its power times the time
since it started (plus ``offset``: a GPU's counter runs since boot), in the unit the
exporter uses (J for Kepler, mJ for DCGM). ``restart`` is the time an exporter restarted:
later samples carry the new exporter pod's ``instance`` label and a counter started
again from zero at the last sample before it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

STEP = 30.0


def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))


@dataclass
class Backfill:
    """Lines of an OpenMetrics file, grouped by metric name (one family each)."""

    families: dict[str, list[str]] = field(default_factory=dict)

    def series(self, metric: str, labels: Mapping[str, str], watts: float, start: float,
               end: float, *, kind: str = "counter", unit: float = 1.0, offset: float = 0.0,
               restart: float | None = None, step: float = STEP) -> None:
        lines = self.families.setdefault(metric, [])
        t, origin, names = start + 5.0, start, dict(labels)
        restarted = False
        previous = t
        while t <= end - 5.0 + 1e-9:
            if restart is not None and not restarted and t > restart:
                origin, offset, restarted = previous, 0.0, True
                names = {**names, "instance": names.get("instance", "") + "-restarted"}
            value = watts if kind == "gauge" else offset + watts * (t - origin)
            lines.append(f"{metric}{{{_labels(names)}}} {value * unit:.3f} {t:.3f}")
            previous, t = t, t + step

    def kepler_pod(self, pod: str, namespace: str, zone: str, watts: float, start: float,
                   end: float, node: str = "node-1", **kw: float) -> None:
        self.series("kepler_pod_cpu_joules_total", {
            "pod_name": pod, "pod_namespace": namespace, "pod_id": f"uid-{pod}",
            "zone": zone, "state": "running", "node_name": node, "job": "kepler",
            "instance": f"{node}:28282"}, watts, start, end, **kw)

    def kepler_container(self, pod: str, namespace: str, container: str, mode: str,
                         watts: float, start: float, end: float, node: str = "node-1"
                         ) -> None:
        self.series("kepler_container_joules_total", {
            "pod_name": pod, "container_namespace": namespace, "container_name": container,
            "container_id": f"cid-{pod}-{container}", "mode": mode, "command": "python",
            "job": "kepler", "instance": f"{node}:9102"}, watts, start, end)

    def dcgm(self, pod: str, namespace: str, gpu: int, watts: float, start: float,
             end: float, node: str = "node-1", container: str = "main",
             metric: str = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", **kw: float) -> None:
        labels = {"gpu": str(gpu), "UUID": f"GPU-{node}-{gpu}", "device": f"nvidia{gpu}",
                  "modelName": "NVIDIA H100 80GB HBM3", "Hostname": node,
                  "DCGM_FI_DRIVER_VERSION": "550.54.15", "pod": pod, "namespace": namespace,
                  "container": container, "job": "dcgm-exporter",
                  "instance": f"{node}:9400"}
        if metric.endswith("POWER_USAGE"):
            self.series(metric, labels, watts, start, end, kind="gauge")
        else:
            self.series(metric, labels, watts, start, end, unit=1000.0,
                        offset=kw.pop("offset", 4.2e9), **kw)

    def write(self, path: Path) -> Path:
        text = "".join("\n".join(lines) + "\n" for lines in self.families.values())
        path.write_text(text + "# EOF\n", encoding="utf-8")
        return path

    def into(self, promtool: str, data_dir: Path, workdir: Path) -> None:
        """Write the file and make TSDB blocks of it in ``data_dir`` (before Prometheus
        starts there)."""
        source = self.write(workdir / "exporters.om")
        data_dir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                               str(source), str(data_dir)], capture_output=True, text=True,
                              timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"promtool failed: {done.stdout}\n{done.stderr}")

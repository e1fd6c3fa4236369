"""ComputeJobs, their child Jobs and Nodes as a real API server serves them, by the
thousand: for the memory tests and ``hack/bench_memory.py``.

``served-objects.json`` holds one deferred and one running ComputeJob with their child
Jobs, captured from kube-apiserver 1.36 after the operator decided them (managedFields,
the decision in ``status``, the child's whole pod template). :func:`served` makes any
number of copies, each as its own JSON text (decoded, each is fresh objects, as off the
wire) with its own name, uid, namespace and times, in a number of job shapes.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["NAMESPACES", "SAMPLES", "samples", "served", "served_nodes"]

SAMPLES = Path(__file__).with_name("served-objects.json")
NAMESPACES = 20


def samples() -> dict[str, dict[str, dict[str, object]]]:
    """``{"deferred"|"running": {"cj": ComputeJob, "job": child Job}}``, as served."""
    return json.loads(SAMPLES.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _stamp(base: datetime, seconds: float) -> str:
    return (base + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def served(n: int, shapes: int, offset: int = 0) -> Iterator[tuple[str, str]]:
    """``n`` (ComputeJob, child Job) pairs as JSON text, each with its own identity and
    times; half deferred, half running; ``shapes`` distinct specs (duration, CPUs)."""
    found = samples()
    kinds = [found["deferred"], found["running"]]
    base = datetime(2026, 12, 1, tzinfo=UTC)
    for i in range(offset, offset + n):
        pair = copy.deepcopy(kinds[i % 2])
        cj, job = pair["cj"], pair["job"]
        name, ns = f"job-{i:06d}", f"team-{i % NAMESPACES:02d}"
        cj_uid, job_uid = str(uuid.UUID(int=2 * i + 1)), str(uuid.UUID(int=2 * i + 2))
        shape = i % shapes
        created = _stamp(base, i * 0.05)
        cj["metadata"].update(name=name, namespace=ns, uid=cj_uid, creationTimestamp=created,
                              resourceVersion=str(100_000 + 3 * i))
        cj["spec"]["duration"] = f"{1 + shape % 8}h"
        container = cj["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]
        container["resources"]["requests"]["cpu"] = str(1 + shape // 8)
        status = cj["status"]
        start = _stamp(base, 3600 + (i % 97) * 900)
        status.update(plannedStart=start, latestStart=_stamp(base, 7200 + (i % 89) * 900),
                      jobName=name, reason=status["reason"].replace("6.2h", f"{i % 23}.{i % 10}h"))
        for condition in status.get("conditions") or []:
            condition["lastTransitionTime"] = created
        for entry in cj["metadata"].get("managedFields") or []:
            entry["time"] = created
        meta = job["metadata"]
        meta.update(name=name, namespace=ns, uid=job_uid, creationTimestamp=created,
                    resourceVersion=str(100_001 + 3 * i))
        meta["ownerReferences"][0].update(name=name, uid=cj_uid)
        meta["labels"]["suandian.io/computejob"] = name
        meta["annotations"]["suandian.io/computejob-uid"] = cj_uid
        if "suandian.io/planned-start" in meta["annotations"]:
            meta["annotations"]["suandian.io/planned-start"] = start
        template = job["spec"]["template"]["metadata"]["labels"]
        for key in template:
            if "controller-uid" in key:
                template[key] = job_uid
            elif "job-name" in key or key == "suandian.io/computejob":
                template[key] = name
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] = job_uid
        for condition in (job.get("status") or {}).get("conditions") or []:
            condition["lastProbeTime"] = condition["lastTransitionTime"] = created
        if job.get("status", {}).get("startTime"):
            job["status"]["startTime"] = start
        yield json.dumps(cj), json.dumps(job)


def served_nodes(n: int) -> Iterator[str]:
    """``n`` Nodes as a kubelet reports them (labels, capacity, conditions, images)."""
    regions = ("gansu", "ningxia", "guangdong", "yangtze-delta", "guizhou", "chengyu")
    for i in range(n):
        region = regions[i % len(regions)]
        name = f"{region}-{i:05d}"
        yield json.dumps({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": name, "uid": str(uuid.UUID(int=10**9 + i)),
                "resourceVersion": str(500_000 + i),
                "creationTimestamp": "2026-11-01T00:00:00Z",
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                           "beta.kubernetes.io/arch": "amd64",
                           "node.kubernetes.io/instance-type": "c6.16xlarge",
                           "topology.kubernetes.io/region": region,
                           "topology.kubernetes.io/zone": f"{region}-{i % 3}"},
                "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                "volumes.kubernetes.io/controller-managed-attach-detach":
                                    "true"}},
            "spec": {"podCIDR": f"10.{i // 256 % 256}.{i % 256}.0/24"},
            "status": {
                "capacity": {"cpu": "64", "memory": "263855672Ki", "pods": "110",
                             "ephemeral-storage": "507944972Ki"},
                "allocatable": {"cpu": "63800m", "memory": "261655096Ki", "pods": "110",
                                "ephemeral-storage": "468118390237"},
                "conditions": [{"type": t, "status": "False" if t != "Ready" else "True",
                                "lastHeartbeatTime": "2026-12-01T00:00:00Z",
                                "lastTransitionTime": "2026-11-01T00:00:00Z",
                                "reason": f"Kubelet{t}", "message": f"kubelet says {t}"}
                               for t in ("MemoryPressure", "DiskPressure", "PIDPressure",
                                         "Ready")],
                "addresses": [{"type": "InternalIP", "address": f"10.0.{i // 256}.{i % 256}"},
                              {"type": "Hostname", "address": name}],
                "nodeInfo": {"kubeletVersion": "v1.36.2", "osImage": "Debian 13",
                             "containerRuntimeVersion": "containerd://2.1.0",
                             "kernelVersion": "6.12.0", "architecture": "amd64"},
                "images": [{"names": [f"registry.example/image-{k}@sha256:{'0' * 64}"],
                            "sizeBytes": 10**8 + k} for k in range(8)]}})

"""``helm uninstall`` strands nothing: the chart's pre-delete hook (``suandian release``),
run as the chart renders it, as the operator's ServiceAccount, on the real server, with
the operator running in its peering.

Before: ComputeJobs deferred for hours (their child Jobs suspended), a Pod behind the
gate, PowerSites carrying kopf's finalizer. After: the operator frozen (a new job gets no
decision), every child Job started (the real Job controller makes its Pods, the real
scheduler binds them inside the site), the Pod ungated and bound, the finalizers gone.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.envtest import envkit
from tests.envtest.envkit import child_of, condition, pods_of, posted, status_of
from tests.support.kube import Kube, path_of, wait_for
from tests.support.objects import computejob
from tests.support.process import OperatorProcess

NS = "envtest-uninstall"
GATE = "suandian.io/green-window"


def hook_argv() -> list[str]:
    """The command of the chart's pre-delete hook Job, as Helm renders it."""
    (hook,) = [o for o in envkit.render_chart() if o["kind"] == "Job" and (
        o["metadata"].get("annotations") or {}).get("helm.sh/hook") == "pre-delete"]
    (container,) = hook["spec"]["template"]["spec"]["containers"]
    return list(container["command"]) + list(container.get("args") or [])


def gated_pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS,
                         "labels": {"suandian.io/managed": "true"},
                         "annotations": {"suandian.io/duration": "1h",
                                         "suandian.io/max-delay": "20h",
                                         "suandian.io/sites": "ningxia"}},
            "spec": {"schedulingGates": [{"name": GATE}], "restartPolicy": "Never",
                     "containers": [{"name": "main", "image": "busybox",
                                     "resources": {"requests": {"cpu": "500m"}}}]}}


def finalized_sites(kube: Kube) -> list[str]:
    return [s["metadata"]["name"] for s in kube.list("/apis/suandian.io/v1alpha1/powersites")
            if "suandian.io/operator" in (s["metadata"].get("finalizers") or [])]


def test_the_pre_delete_hook_starts_everything_suandian_holds(
        kube: Kube, operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    envkit.namespace(kube, NS)
    workdir = tmp_path_factory.mktemp("uninstall")
    with OperatorProcess(operator_kubeconfig, workdir, args=["--priority", "3141592"],
                         env={"SUANDIAN_RETRY_DELAY": "1"}) as operator:
        jobs = [kube.create(computejob(f"held-{i}", namespace=NS, sites=["ningxia"],
                                       max_delay="20h", cpu="500m")) for i in range(3)]
        pod = kube.create(gated_pod("held-pod"))
        for cj in jobs:
            wait_for(lambda cj=cj: status_of(kube, cj).get("phase") == "Deferred", timeout=60,
                     what=f"{cj['metadata']['name']} deferred")
        wait_for(lambda: (kube.get(path_of(pod)) or {})["metadata"].get(
            "annotations", {}).get("suandian.io/site"), timeout=60, what="the pod placed")
        assert finalized_sites(kube), "kopf's daemons put their finalizer on PowerSites"
        assert all(child_of(kube, cj)["spec"]["suspend"] for cj in jobs)  # type: ignore[index]

        argv = hook_argv()
        done = subprocess.run([sys.executable, "-m", *argv, "--kubeconfig",
                               str(operator_kubeconfig)], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        print(f"\n{' '.join(argv)}:\n{done.stdout}")
        wait_for(lambda: "Pausing operations in favour of" in operator.log(), timeout=30,
                 what="the operator frozen by the release")
        late = kube.create(computejob("after-release", namespace=NS, sites=["gansu"]))

        for cj in jobs:
            status = status_of(kube, cj)
            assert status["phase"] == "Running"
            assert condition(status, "Started")["reason"] == "Released"
            posted(kube, cj, "Released")
            child = child_of(kube, cj)
            assert child is not None and child["spec"]["suspend"] is False
            bound = wait_for(lambda c=child: [p for p in pods_of(kube, c)
                                              if p["spec"].get("nodeName")], timeout=60,
                             what="the released job's pod bound")
            assert all(p["spec"]["nodeName"].startswith("ningxia-") for p in bound)
        released = wait_for(lambda: (p := kube.get(path_of(pod)) or {})["spec"].get(
            "nodeName") and p, timeout=60, what="the released pod bound")
        assert not released["spec"].get("schedulingGates")
        assert finalized_sites(kube) == []
        envkit.settle(3)  # frozen: the operator decides nothing more
        assert status_of(kube, late) == {}
    # the session's other scenarios left jobs and pods too: all released, ours among them
    started = re.search(r"^started (\d+) suspended child Jobs$", done.stdout, re.M)
    ungated = re.search(r"^ungated (\d+) Pods$", done.stdout, re.M)
    assert started and int(started.group(1)) >= 3, done.stdout
    assert ungated and int(ungated.group(1)) >= 1, done.stdout

"""The README's path, as a new user walks it: the chart's RBAC, Nodes in the eight
national hubs, ``kubectl apply -f examples/powersites/`` and every ComputeJob example,
the operator as the chart's ServiceAccount. Every site must get a forecast and every
job a decision, a site and a child Job, whatever the built-in forecasts say today.

A control plane of its own: the examples' PowerSites share names with the session's.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from tests.envtest import envkit
from tests.envtest.conftest import require
from tests.envtest.envkit import condition, load_docs
from tests.support.controlplane import ControlPlane, missing
from tests.support.kube import Kube, wait_for
from tests.support.process import OperatorProcess

from conftest import ROOT

HUBS = ("chengyu", "gansu", "guangdong", "guizhou", "inner-mongolia", "jing-jin-ji",
        "ningxia", "yangtze-delta")
# two nodes a hub, 192 CPUs, 2 TiB and 8 GPUs each: room for every example at once (the
# render farm's ten 32-CPU pods in Guangdong, the fine-tune's one 512 GiB pod)
NODES = [(f"{hub}-{i}", hub, 192, 8) for hub in HUBS for i in (1, 2)]


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    require(missing())
    plane = ControlPlane(tmp_path_factory.mktemp("examples-plane"), name="examples")

    def setup(kube: Kube) -> None:
        envkit.install_crds(kube)
        envkit.install_chart_rbac(kube)
        envkit.add_nodes(kube, NODES, memory="2Ti")

    try:
        plane.start(setup=setup)
        yield plane
    finally:
        plane.stop()


def test_every_example_is_planned_on_a_real_cluster(plane: ControlPlane,
                                                    tmp_path_factory: pytest.TempPathFactory,
                                                    kubectl: list[str]) -> None:
    workdir = tmp_path_factory.mktemp("examples")
    admin_config = plane.kubeconfig(workdir / "admin.kubeconfig")
    kube = plane.admin()
    jobs = [d for p in sorted((ROOT / "examples/computejobs").glob("*.yaml"))
            for d in load_docs(p)]
    for ns in sorted({j["metadata"]["namespace"] for j in jobs}):
        envkit.namespace(kube, ns)
    # --validate=false: this build's OpenAPI v2 is broken (../shared/kube/README.md); the
    # server validates all the same (strictly, in test_admission.py)
    apply = [*kubectl[:1], "--kubeconfig", str(admin_config), "apply", "--validate=false"]
    for folder in ("examples/powersites/", "examples/computejobs/"):
        done = subprocess.run([*apply, "-f", str(ROOT / folder)], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
    operator = OperatorProcess(envkit.operator_kubeconfig(plane, workdir / "sa.kubeconfig"),
                               workdir, env={"SUANDIAN_RETRY_DELAY": "1"})
    with operator:
        sites = wait_for(lambda: (found := kube.list("/apis/suandian.io/v1alpha1/powersites"))
                         and all(condition(s.get("status") or {}, "ForecastReady")
                                 for s in found) and found, timeout=60,
                         what="every PowerSite's forecast")
        try:
            wait_for(lambda: all((j.get("status") or {}).get("phase") in ("Deferred", "Running")
                                 for j in kube.list("/apis/suandian.io/v1alpha1/computejobs")),
                     timeout=60, what="every example job placed")
        finally:
            planned = kube.list("/apis/suandian.io/v1alpha1/computejobs")
            reasons = {j["metadata"]["name"]: (j.get("status") or {}).get("reason")
                       for j in planned}
        table = subprocess.run([*kubectl[:1], "--kubeconfig", str(admin_config), "get", "cjob",
                                "-A", "-o", "wide"], capture_output=True, text=True,
                               check=True).stdout
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, built-in forecasts:\n{table}")
    assert sorted(s["metadata"]["name"] for s in sites) == sorted(HUBS)
    assert all(condition(s["status"], "ForecastReady")["status"] == "True" for s in sites)
    assert len(planned) == len(jobs), reasons
    by_name = {j["metadata"]["name"]: j["status"] for j in planned}
    assert by_name["render-episode-12"]["site"] == "guangdong"  # its residency
    assert by_name["release-eval-v3"]["phase"] == "Running"  # PlaceOnly: at once
    assert by_name["release-eval-v3"]["site"] in ("jing-jin-ji", "yangtze-delta", "guangdong")
    assert by_name["qwen-7b-finetune"]["site"] in ("chengyu", "gansu", "guizhou",
                                                   "inner-mongolia", "ningxia")  # zone west
    for job in planned:
        child = envkit.child_of(kube, job)
        assert child is not None, job["metadata"]["name"]
        assert child["spec"]["suspend"] is (job["status"]["phase"] == "Deferred")
        if job["status"]["phase"] == "Running":  # the real scheduler finds them room
            pods = wait_for(lambda c=child: (p := envkit.pods_of(kube, c)) and all(
                x["spec"].get("nodeName") for x in p) and p, timeout=60,
                what=f"{job['metadata']['name']}'s pods bound")
            assert {x["spec"]["nodeName"].rsplit("-", 1)[0] for x in pods} == {
                job["status"]["site"]}

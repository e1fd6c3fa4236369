"""Gated Pods through the real admission chain: the API server calls the operator's
webhook over TLS (the chart's MutatingWebhookConfiguration with a ``caBundle``), the
operator tightens a gated Pod's node affinity, which only a gated Pod allows, and
removes the gate at the start; the real scheduler binds only what is released."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.envtest import envkit
from tests.envtest.envkit import events_of, posted
from tests.support.controlplane import ControlPlane
from tests.support.kube import Kube, path_of, wait_for
from tests.support.operator import free_port
from tests.support.process import OperatorProcess

NS = "envtest-pods"
GATE = "suandian.io/green-window"


@pytest.fixture(scope="module")
def webhook_operator(control_plane: ControlPlane, operator_kubeconfig: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    kube = control_plane.admin()
    envkit.namespace(kube, NS)
    workdir = tmp_path_factory.mktemp("webhook")
    ca, cert, key = envkit.webhook_certs(workdir / "certs")
    port = free_port()
    config = kube.create(envkit.chart_webhook(ca, port))
    try:
        with OperatorProcess(operator_kubeconfig, workdir, name="operator-webhook", args=[
                "--standalone", "--webhook-port", str(port), "--webhook-addr", "127.0.0.1",
                "--webhook-cert", str(cert), "--webhook-key", str(key)],
                env={"SUANDIAN_RETRY_DELAY": "1"}) as proc:
            yield proc
    finally:
        kube.delete(path_of(config))


def pod(name: str, *, managed: bool = True, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS,
                         "labels": {"suandian.io/managed": "true"} if managed else {},
                         "annotations": {f"suandian.io/{k.replace('_', '-')}": v
                                         for k, v in annotations.items()}},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "main", "image": "busybox", "resources": {"requests": {"cpu": "1"}}}]}}


def read(kube: Kube, obj: dict[str, Any]) -> dict[str, Any]:
    return kube.get(path_of(obj)) or {}


@pytest.mark.usefixtures("webhook_operator")
def test_the_api_server_calls_the_webhook_and_the_pod_waits_pinned(kube: Kube) -> None:
    created = kube.create(pod("later", duration="1h", max_delay="20h", sites="ningxia"))
    assert {"name": GATE} in created["spec"]["schedulingGates"]  # the webhook, over TLS
    pinned = wait_for(lambda: (p := read(kube, created))["spec"].get("affinity") and p,
                      timeout=60, what="the gated pod pinned to its site")
    required = pinned["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert required == [{"matchExpressions": [{"key": envkit.REGION, "operator": "In",
                                               "values": ["ningxia"]}]}]
    assert {"name": GATE} in pinned["spec"]["schedulingGates"]
    assert pinned["metadata"]["annotations"]["suandian.io/site"] == "ningxia"
    envkit.settle(2)
    assert not read(kube, created)["spec"].get("nodeName")  # gated: the scheduler waits
    posted(kube, created, "Deferred")


@pytest.mark.usefixtures("webhook_operator")
def test_a_pod_due_now_is_released_and_bound_inside_its_site(kube: Kube) -> None:
    created = kube.create(pod("now", duration="30m", max_delay="8h", sites="gansu"))
    assert {"name": GATE} in created["spec"]["schedulingGates"]
    bound = wait_for(lambda: (p := read(kube, created))["spec"].get("nodeName") and p,
                     timeout=60, what="the pod released and bound")
    assert not bound["spec"].get("schedulingGates")
    assert bound["spec"]["nodeName"].startswith("gansu-")
    posted(kube, created, "Started")


@pytest.mark.usefixtures("webhook_operator")
def test_pods_that_do_not_opt_in_never_reach_the_webhook(kube: Kube) -> None:
    created = kube.create(pod("plain", managed=False))
    assert not created["spec"].get("schedulingGates")


@pytest.mark.usefixtures("webhook_operator")
def test_another_gate_such_as_kueues_is_never_removed_and_the_event_names_it(
        kube: Kube) -> None:
    """Kueue gates the Pods it manages with kueue.x-k8s.io/admission: Suandian removes
    only its own gate (a JSON patch that tests the list first), so the Pod is released
    by neither while the other still holds it."""
    manifest = pod("both", duration="30m", max_delay="8h", sites="gansu")
    manifest["spec"]["schedulingGates"] = [{"name": "kueue.x-k8s.io/admission"}]
    created = kube.create(manifest)
    assert [g["name"] for g in created["spec"]["schedulingGates"]] == [
        "kueue.x-k8s.io/admission", GATE]
    released = wait_for(lambda: (p := read(kube, created))["spec"].get("schedulingGates") == [
        {"name": "kueue.x-k8s.io/admission"}] and p, timeout=60, what="our gate removed")
    assert not released["spec"].get("nodeName")  # Kueue's gate still holds it
    started = wait_for(lambda: [e for e in events_of(kube, created) if e["reason"] == "Started"],
                       timeout=30, what="the Started event")
    assert "still held by kueue.x-k8s.io/admission" in started[0]["message"]

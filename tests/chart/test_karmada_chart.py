"""Karmada mode in the chart: two releases of it (docs/karmada.md). The control-plane part
goes into the Karmada API server with RBAC for exactly what the mode calls there and no
Pods; the operator part runs the Deployment with the Karmada kubeconfig and writes nothing
to the host's API. (The real-Karmada tier runs the operator with this RBAC and checks
the audit log: tests/envtest/test_karmada.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from chart.chartkit import NAMESPACE, Obj, find, one, problems

Render = Any
CONTROL_PLANE = {"operator": {"mode": "karmada"}}
OPERATOR = {"operator": {"mode": "karmada", "karmada": {"kubeconfigSecret": "karmada-kc"}}}
PODS = {"Deployment", "Service", "PodDisruptionBudget", "Job", "MutatingWebhookConfiguration",
        "Certificate", "Issuer", "ServiceMonitor", "PrometheusRule"}


def granted(objects: list[Obj]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for role in find(objects, "ClusterRole") + find(objects, "Role"):
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


@pytest.mark.parametrize("values", [CONTROL_PLANE, OPERATOR], ids=["control-plane", "operator"])
def test_both_parts_are_valid_kubernetes(render: Render, values: dict[str, Any]) -> None:
    objects = render(values)
    invalid = {f"{o['kind']}/{o['metadata']['name']}": problems(o) for o in objects}
    assert {k: v for k, v in invalid.items() if v} == {}


def test_the_control_plane_part_grants_exactly_what_karmada_mode_calls(render: Render) -> None:
    objects = render({**CONTROL_PLANE, "serviceMonitor": {"enabled": True},
                      "prometheusRule": {"enabled": True}})
    assert {o["kind"] for o in objects} & PODS == set()  # the Karmada API server runs no Pods
    rules = granted(objects)
    assert rules[("cluster.karmada.io", "clusters")] == {"list", "watch"}
    assert rules[("policy.karmada.io", "propagationpolicies")] == {"get", "create", "patch"}
    assert ("batch", "jobs") in rules and ("suandian.io", "computejobs") in rules
    assert not any(group.endswith("karmada.io") and resource not in (
        "clusters", "propagationpolicies") for group, resource in rules)
    assert not any(group == "kueue.x-k8s.io" for group, _ in rules)
    token = one(objects, "Secret")
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == one(
        objects, "ServiceAccount")["metadata"]["name"]
    assert find(objects, "ClusterKopfPeering")


def test_the_operator_part_runs_on_the_karmada_kubeconfig_and_writes_nothing_here(
        render: Render) -> None:
    objects = render(OPERATOR)
    assert granted(objects) == {}
    assert not find(objects, "ClusterKopfPeering") and not find(objects, "PowerSite")
    assert not find(objects, "MutatingWebhookConfiguration")  # no Pods in Karmada to gate
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert "--kubeconfig=/etc/suandian/karmada/kubeconfig" in container["args"]
    assert not any(a.startswith("--webhook") for a in container["args"])
    assert {"name": "SUANDIAN_MODE", "value": "karmada"} in container["env"]
    volume = next(v for v in pod["volumes"] if v["name"] == "karmada-kubeconfig")
    assert volume["secret"]["secretName"] == "karmada-kc"
    assert {"name": "karmada-kubeconfig", "mountPath": "/etc/suandian/karmada",
            "readOnly": True} in container["volumeMounts"]
    assert one(objects, "Service")["metadata"]["namespace"] == NAMESPACE


def test_other_modes_render_as_before(render: Render) -> None:
    objects = render({})
    assert one(objects, "Deployment") and find(objects, "MutatingWebhookConfiguration")
    assert not any(group.endswith("karmada.io") for group, _ in granted(objects))
    assert not find(objects, "Secret")

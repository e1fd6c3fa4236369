"""The chart's roles for users, on the real API server: its ClusterRole aggregation
controller folds them into Kubernetes' default ``view``, ``edit`` and ``admin`` roles.

Alice may ``edit`` in her team's namespace only (a RoleBinding of the default role, as
platform teams grant it): she submits ComputeJobs there and nowhere else, never writes
their status, and asks nothing of the grid. The grid's operations identity, bound to
``<release>-grid-requester`` cluster-wide, writes GridEvents and reads the sites.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.envtest import envkit
from tests.support.controlplane import ControlPlane
from tests.support.kube import Kube, KubeError, wait_for
from tests.support.objects import computejob

from suandian.k8s.decision import format_time

TEAM, OTHER, GRID_NS = "team-a", "team-b", "grid-ops"
RBAC = "rbac.authorization.k8s.io"


def _identity(admin: Kube, plane: ControlPlane, namespace: str, name: str,
              binding: dict[str, Any]) -> Kube:
    """A ServiceAccount with ``binding`` (its subject filled in), and a client as it."""
    subject = {"kind": "ServiceAccount", "name": name, "namespace": namespace}
    admin.apply_all([{"apiVersion": "v1", "kind": "ServiceAccount",
                      "metadata": {"name": name, "namespace": namespace}},
                     {**binding, "subjects": [subject]}])
    return Kube(plane.url, admin.service_account_token(namespace, name), ca_file=plane.ca_file)


def _refused(call: Any) -> int:
    with pytest.raises(KubeError) as refused:
        call()
    return refused.value.status


def _aggregated(admin: Kube, role: str, resource: str, verb: str) -> bool:
    found = admin.get(f"/apis/{RBAC}/v1/clusterroles/{role}") or {}
    return any("suandian.io" in r.get("apiGroups", ()) and resource in r.get("resources", ())
               and verb in r.get("verbs", ()) for r in found.get("rules") or ())


def test_the_default_roles_carry_computejobs_and_the_grid_requester_writes_events(
        control_plane: ControlPlane, kube: Kube) -> None:
    for ns in (TEAM, OTHER, GRID_NS):
        envkit.namespace(kube, ns)
    wait_for(lambda: _aggregated(kube, "edit", "computejobs", "create")
             and _aggregated(kube, "view", "computejobs", "list"), timeout=30,
             what="the chart's roles aggregated into edit and view")
    alice = _identity(kube, control_plane, TEAM, "alice", {
        "apiVersion": f"{RBAC}/v1", "kind": "RoleBinding",
        "metadata": {"name": "alice-edit", "namespace": TEAM},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "edit"}})
    made = alice.create(computejob("by-alice", namespace=TEAM, sites=["ningxia"]))
    assert made["metadata"]["namespace"] == TEAM
    path = f"/apis/suandian.io/v1alpha1/namespaces/{TEAM}/computejobs/by-alice"
    assert alice.get(path) is not None
    assert _refused(lambda: alice.create(computejob("elsewhere", namespace=OTHER))) == 403
    assert _refused(lambda: alice.patch(f"{path}/status", {"status": {"phase": "Running"}})
                    ) == 403
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    event = {"apiVersion": "suandian.io/v1alpha1", "kind": "GridEvent",
             "metadata": {"name": "user-roles-peak"},
             "spec": {"type": "Shed", "sites": ["jiangsu"], "start": format_time(start),
                      "end": format_time(start + timedelta(hours=2)),
                      "shed": {"ceilingKW": 0.0}, "source": "Webhook"}}
    assert _refused(lambda: alice.create(event)) == 403
    grid = _identity(kube, control_plane, GRID_NS, "vpp", {
        "apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "vpp-grid-requester"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole",
                    "name": "suandian-grid-requester"}})
    gev = "/apis/suandian.io/v1alpha1/gridevents/user-roles-peak"
    try:
        assert grid.create(event)["spec"]["source"] == "Webhook"
        assert grid.patch(gev, {"spec": {"priority": 10}})["spec"]["priority"] == 10
        assert grid.list("/apis/suandian.io/v1alpha1/powersites")
        assert _refused(lambda: grid.patch(f"{gev}/status", {"status": {"phase": "Active"}})
                        ) == 403
        assert _refused(lambda: grid.create(computejob("by-vpp", namespace=GRID_NS))) == 403
    finally:
        kube.delete(gev)
        kube.delete(path)

"""With ``OwnerReferencesPermissionEnforcement`` (on by default in OpenShift and
MicroShift): only who may update an owner's ``finalizers`` may set ``blockOwnerDeletion``
on a reference to it, which the child Job's owner reference does.

A control plane of its own, with the plugin on, the chart's RBAC and the operator as
the chart's ServiceAccount. Before the chart granted ``update`` on
``computejobs/finalizers`` every child Job was refused here (403) and every ComputeJob
stayed with an empty status.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from tests.envtest import envkit
from tests.envtest.conftest import require
from tests.envtest.envkit import child_of, status_of
from tests.support.controlplane import ControlPlane, missing
from tests.support.kube import Kube, KubeError, wait_for
from tests.support.objects import computejob
from tests.support.process import OperatorProcess

PLUGIN = "OwnerReferencesPermissionEnforcement"
NS = "envtest-ownerrefs"


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    require(missing())
    plane = ControlPlane(tmp_path_factory.mktemp("ownerrefs-plane"), admission_plugins=[PLUGIN],
                         name="ownerrefs")
    start = datetime.now(UTC).replace(microsecond=0)
    try:
        plane.start(setup=lambda kube: envkit.set_up(kube, start))
        envkit.namespace(plane.admin(), NS)
        yield plane
    finally:
        plane.stop()


def test_the_plugin_refuses_block_owner_deletion_without_the_finalizers_grant(
        plane: ControlPlane) -> None:
    """The server really enforces it: an identity with create on Jobs but no update on
    computejobs/finalizers may not make a Job that blocks its ComputeJob's deletion."""
    admin = plane.admin()
    cj = admin.create(computejob("owner", namespace=NS, sites=["ningxia"]))
    admin.apply_all([
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "no-finalizers", "namespace": NS}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "jobs-only", "namespace": NS},
         "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "jobs-only", "namespace": NS},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "jobs-only"},
         "subjects": [{"kind": "ServiceAccount", "name": "no-finalizers", "namespace": NS}]},
    ])
    token = admin.service_account_token(NS, "no-finalizers")
    limited = Kube(plane.url, token, ca_file=plane.ca_file)
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "blocker", "namespace": NS, "ownerReferences": [{
               "apiVersion": "suandian.io/v1alpha1", "kind": "ComputeJob", "name": "owner",
               "uid": cj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]},
           "spec": {"suspend": True, "template": {"spec": {
               "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}
    with pytest.raises(KubeError) as refused:
        limited.create(job)
    assert refused.value.status == 403
    assert "cannot set blockOwnerDeletion" in refused.value.message


def test_the_chart_lets_the_operator_create_child_jobs(plane: ControlPlane,
                                                       tmp_path_factory: pytest.TempPathFactory
                                                       ) -> None:
    workdir = tmp_path_factory.mktemp("ownerrefs-operator")
    kubeconfig = envkit.operator_kubeconfig(plane, workdir / "kubeconfig")
    kube = plane.admin()
    with OperatorProcess(kubeconfig, workdir, env={"SUANDIAN_RETRY_DELAY": "1"}):
        cj = kube.create(computejob("child", namespace=NS, sites=["gansu"]))
        status = wait_for(lambda: (s := status_of(kube, cj)).get("phase") == "Running" and s,
                          timeout=60, what="the job Running")
        child = child_of(kube, cj)
        assert child is not None and child["metadata"]["ownerReferences"][0][
            "blockOwnerDeletion"] is True
        assert status["jobName"] == "child"
    user = f"system:serviceaccount:{envkit.NAMESPACE}:{envkit.SERVICE_ACCOUNT}"
    forbidden = [e["objectRef"] for e in plane.audit_events()
                 if e["user"]["username"] == user and e["responseStatus"].get("code") == 403]
    assert forbidden == []

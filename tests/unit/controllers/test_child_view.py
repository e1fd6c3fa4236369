"""What the operator keeps of its child Jobs (and of listed Nodes and Pods): exactly the
fields something reads, pruned in one pure function each (``controllers/view.py``).

The readers, all of them: the ComputeJob step (name, namespace, the site label, the
run-seconds and resumed-at annotations, ``spec.suspend``, ``status.startTime``,
``completionTime``, ``active`` and the conditions' type and status, through
``job_state`` and ``has_started``), completion accounting (the site label, start and
completion times), the backends (native: ``spec.suspend``; Kueue: its
``admission-gated-by`` annotation and the uid for the Workload), the Job feed
(the namespace). A move rebuilds the affinity from the ComputeJob's template, never
from the child's, so no pod template is kept.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.support.served import samples

from suandian.backends.kueue import GATED_BY, KueueBackend, gates_of
from suandian.backends.native import NativeBackend
from suandian.controllers.view import (
    CHILD_ANNOTATIONS,
    ClusterCache,
    child_view,
    listed_child,
    listed_node,
    listed_pod,
    node_record,
    pod_request_record,
)
from suandian.k8s.jobs import job_state


def served_child(kind: str = "deferred") -> dict[str, Any]:
    return copy.deepcopy(samples()[kind]["job"])


def test_these_fields_of_a_served_child_job_survive_and_nothing_else() -> None:
    job = served_child("running")
    job["metadata"]["annotations"]["suandian.io/run-seconds"] = "600"
    job["status"]["conditions"] = [{"type": "Complete", "status": "True", "reason": "Done",
                                    "message": "Job completed", "lastProbeTime": "t",
                                    "lastTransitionTime": "t"}]
    job["status"]["completionTime"] = "2026-12-01T15:56:08Z"
    assert child_view(job) == {
        "metadata": {"name": "running", "namespace": "batch",
                     "uid": "7ba4942e-1bb6-4a13-8f22-12d58b1867ab",
                     "labels": {"suandian.io/site": "gansu"},
                     "annotations": {"suandian.io/run-seconds": "600",
                                     "suandian.io/resumed-at": "2026-12-01T13:56:08Z"}},
        "spec": {"suspend": False},
        "status": {"startTime": "2026-12-01T13:56:08Z", "active": 1,
                   "completionTime": "2026-12-01T15:56:08Z",
                   "conditions": [{"type": "Complete", "status": "True"}]},
    }


def test_a_deferred_child_is_a_few_hundred_bytes_of_text() -> None:
    cache = ClusterCache()
    cache.set_child("owner", served_child())
    assert len(cache.child_jobs["owner"]) < 300  # of a served Job of 4.7 KB of JSON
    assert cache.child("owner") == child_view(served_child())


@pytest.mark.parametrize("status", [
    {"conditions": [{"type": "Complete", "status": "True"}]},
    {"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]},
    {"conditions": [{"type": "FailureTarget", "status": "True"}]},
    {"conditions": [{"type": "Failed", "status": "False"}], "active": 1},
    {"conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended"}]},
    {"startTime": "2026-12-01T13:56:08Z"},
    {},
])
@pytest.mark.parametrize("suspend", [True, False])
def test_every_reader_reads_the_view_as_it_reads_the_job(status: dict[str, Any],
                                                        suspend: bool) -> None:
    job = served_child()
    job["spec"]["suspend"] = suspend
    job["status"] = {**job["status"], **copy.deepcopy(status)}
    job["metadata"]["annotations"][GATED_BY] = "suandian.io/green-window,other"
    view = child_view(job, (*CHILD_ANNOTATIONS, *KueueBackend.kept_annotations))
    assert job_state(view) == job_state(job)
    assert NativeBackend().released(view) == NativeBackend().released(job)
    assert gates_of(view) == gates_of(job) == ["suandian.io/green-window", "other"]
    assert KueueBackend().released(view) == KueueBackend().released(job)
    assert view["metadata"]["uid"] == job["metadata"]["uid"]
    assert child_view(view, (*CHILD_ANNOTATIONS, GATED_BY)) == view  # pruning twice: same


def test_a_listed_child_keeps_its_owner_and_version_until_the_list_is_in() -> None:
    job = served_child()
    listed = listed_child(job)
    assert listed["metadata"]["annotations"]["suandian.io/computejob-uid"] == (
        job["metadata"]["annotations"]["suandian.io/computejob-uid"])
    assert listed["metadata"]["resourceVersion"] == job["metadata"]["resourceVersion"]
    cache, direct = ClusterCache(), ClusterCache()
    cache.set_child("o", listed)
    direct.set_child("o", job)
    assert cache.child_jobs == direct.child_jobs
    assert cache.child_versions == direct.child_versions == {"o": 298}


def test_listed_nodes_and_pods_give_the_same_records_as_served_ones() -> None:
    node = {"metadata": {"name": "n1", "uid": "x", "labels": {"topology.kubernetes.io/region":
                                                             "gansu"},
                         "managedFields": [{"x": "y" * 500}]},
            "spec": {"unschedulable": True, "podCIDR": "10.0.0.0/24"},
            "status": {"allocatable": {"cpu": "63800m", "memory": "256Gi", "pods": "110"},
                       "images": [{"names": ["a"], "sizeBytes": 1}]}}
    assert node_record("n1", listed_node(node)) == node_record("n1", node)
    assert set(listed_node(node)["status"]) == {"allocatable"}
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "p1", "labels": {"a": "b"}},
           "spec": {"nodeName": "n1", "containers": [
               {"name": "c", "image": "i", "resources": {"requests": {"cpu": "2"}},
                "env": [{"name": "X", "value": "y" * 500}]},
               {"name": "d", "image": "i"}]},
           "status": {"phase": "Running", "conditions": []}}
    assert pod_request_record(listed_pod(pod)) == pod_request_record(pod) == {"cpu": 2.0}
    assert listed_pod(pod)["metadata"] == {"name": "p", "namespace": "ns", "uid": "p1"}


def test_node_labels_are_shared_between_nodes() -> None:
    def node(name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": {
            "topology.kubernetes.io/region": "".join(["gan", "su"])}}}

    a, b = node_record("a", node("a")), node_record("b", node("b"))
    (key_a, value_a), = a.labels.items()
    (key_b, value_b), = b.labels.items()
    assert key_a is key_b and value_a is value_b

"""The emulator behaves like an API server where the operator relies on it."""

from __future__ import annotations

import pytest
from tests.support.objects import CJ, JOBS

BASE = "/apis/suandian.io/v1alpha1/namespaces/batch/computejobs"
MERGE = {"Content-Type": "application/merge-patch+json", "Connection": "close"}


async def test_metadata_generation_and_status_subresource(api):
    async with api.post(BASE, json={"apiVersion": "suandian.io/v1alpha1", "kind": "ComputeJob",
                                    "metadata": {"generateName": "cj-"}, "spec": {"a": 1},
                                    "status": {"phase": "Running"}}) as resp:
        created = await resp.json()
    meta = created["metadata"]
    name = meta["name"]
    assert name.startswith("cj-") and meta["namespace"] == "batch" and meta["uid"]
    assert meta["generation"] == 1 and "status" not in created
    async with api.patch(f"{BASE}/{name}/status", json={"status": {"phase": "Deferred"},
                                                          "spec": {"a": 2}},
                         headers=MERGE) as resp:
        after_status = await resp.json()
    assert after_status["status"] == {"phase": "Deferred"} and after_status["spec"] == {"a": 1}
    assert after_status["metadata"]["generation"] == 1
    async with api.patch(f"{BASE}/{name}", json={"spec": {"a": 3}, "status": {"phase": "X"}},
                         headers=MERGE) as resp:
        after_spec = await resp.json()
    assert after_spec["metadata"]["generation"] == 2
    assert after_spec["status"] == {"phase": "Deferred"}
    assert int(after_spec["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    stale = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "spec": {"a": 4}}
    async with api.patch(f"{BASE}/{name}", json=stale, headers=MERGE) as resp:
        assert resp.status == 409


async def test_a_generated_name_in_use_is_drawn_again(api, monkeypatch):
    """kube-apiserver retries a ``generateName`` whose random suffix is taken (1.32,
    RetryGenerateName); without it, kopf's Events collided in the operator benchmark."""
    from tests.support import emulator

    draws = iter(["aaaaa", "aaaaa", "bbbbb"])
    monkeypatch.setattr(emulator.random, "choices", lambda *_, k: list(next(draws)))
    names = []
    for _ in range(2):
        async with api.post(BASE, json={"apiVersion": "suandian.io/v1alpha1",
                                        "kind": "ComputeJob", "metadata": {"generateName": "cj-"},
                                        "spec": {}}) as resp:
            assert resp.status == 201
            names.append((await resp.json())["metadata"]["name"])
    assert names == ["cj-aaaaa", "cj-bbbbb"]


async def test_injected_faults_are_not_applied_and_deletion_collects_dependents(api):
    owner = api.create(CJ, {"metadata": {"name": "o", "namespace": "batch"}, "spec": {}})
    api.create(JOBS, {"metadata": {"name": "o", "namespace": "batch", "ownerReferences": [
        {"uid": owner["metadata"]["uid"], "kind": "ComputeJob", "name": "o"}]}, "spec": {}})
    api.fail(action="update", plural="computejobs", status=500)
    async with api.patch(f"{BASE}/o", json={"spec": {"x": 1}}, headers=MERGE) as resp:
        assert resp.status == 500
    assert api.read(CJ, "batch", "o")["spec"] == {}
    async with api.delete(f"{BASE}/o", headers={"Connection": "close"}) as resp:
        assert resp.status == 200
    assert api.read(CJ, "batch", "o") is None
    assert api.read(JOBS, "batch", "o") is None


@pytest.mark.looptime
async def test_watch_resumes_from_the_given_resource_version(api):
    api.create(CJ, {"metadata": {"name": "a", "namespace": "batch"}, "spec": {}})
    async with api.get(BASE, headers={"Connection": "close"}) as resp:
        listed = await resp.json()
    rv = listed["metadata"]["resourceVersion"]
    api.create(CJ, {"metadata": {"name": "b", "namespace": "batch"}, "spec": {}})
    params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "5"}
    async with api.get(BASE, params=params, headers={"Connection": "close"}) as resp:
        lines = [line for line in (await resp.text()).splitlines() if line.strip()]
    assert len(lines) == 1 and '"name": "b"' in lines[0]
    api._logs[next(iter(api._logs))].compacted = 10**6
    params["resourceVersion"] = "1"
    async with api.get(BASE, params=params, headers={"Connection": "close"}) as resp:
        assert '"code": 410' in await resp.text()


async def test_lists_come_in_pages_of_one_snapshot_when_a_limit_is_asked(api):
    for i in range(5):
        api.create(CJ, {"metadata": {"name": f"j{i}", "namespace": "batch"}, "spec": {}})
    async with api.get(BASE, params={"limit": "2"}, headers={"Connection": "close"}) as resp:
        first = await resp.json()
    token, rv = first["metadata"]["continue"], first["metadata"]["resourceVersion"]
    api.create(CJ, {"metadata": {"name": "late", "namespace": "batch"}, "spec": {}})
    names = [o["metadata"]["name"] for o in first["items"]]
    while token:
        params = {"limit": "2", "continue": token}
        async with api.get(BASE, params=params, headers={"Connection": "close"}) as resp:
            page = await resp.json()
        assert page["metadata"]["resourceVersion"] == rv  # the same snapshot
        names += [o["metadata"]["name"] for o in page["items"]]
        token = page["metadata"].get("continue")
    assert sorted(names) == [f"j{i}" for i in range(5)]  # "late" is for the watch
    params = {"limit": "2", "continue": "used-up"}
    async with api.get(BASE, params=params, headers={"Connection": "close"}) as resp:
        assert resp.status == 410

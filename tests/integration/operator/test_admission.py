"""Scenarios: invalid ComputeJobs, the gating webhook, gated Pods released on time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp
import kopf
import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, JOBS, PODS, PSITES, computejob, eventually
from tests.support.operator import free_port, running_operator

pytestmark = pytest.mark.looptime

REGION = "topology.kubernetes.io/region"
GATE = "suandian.io/green-window"


def site(api, cluster, green):  # type: ignore[no-untyped-def]
    cluster.add_node("ningxia-1", {REGION: "ningxia"})
    api.create(PSITES, powersite("ningxia", "ningxia"))
    return {"ningxia": ScriptedProvider(green)}


def pod(name, labels=None, annotations=None, gated=True):  # type: ignore[no-untyped-def]
    spec = {"containers": [{"name": "main", "image": "busybox",
                            "resources": {"requests": {"cpu": "1"}}}]}
    if gated:
        spec["schedulingGates"] = [{"name": GATE}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "batch", "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": spec}


async def wait_for_port(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"nothing listens on {port}")


def review(obj, uid="r-1"):  # type: ignore[no-untyped-def]
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "operation": "CREATE",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "batch", "name": obj["metadata"]["name"],
        "userInfo": {"username": "alice"}, "object": obj, "dryRun": False}}


async def test_invalid_computejob_gets_condition_and_event_and_nothing_else(api, cluster, clock):
    providers = site(api, cluster, lambda t: 1000.0)
    bad = computejob("bad", max_delay="-5h")
    bad["spec"]["durationn"] = "1h"
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(CJ, bad)
        status = await eventually(lambda: api.read(CJ, "batch", "bad").get("status"),
                                  what="a status")
        await asyncio.sleep(600)
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert valid["status"] == "False" and valid["reason"] == "InvalidSpec"
    assert "spec.durationn" in valid["message"]
    assert "spec.deadline.maxDelay" in valid["message"]
    warnings = [e for e in api.items("v1/events") if e["reason"] == "InvalidSpec"]
    assert warnings and warnings[0]["type"] == "Warning"
    assert api.items(JOBS) == []


async def test_webhook_gates_labelled_pods_only_and_survives_garbage(api, cluster, clock):
    providers = site(api, cluster, lambda t: 1000.0)
    port = free_port()
    url = f"http://127.0.0.1:{port}/green-window"
    async with running_operator(api, clock, keeper_factory(providers), webhook_port=port):
        headers = {"Connection": "close"}
        await wait_for_port(port)
        async with aiohttp.ClientSession() as http:
            labelled = review(pod("p1", labels={"suandian.io/managed": "true"}, gated=False))
            async with http.post(url, json=labelled, headers=headers) as resp:
                answer = await resp.json()
            plain = review(pod("p2", gated=False), uid="r-2")
            async with http.post(url, json=plain, headers=headers) as resp:
                untouched = await resp.json()
            async with http.post(url, data=b"{not json", headers=headers) as resp:
                garbage_status = resp.status
            async with http.post(url, json={"kind": "AdmissionReview"},
                                 headers=headers) as resp:
                empty_status = resp.status
            async with http.post(url, json=labelled, headers=headers) as resp:
                still_serving = resp.status
    assert answer["response"]["allowed"] is True and answer["response"]["uid"] == "r-1"
    import base64
    import json
    ops = json.loads(base64.b64decode(answer["response"]["patch"]))
    assert {"op": "add", "path": "/spec/schedulingGates", "value": [{"name": GATE}]} in ops
    assert untouched["response"]["allowed"] is True and "patch" not in untouched["response"]
    assert garbage_status >= 400 and empty_status >= 400
    assert still_serving == 200


class HeldWebhook(kopf.WebhookServer):
    """kopf's server, which binds its socket only once the test lets it (as if kopf's
    discovery of the API's resources took that long)."""

    def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.go = asyncio.Event()

    async def __call__(self, fn):  # type: ignore[no-untyped-def]
        await self.go.wait()
        async for config in super().__call__(fn):
            yield config


async def health(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def test_the_probe_fails_until_the_webhook_listens(api, cluster, clock, caplog):
    providers = site(api, cluster, lambda t: 1000.0)
    port, probe = free_port(), f"http://127.0.0.1:{free_port()}/healthz"
    held = HeldWebhook(addr="127.0.0.1", port=port, insecure=True)
    async with running_operator(api, clock, keeper_factory(providers), webhook=held,
                                liveness_endpoint=probe):
        await asyncio.sleep(30)
        before = await health(probe)
        with pytest.raises(OSError):  # nothing listens: admission reviews are refused
            await asyncio.open_connection("127.0.0.1", port)
        held.go.set()
        await wait_for_port(port)
        after = await health(probe)
    assert before[0] == 500, before  # not ready: no review reaches a pod that cannot gate
    assert "the admission webhook does not listen yet" in caplog.text
    assert after[0] == 200, after
    assert f'"webhook": "listening on 127.0.0.1:{port}"' in after[1]


async def test_gated_pod_is_pinned_and_released_at_its_planned_start(api, cluster, clock):
    four = clock.start + timedelta(hours=4)
    providers = site(api, cluster, lambda t: 1000.0 if t >= four else 0.0)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(PODS, pod("batchy", labels={"suandian.io/managed": "true"}, annotations={
            "suandian.io/duration": "1h", "suandian.io/max-delay": "10h",
            "suandian.io/power-watts": "20000"}))
        placed = await eventually(
            lambda: (p := api.read(PODS, "batch", "batchy"))
            and "suandian.io/site" in p["metadata"].get("annotations", {}) and p,
            what="placement")
        assert placed["spec"]["schedulingGates"] == [{"name": GATE}]
        term = placed["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        assert {"key": REGION, "operator": "In", "values": ["ningxia"]} in term["matchExpressions"]
        await eventually(lambda: cluster.bindings, timeout=6 * 3600, step=60, what="binding")
    name, node, when = cluster.bindings[0]
    assert (name, node) == ("batchy", "ningxia-1")
    assert abs(when - four) < timedelta(minutes=2)


async def test_invalid_pod_annotations_release_the_pod_at_once(api, cluster, clock):
    providers = site(api, cluster, lambda t: 0.0)
    plain = pod("plain", gated=False)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(PODS, plain)
        api.create(PODS, pod("odd", labels={"suandian.io/managed": "true"},
                             annotations={"suandian.io/duration": "soon"}))
        await eventually(lambda: cluster.bindings and len(cluster.bindings) == 2, timeout=60,
                         what="both pods bound")
    odd = api.read(PODS, "batch", "odd")
    assert odd["spec"]["schedulingGates"] == []
    warning = [e for e in api.items("v1/events") if e["reason"] == "InvalidAnnotations"]
    assert warning and "suandian.io/duration" in warning[0]["message"]
    plain_requests = [r for r in api._requests
                      if r.method.value == "PATCH" and r.url.path.endswith("/pods/plain")]
    assert plain_requests == []

"""The learned power model in the running operator: finished ComputeJobs' measurements,
listed at start (as after a restart), teach their template; a new job of that template
without ``spec.power`` is planned at the learned watts and its status says so; a job of
another shape keeps the estimate from its requests."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, PSITES, computejob, eventually
from tests.support.operator import running_operator

from suandian.api.validation import parse_computejob
from suandian.controllers.book import power_estimate
from suandian.measure.learned import PowerModel
from suandian.planner import JobTerms, estimate_power_w
from suandian.units import parse_time

pytestmark = pytest.mark.looptime

REGION = "topology.kubernetes.io/region"


def unpowered(name: str, cpu: str = "4") -> dict[str, Any]:
    body = computejob(name, cpu=cpu, duration="2h", max_delay="6h")
    del body["spec"]["power"]
    return body


def template_of(body: dict[str, Any]) -> str:
    body = {**body, "metadata": {**body["metadata"], "uid": "x",
                                 "creationTimestamp": "2026-06-21T00:00:00Z"}}
    terms = JobTerms.from_computejob(parse_computejob(
        body, created=parse_time("2026-06-21T00:00:00Z")))
    return power_estimate(PowerModel(), body, terms)[1].template


async def test_a_restarted_operator_plans_a_job_at_its_template_s_measured_watts(
        api: Any, cluster: Any, clock: Any) -> None:
    cluster.add_node("gansu-1", {REGION: "gansu"})
    api.create(PSITES, powersite("gansu", "gansu"))  # PUE 1.2
    template = template_of(unpowered("train"))
    for i, watts in enumerate((480.0, 520.0, 500.0)):
        api.create(CJ, unpowered(f"train-{i}"))
        api.change(CJ, "batch", f"train-{i}", {"status": {
            "phase": "Succeeded", "measurement": {
                "provenance": "measured", "exporters": ["kepler"], "measuredShare": 1.0,
                "itEnergyKWh": watts * 2 / 1000, "pue": 1.2, "measuredWatts": watts,
                "template": template}}}, subresource="status")
    provider = ScriptedProvider(lambda t: 0.0)
    async with running_operator(api, clock, keeper_factory({"gansu": provider})):
        api.create(CJ, unpowered("train-next"))
        api.create(CJ, unpowered("wider", cpu="16"))
        learned = await eventually(lambda: (s := api.read(CJ, "batch", "train-next").get(
            "status")) and s.get("powerEstimate") and s, what="the next job's plan")
        other = await eventually(lambda: (s := api.read(CJ, "batch", "wider").get(
            "status")) and s.get("powerEstimate") and s, what="the other job's plan")
    assert learned["powerEstimate"] == {"source": "learned", "watts": 500.0, "runs": 3,
                                        "template": template}
    assert learned["energyKWh"] == pytest.approx(0.5 * 2 * 1.2)  # 500 W, 2 h, PUE 1.2
    default_w = estimate_power_w({"cpu": 16, "memory": 1})
    assert other["powerEstimate"]["source"] == "default"
    assert other["powerEstimate"]["watts"] == pytest.approx(default_w, abs=0.1)
    assert other["energyKWh"] == pytest.approx(default_w / 1000 * 2 * 1.2, rel=1e-3)

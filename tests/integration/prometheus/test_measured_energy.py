"""Measured energy from a real Prometheus holding Kepler and DCGM-exporter series.

The series are backfilled at past times (``promtool tsdb create-blocks-from
openmetrics``, :mod:`.exporters`) in the exporters' real names and labels; finished jobs
go through the controller's completion (:func:`suandian.controllers.completion.finish`),
which reads them and writes the status. Every expected figure is computed here by hand
from the synthetic watts and the site's quarter-hourly observations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from tests.support.forecasts import powersite
from tests.support.objects import computejob

from integration.prometheus.exporters import Backfill
from integration.prometheus.promkit import PrometheusServer, require_binary
from suandian.api.validation import parse_powersite
from suandian.config import Settings
from suandian.controllers import completion
from suandian.controllers.clock import LoopClock
from suandian.controllers.context import Context, Sample
from suandian.controllers.jobacts import JobActs
from suandian.controllers.next_action import Child
from suandian.controllers.planning import SiteEntry
from suandian.k8s.decision import format_time
from suandian.k8s.jobs import LABEL_SITE
from suandian.measure.prometheus import MeasureConfig

pytestmark = pytest.mark.prometheus

Q = 900.0
BASE = (int(time.time()) // 900) * 900 - 48 * 3600  # two days ago, on a quarter hour
PUE = {"gansu": 1.2, "ningxia": 1.4}


def gansu(q: int) -> tuple[float, float, dict[str, float]]:
    """Quarter q's green share, grid intensity and green mix at gansu."""
    share = 0.5 if q % 4 in (0, 1) else 0.0
    return share, 500.0 + 10 * (q % 4), {"wind": 3.0, "solar": 2.0} if share else {}


def ningxia(q: int) -> tuple[float, float, dict[str, float]]:
    share = 1.0 if q % 3 == 0 else 0.25
    return share, 600.0, {"solar": 10.0 * share}


SITES: dict[str, Callable[[int], tuple[float, float, dict[str, float]]]] = {
    "gansu": gansu, "ningxia": ningxia}


def backfill() -> Backfill:
    b = Backfill()
    # alpha (gansu): CPU package 150 W + DRAM 30 W (core 100 W lies inside package), one
    # GPU at 600 W; beta on the same node and a namesake pod in another namespace
    a0, a1 = BASE + 600, BASE + 6000
    for zone, watts in (("package", 150.0), ("dram", 30.0), ("core", 100.0)):
        b.kepler_pod("alpha-x7k2p", "batch", zone, watts, a0, a1)
    b.kepler_pod("beta-q9w8e", "batch", "package", 500.0, a0, a1)
    b.kepler_pod("alpha-x7k2p", "other", "package", 900.0, a0, a1)
    b.dcgm("alpha-x7k2p", "batch", 0, 600.0, a0, a1)
    b.dcgm("beta-q9w8e", "batch", 1, 700.0, a0, a1)
    b.dcgm("", "", 2, 60.0, a0, a1, container="")  # an idle GPU: no pod
    # gamma (ningxia, an Indexed Job): Kepler restarts at +30 min; DCGM gone after 1 h
    g0, g1 = BASE + 7200, BASE + 14400
    b.kepler_pod("gamma-0-k3j4h", "batch", "package", 250.0, g0, g1, node="node-2",
                 restart=BASE + 9000)
    b.dcgm("gamma-0-k3j4h", "batch", 0, 400.0, g0, BASE + 10800, node="node-2")
    # delta: Kepler 0.7's container family, idle and dynamic, two containers
    d0, d1 = BASE + 16200, BASE + 18000
    for container, mode, watts in (("main", "dynamic", 80.0), ("main", "idle", 20.0),
                                   ("sidecar", "dynamic", 10.0), ("sidecar", "idle", 5.0)):
        b.kepler_container("delta-m2n3b", "batch", container, mode, watts, d0, d1)
    # eps: a DCGM exporter without the energy counter, power gauge only
    b.dcgm("eps-p4q5r", "batch", 0, 300.0, BASE + 19800, BASE + 21600, node="node-3",
           metric="DCGM_FI_DEV_POWER_USAGE")
    # train-1..4: one template, CPU only, 410/390/430/370 W
    for i, watts in enumerate((410.0, 390.0, 430.0, 370.0)):
        t0 = BASE + 23400 + i * 3600
        b.kepler_pod(f"train-{i + 1}-abcde", "batch", "package", watts, t0, t0 + 1800)
    return b


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def prometheus(prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory
                     ) -> AsyncIterator[str]:
    workdir = tmp_path_factory.mktemp("prom-exporters")
    backfill().into(require_binary("promtool"), workdir / "data", workdir)
    server = PrometheusServer(prometheus_binary, Path(workdir), [])
    try:
        async with aiohttp.ClientSession(headers={"Connection": "close"}) as session:
            for _ in range(240):
                if server.process.poll() is not None:
                    pytest.fail("prometheus exited:\n" + server.log.read_text())
                try:
                    async with session.get(f"{server.url}/api/v1/query", params={
                            "query": "count(kepler_pod_cpu_joules_total)",
                            "time": str(BASE + 3000)}) as rsp:
                        body = await rsp.json()
                        if rsp.status == 200 and body["data"]["result"]:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.25)
            else:
                pytest.fail("the backfilled series never became queryable")
        yield server.url
    finally:
        server.stop()


class Api:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch_computejob(self, ns: str, name: str, patch: dict[str, Any],
                               status: bool = False) -> None:
        self.patches.append(patch["status"])


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(BASE + seconds, UTC)


def context(url: str, **meter: Any) -> Context:
    ctx = Context(settings=Settings(), clock=LoopClock(at(0)), api=Api())  # type: ignore[arg-type]
    ctx.meter = MeasureConfig(url=url, interval_s=30.0, **meter)
    for name, fn in SITES.items():
        site = parse_powersite(powersite(name, name))
        site.spec.pue = PUE[name]
        ctx.sites[name] = SiteEntry(site=site, forecast=None)  # type: ignore[arg-type]
        for q in range(-4, 48):
            share, carbon, mix = fn(q)
            ctx.record_sample(name, Sample(at(q * Q), 10.0 * share, carbon, compute_kw=10.0,
                                           green_by_source_kw=mix))
    return ctx


@pytest.fixture(autouse=True)
def no_kopf_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("suandian.k8s.events.normal", lambda *a, **k: None)
    monkeypatch.setattr("suandian.k8s.events.warning", lambda *a, **k: None)


def job_body(name: str, uid: str, watts: float | None) -> dict[str, Any]:
    body = computejob(name, watts=watts or 1.0)
    if watts is None:
        del body["spec"]["power"]
    body["metadata"].update(uid=uid, generation=1,
                            creationTimestamp=format_time(at(-3600)))
    return body


async def finish(ctx: Context, name: str, site: str, start: float, end: float, *,
                 watts: float | None = 1000.0, indexed: bool = False) -> dict[str, Any]:
    """Complete a job that ran from ``start`` to ``end`` (seconds after BASE)."""
    body = job_body(name, f"uid-{name}", watts)
    body["status"] = {"phase": "Running", "site": site, "jobName": name,
                      "expectedGreenFraction": 0.3}
    record = ctx.book.observe(body)
    child = {"metadata": {"name": name, "namespace": "batch", "labels": {LABEL_SITE: site}},
             "spec": {"completionMode": "Indexed"} if indexed else {},
             "status": {"startTime": format_time(at(start)),
                        "completionTime": format_time(at(end))}}
    await completion.finish(JobActs(ctx, record, f"cj/uid-{name}"), child,
                            Child("Complete", ran_s=end - start), succeeded=True)
    return ctx.api.patches[-1]  # type: ignore[attr-defined,no-any-return]


def by_hand(site: str, pieces: list[tuple[float, float, float]]) -> dict[str, Any]:
    """The account of IT power ``pieces`` (start s, end s, W), quarter by quarter."""
    sources: dict[str, float] = {}
    total = emissions = it = 0.0
    for q in range(48):
        a, b = q * Q, (q + 1) * Q
        joules = sum(w * max(0.0, min(b, e) - max(a, s)) for s, e, w in pieces)
        if not joules:
            continue
        it += joules / 3.6e6
        kwh = joules / 3.6e6 * PUE[site]
        share, carbon, mix = SITES[site](q)
        green = kwh * share
        for k, v in mix.items():
            sources[k] = sources.get(k, 0.0) + green * v / sum(mix.values())
        sources["grid"] = sources.get("grid", 0.0) + kwh - green
        emissions += (kwh - green) * carbon
        total += kwh
    return {"it": it, "energy": total, "emissions": emissions, "sources": sources,
            "green": (total - sources["grid"]) / total}


def assert_account(status: dict[str, Any], expected: dict[str, Any]) -> None:
    m = status["measurement"]
    assert m["itEnergyKWh"] == pytest.approx(expected["it"], rel=1e-4)
    assert status["energyKWh"] == pytest.approx(expected["energy"], rel=1e-3, abs=1e-4)
    assert status["emissions"]["actualGrams"] == pytest.approx(expected["emissions"], abs=0.1)
    assert status["actualGreenFraction"] == pytest.approx(expected["green"], abs=1e-4)
    assert m["energyBySourceKWh"] == pytest.approx(
        {k: v for k, v in expected["sources"].items() if v > 0}, rel=1e-4)
    assert sum(m["energyBySourceKWh"].values()) == pytest.approx(status["energyKWh"],
                                                                 rel=1e-3)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_job_gets_only_its_own_pods_energy_on_a_shared_node(prometheus: str) -> None:
    ctx = context(prometheus)
    status = await finish(ctx, "alpha", "gansu", 600, 6000)
    m = status["measurement"]
    assert m["provenance"] == "measured" and m["exporters"] == ["dcgm", "kepler"]
    assert m["measuredShare"] == 1.0 and m["measuredWatts"] == pytest.approx(780.0, abs=0.1)
    assert_account(status, by_hand("gansu", [(600, 6000, 780.0)]))  # 150 + 30 + 600 W
    assert "energy measured by dcgm, kepler" in str(status["conditions"])


@pytest.mark.asyncio(loop_scope="module")
async def test_an_exporter_gone_mid_run_is_partly_modelled_and_a_restart_is_handled(
        prometheus: str) -> None:
    ctx = context(prometheus)
    status = await finish(ctx, "gamma", "ningxia", 7200, 14400, watts=1000.0, indexed=True)
    m = status["measurement"]
    # DCGM's last sample is at +10775 s: measured (250 + 400) W until then, the rest at
    # the declared 1000 W; Kepler's restart at +9000 s loses nothing
    measured, modelled = 650.0 * 3575, 1000.0 * (7200 - 3575)
    assert m["provenance"] == "partial" and m["exporters"] == ["dcgm", "kepler"]
    assert m["measuredShare"] == pytest.approx(measured / (measured + modelled), abs=1e-4)
    assert m["modelWatts"] == 1000.0 and "dcgm covered" in m["reason"]
    assert_account(status, by_hand("ningxia", [(7200, 10775, 650.0),
                                               (10775, 14400, 1000.0)]))
    assert "measured by dcgm, kepler, the rest modelled" in str(status["conditions"])


@pytest.mark.asyncio(loop_scope="module")
async def test_kepler_0_7_container_family_and_the_dcgm_power_gauge(prometheus: str) -> None:
    old = context(prometheus, exporters=("kepler",), kepler_metrics="container")
    status = await finish(old, "delta", "gansu", 16200, 18000)
    assert status["measurement"]["provenance"] == "measured"
    assert_account(status, by_hand("gansu", [(16200, 18000, 115.0)]))
    gauge = context(prometheus, exporters=("dcgm",))
    status = await finish(gauge, "eps", "gansu", 19800, 21600)
    assert status["measurement"]["exporters"] == ["dcgm"]
    assert_account(status, by_hand("gansu", [(19800, 21600, 300.0)]))


@pytest.mark.asyncio(loop_scope="module")
async def test_a_job_with_no_series_is_modelled_and_says_why(prometheus: str) -> None:
    ctx = context(prometheus)
    status = await finish(ctx, "ghost", "gansu", 600, 4200, watts=2000.0)
    m = status["measurement"]
    assert m["provenance"] == "modelled" and "no kepler or dcgm series" in m["reason"]
    assert_account(status, by_hand("gansu", [(600, 4200, 2000.0)]))


@pytest.mark.asyncio(loop_scope="module")
async def test_the_learned_estimate_converges_and_the_next_plan_uses_it(
        prometheus: str) -> None:
    ctx = context(prometheus)
    learned = []
    for i in range(4):
        t0 = 23400 + i * 3600
        status = await finish(ctx, f"train-{i + 1}", "gansu", t0, t0 + 1800, watts=None)
        assert status["measurement"]["provenance"] == "measured"
        template = status["measurement"]["template"]
        learned.append(ctx.power_model.estimate(template))
    assert [w for w, _ in learned] == pytest.approx([410.0, 400.0, 410.0, 400.0], abs=0.1)
    assert [n for _, n in learned] == [1, 2, 3, 4]
    # the next job of the template is planned at the learned watts, and says so
    record = ctx.book.observe(job_body("train-5", "uid-train-5", None))
    assert record.terms is not None and record.terms.power_w == pytest.approx(400.0, abs=0.1)
    acts = JobActs(ctx, record, "cj/uid-train-5")
    await acts.patch_status({"site": "gansu", "plannedStart": format_time(at(40000)),
                             "latestStart": format_time(at(50000))})
    estimate = ctx.api.patches[-1]["powerEstimate"]  # type: ignore[attr-defined]
    assert estimate == {"source": "learned", "watts": pytest.approx(400.0, abs=0.1),
                        "runs": 4, "template": template}
    # a restarted operator relearns from the finished jobs' status
    fresh = context(prometheus)
    for i in range(4):
        done = job_body(f"train-{i + 1}", f"uid-train-{i + 1}", None)
        done["status"] = {"phase": "Succeeded",
            "measurement": ctx.api.patches[i]["measurement"]}  # type: ignore[attr-defined]
        fresh.book.observe(done)
    again = fresh.book.observe(job_body("train-6", "uid-train-6", None))
    assert again.power is not None and again.power.source == "learned"
    assert again.power.runs == 4

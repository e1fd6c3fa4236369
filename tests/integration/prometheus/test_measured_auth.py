"""Measured energy from a real Prometheus that demands basic auth (``--web.config.file``):
the settings' user and password reach it and the job is measured; a wrong password is
refused, and the job is modelled, labelled ``Unauthorized``, and counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from integration.prometheus.exporters import Backfill
from integration.prometheus.promkit import PrometheusServer, require_binary
from integration.prometheus.test_measured_energy import BASE, by_hand, context, finish
from suandian import metrics
from suandian.config import Settings
from suandian.controllers.accounting import meter_from
from suandian.measure.prometheus import MeasureConfig

pytestmark = pytest.mark.prometheus

USER, PASSWORD = "reader", "green-watts"
HASH = "$2b$04$l/w8ZJYVxtX8M0iHHjfl8OuxK9N.jI0YON.2IGeUw80Bl5xOfBcle"  # bcrypt of PASSWORD


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def guarded(prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[str]:
    workdir = tmp_path_factory.mktemp("prom-auth")
    b = Backfill()
    b.kepler_pod("zeta-h7j8k", "batch", "package", 640.0, BASE + 600, BASE + 4200)
    b.into(require_binary("promtool"), workdir / "data", workdir)
    web = workdir / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {USER: HASH}}), encoding="utf-8")
    server = PrometheusServer(prometheus_binary, Path(workdir), [],
                              flags=(f"--web.config.file={web}",))
    auth = MeasureConfig(url=server.url, username=USER, password=PASSWORD).headers()
    try:
        async with aiohttp.ClientSession(headers={"Connection": "close"}) as session:
            for _ in range(240):
                if server.process.poll() is not None:
                    pytest.fail("prometheus exited:\n" + server.log.read_text())
                try:
                    async with session.get(f"{server.url}/api/v1/query", headers=auth, params={
                            "query": "count(kepler_pod_cpu_joules_total)",
                            "time": str(BASE + 3000)}) as rsp:
                        if rsp.status == 200 and (await rsp.json())["data"]["result"]:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.25)
            else:
                pytest.fail("the backfilled series never became queryable")
            async with session.get(f"{server.url}/api/v1/query",
                                   params={"query": "up"}) as rsp:
                assert rsp.status == 401  # it does demand credentials
        yield server.url
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def no_kopf_events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    posted: list[tuple[str, str]] = []
    monkeypatch.setattr("suandian.k8s.events.normal", lambda *a, **k: None)
    monkeypatch.setattr("suandian.k8s.events.warning",
                        lambda body, reason, message: posted.append((reason, message)))
    return posted


def meter(url: str, password: str) -> Any:
    return meter_from(Settings(measure_url=url, measure_exporters="kepler",
                               measure_username=USER, measure_password=password,
                               measure_interval=Settings().measure_interval))


@pytest.mark.asyncio(loop_scope="module")
async def test_basic_auth_from_the_settings_reaches_prometheus(guarded: str) -> None:
    ctx = context(guarded)
    ctx.meter = meter(guarded, PASSWORD)
    status = await finish(ctx, "zeta", "gansu", 600, 4200)
    assert status["measurement"]["provenance"] == "measured"
    assert status["measurement"]["itEnergyKWh"] == pytest.approx(
        by_hand("gansu", [(600, 4200, 640.0)])["it"], rel=1e-4)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_refused_password_leaves_the_job_modelled_and_says_so(
        guarded: str, no_kopf_events: list[tuple[str, str]]) -> None:
    metrics.reset()
    ctx = context(guarded)
    ctx.meter = meter(guarded, "wrong")
    status = await finish(ctx, "zeta", "gansu", 600, 4200, watts=900.0)
    m = status["measurement"]
    assert m["provenance"] == "modelled" and "Unauthorized" in m["reason"]
    assert status["phase"] == "Succeeded"
    assert status["energyKWh"] == pytest.approx(0.9 * 1.0 * 1.2, rel=1e-3)  # 900 W, 1 h
    assert [r for r, _ in no_kopf_events] == ["MeasurementFailed"]
    assert metrics.registry().get_sample_value(
        "suandian_measurement_failures_total", {"reason": "Unauthorized"}) == 1.0

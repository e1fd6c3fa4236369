"""The /metrics endpoint the operator mounts: real aiohttp server on a loopback port."""

from __future__ import annotations

import aiohttp
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from suandian import metrics


async def fetch(url: str, accept: str = "") -> tuple[str, str]:
    headers = {"Connection": "close", **({"Accept": accept} if accept else {})}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as rsp:
        assert rsp.status == 200
        return rsp.headers["Content-Type"], await rsp.text()


async def test_serves_the_suandian_registry_in_text_format(populated: CollectorRegistry) -> None:
    server = await metrics.start_metrics_server("127.0.0.1", 0)
    try:
        assert server.port != 0
        content_type, body = await fetch(server.url)
    finally:
        await server.stop()
    assert content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body)}
    assert "suandian_build_info" in families
    green = [s for s in families["suandian_site_green_power_watts"].samples
             if s.labels == {"site": "gansu", "source": "solar"}]
    assert [s.value for s in green] == [1_200_000.0]
    assert not [name for name in families if name.startswith(("python_", "process_"))]


async def test_negotiates_openmetrics(populated: CollectorRegistry) -> None:
    server = await metrics.start_metrics_server("127.0.0.1", 0)
    try:
        content_type, body = await fetch(server.url, "application/openmetrics-text; version=1.0.0")
    finally:
        await server.stop()
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")


async def test_serves_the_registry_current_at_request_time(registry: CollectorRegistry) -> None:
    server = await metrics.start_metrics_server("127.0.0.1", 0)
    try:
        metrics.record_deadline_miss("after-start")
        _, body = await fetch(server.url)
    finally:
        await server.stop()
    assert 'suandian_deadline_misses_total{site="after-start"} 1.0' in body

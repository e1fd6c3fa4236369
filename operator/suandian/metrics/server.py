"""``/metrics`` over aiohttp, in the operator's event loop."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from suandian.metrics.instruments import registry


async def metrics_handler(request: web.Request) -> web.Response:
    """aiohttp handler of ``GET /metrics``: text format, or OpenMetrics when asked for."""
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(registry())
    return web.Response(body=body, headers={"Content-Type": content_type})


def metrics_app() -> web.Application:
    """An aiohttp application serving ``/metrics`` (mount it, or run it on its own port)."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    return app


@dataclass
class MetricsServer:
    """A running ``/metrics`` server; ``port`` is the bound one (useful with port 0)."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_metrics_server(host: str = "0.0.0.0", port: int = 8081) -> MetricsServer:
    """Serve ``/metrics`` on ``host:port`` in the running event loop until ``stop()``."""
    runner = web.AppRunner(metrics_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for address in runner.addresses:  # (host, port) for TCP, more items for IPv6
        bound = int(address[1])
    return MetricsServer(runner=runner, host=host, port=bound)

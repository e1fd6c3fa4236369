"""``suandian run``: the operator process (kopf's event loop, signals, probes, metrics).

Builds the operator with :func:`suandian.controllers.build`, logs kopf in with the
connection :class:`~suandian.k8s.KubeApi` resolved (in-cluster service account, else
kubeconfig: :mod:`suandian.k8s.connection`) so both talk to the same server with the
same credentials, and
runs until SIGTERM/SIGINT, when kopf stops gracefully (daemons stopped, peering record
removed so a standby takes over at once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import kopf

from suandian import metrics
from suandian.backends import backend_for
from suandian.config import Settings
from suandian.controllers import build
from suandian.controllers.heap import HeapPolicy
from suandian.errors import KubeApiError
from suandian.k8s.client import KubeApi

__all__ = ["run_operator"]

log = logging.getLogger(__name__)


def _login_from(api: KubeApi) -> Any:
    """A kopf login handler giving kopf the connection and credentials of ``api``.

    Kopf calls it at start, after a 401 and when the credentials it was given expire
    (an exec plugin's ``expirationTimestamp``), so it reads or makes them again each time
    (a rotated service account token, a new plugin credential); it runs in a thread of
    kopf's, so a plugin's run does not stop the event loop.
    """
    connection = api.connection

    def login(**_: Any) -> kopf.ConnectionInfo:
        credentials = connection.credentials(fresh=True)
        cert_pem, key_pem = credentials.cert_pem, credentials.key_pem
        if not (cert_pem and key_pem):
            cert_pem, key_pem = connection.cert_pem, connection.key_pem
        return kopf.ConnectionInfo(
            server=connection.server,
            ca_path=connection.ca_file,
            ca_data=connection.ca_pem,
            insecure=connection.insecure or None,
            username=None if credentials.token else connection.username,
            password=None if credentials.token else connection.password,
            scheme="Bearer" if credentials.token else None,
            token=credentials.token,
            certificate_path=None if credentials.cert_pem else connection.cert_file,
            private_key_path=None if credentials.key_pem else connection.key_file,
            certificate_data=cert_pem,
            private_key_data=key_pem,
            proxy_url=connection.proxy_url,
            expiration=credentials.expires,
        )

    return login


async def _check(api: KubeApi, settings: Settings) -> None:
    """What the chosen backend needs of the cluster is there (Kueue mode: Kueue)."""
    try:
        await backend_for(settings).check(api)
    except KubeApiError as exc:
        log.warning("could not check the cluster for SUANDIAN_MODE=%s: %s", settings.mode, exc)
    finally:
        await api.aclose()


def run_operator(
    *,
    namespaces: Sequence[str] = (),
    peering_name: str = "suandian",
    priority: int = 0,
    standalone: bool = False,
    liveness_endpoint: str | None = None,
    webhook_port: int | None = None,
    webhook_addr: str = "0.0.0.0",
    webhook_cert: str | None = None,
    webhook_key: str | None = None,
    metrics_port: int = 8081,
    kubeconfig: str | None = None,
    context: str | None = None,
    log_format: str = "full",
    verbose: bool = False,
    debug: bool = False,
    quiet: bool = False,
) -> None:
    """Run the operator until a signal stops it (blocking)."""
    kopf.configure(debug=debug, verbose=verbose, quiet=quiet,
                   log_format=kopf.LogFormat[log_format.upper()])
    settings = Settings.from_env()
    api = KubeApi.from_environment(kubeconfig=kubeconfig, context=context,
                                   max_connections=settings.api_workers,
                                   timeout=(5.0, settings.api_timeout))
    asyncio.run(_check(api, settings))  # refuse a mode the cluster cannot serve
    webhook = None
    if webhook_port is not None:
        webhook = kopf.WebhookServer(addr=webhook_addr, port=webhook_port,
                                     certfile=webhook_cert, pkeyfile=webhook_key)
    parts = build(settings=settings, api=api, login=_login_from(api), webhook=webhook,
                  peering_name=peering_name, heap=HeapPolicy(), namespaces=namespaces)

    if metrics_port:
        @kopf.on.startup(registry=parts.registry)
        async def serve_metrics(memo: kopf.Memo, **_: Any) -> None:
            memo.metrics_server = await metrics.start_metrics_server(port=metrics_port)

        @kopf.on.cleanup(registry=parts.registry)
        async def stop_metrics(memo: kopf.Memo, **_: Any) -> None:
            server = memo.get("metrics_server")
            if server is not None:
                await server.stop()

    # kopf.run installs the SIGTERM/SIGINT handlers for a graceful stop; the cleanup
    # handler (see build) closes the API client's connections
    kopf.run(
        registry=parts.registry, settings=parts.settings, memo=parts.memo,
        clusterwide=not namespaces, namespaces=list(namespaces),
        standalone=standalone, priority=priority,
        peering_name=None if standalone else peering_name,
        liveness_endpoint=liveness_endpoint,
    )

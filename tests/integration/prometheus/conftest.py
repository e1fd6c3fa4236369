"""A real Prometheus server (Debian's `prometheus`) scraping Suandian's /metrics.

Absent binary: the tests skip with the reason, except under CI (CI=true), where a missing
Prometheus is a failure: `.ci/install-prometheus.sh` must have installed it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from integration.prometheus.promkit import PrometheusServer, require_binary


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    return require_binary("prometheus")


@pytest.fixture
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture(scope="module")
def start_prometheus(
    prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[list[str]], PrometheusServer]]:
    """Start Prometheus scraping the given targets; stopped after the module's tests."""
    started: list[PrometheusServer] = []

    def _start(targets: list[str]) -> PrometheusServer:
        server = PrometheusServer(prometheus_binary, tmp_path_factory.mktemp("prom"), targets)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.stop()

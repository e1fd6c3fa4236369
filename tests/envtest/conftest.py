"""The real-API tier: one real control plane per session (see :mod:`tests.envtest.envkit`).

The binaries come from ``KUBEBUILDER_ASSETS`` (envtest's convention: ``.ci/run`` exports
the folder ``../shared/kube/unpack.sh`` prints, and installs Debian's ``etcd-server``).
Without them every test here skips with the reason; under ``CI=true`` it fails instead,
so CI can never pass by skipping the proof.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.envtest import envkit
from tests.support.controlplane import ControlPlane, missing
from tests.support.kube import Kube
from tests.support.process import OperatorProcess

IN_CI = os.environ.get("CI") == "true"


def require(reason: str | None) -> None:
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"the real-API tier must run in CI: {reason}")
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/envtest/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.envtest)


@pytest.fixture(scope="session")
def session_start() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory,
                  session_start: datetime) -> Iterator[ControlPlane]:
    """A real control plane with the CRDs, the chart's RBAC, Nodes and PowerSites."""
    require(missing())
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"))
    try:
        plane.start(setup=lambda kube: envkit.set_up(kube, session_start))
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Kube:
    """The cluster admin (the test's own hands)."""
    return control_plane.admin()


@pytest.fixture(scope="session")
def operator_kubeconfig(control_plane: ControlPlane,
                        tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Credentials of the chart's ServiceAccount (a TokenRequest token), as in its pod."""
    return envkit.operator_kubeconfig(control_plane,
                                      tmp_path_factory.mktemp("sa") / "kubeconfig")


@pytest.fixture(scope="module")
def operator(control_plane: ControlPlane, operator_kubeconfig: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """``suandian run`` as the chart's ServiceAccount, standalone, for one test module."""
    with OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("operator"),
                         env={"SUANDIAN_RETRY_DELAY": "1"}) as proc:
        yield proc


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
            ) -> list[str]:
    """The real kubectl, as the cluster admin (argv prefix)."""
    binary = shutil.which("kubectl")
    require(None if binary else "no kubectl on PATH")
    config = control_plane.kubeconfig(tmp_path_factory.mktemp("kubectl") / "kubeconfig")
    return [str(binary), "--kubeconfig", str(config)]

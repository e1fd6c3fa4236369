"""Without a control plane the tier skips on a laptop and fails under CI, naming what
is missing and how to get it."""

from __future__ import annotations

import pytest
from _pytest.outcomes import Failed, Skipped
from tests.envtest.conftest import require
from tests.support.controlplane import missing


def test_missing_binaries_are_named_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    assert "unpack.sh" in (missing() or "")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", "/nonexistent")
    assert "lacks kube-apiserver" in (missing() or "")


def test_skipped_on_a_laptop_failed_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.envtest.conftest.IN_CI", False)
    with pytest.raises(Skipped, match="no etcd"):
        require("no etcd")
    monkeypatch.setattr("tests.envtest.conftest.IN_CI", True)
    with pytest.raises(Failed, match="must run in CI: no etcd"):
        require("no etcd")
    require(None)  # everything present: no skip, no failure

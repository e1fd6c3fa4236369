"""A missing Prometheus skips the tests on a laptop but fails them under CI."""

from __future__ import annotations

import pytest
from _pytest.outcomes import Failed, Skipped


def test_missing_binary_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from integration.prometheus.promkit import require_binary

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(Skipped, match="not installed"):
        require_binary("prometheus-that-does-not-exist")


def test_missing_binary_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from integration.prometheus.promkit import require_binary

    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="required under CI"):
        require_binary("prometheus-that-does-not-exist")

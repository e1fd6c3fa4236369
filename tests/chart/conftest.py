"""Real Helm (the Go SDK in the helm-python-sdk wheel) over the chart in helm/suandian."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import helm_python
import pytest

from chart.chartkit import CHART, NAMESPACE, RELEASE, Obj, objects_of

Render = Callable[..., list[Obj]]


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    return CHART


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    loaded = helm_python.Chart.load(CHART)
    yield loaded
    loaded.close()


@pytest.fixture(scope="session")
def render(chart: helm_python.Chart) -> Render:
    """Render with values (and release name/namespace) as `helm install` would."""

    def _render(values: dict[str, Any] | None = None, *, name: str = RELEASE,
                namespace: str = NAMESPACE) -> list[Obj]:
        rendered = chart.render(values or {}, name=name, namespace=namespace, is_install=True)
        return objects_of(rendered)

    return _render

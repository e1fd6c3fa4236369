"""Fixtures every test may use: the repository root, example manifests and the CRDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_yaml(path: Path) -> dict[str, Any]:
    """One YAML document, as the API server would see it (timestamps stay strings)."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_StringTimestamps)


class _StringTimestamps(yaml.SafeLoader):
    """kubectl sends JSON: an unquoted timestamp in YAML is a string on the wire."""


_StringTimestamps.yaml_implicit_resolvers = {
    key: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def crds() -> dict[str, dict[str, Any]]:
    """The checked-in CRDs by kind."""
    out = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = load_yaml(path)
        out[crd["spec"]["names"]["kind"]] = crd
    return out

"""The CRDs are generated from the models, structural, in sync, and admit every example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from suandian.api import parse_manifest
from suandian.api.crd import CRD_FILES, build_crds, check_crds, crd_for
from suandian.cli import cli

from conftest import ROOT, load_yaml
from crdcheck import admit, openapi_schema

EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))


def test_checked_in_crds_match_the_models() -> None:
    assert check_crds(ROOT / "crds") == [], "run `suandian crds` and commit the result"


def test_check_notices_drift(tmp_path: Path) -> None:
    build_crds(tmp_path)
    assert check_crds(tmp_path) == []
    path = tmp_path / CRD_FILES["ComputeJob"]
    path.write_text(path.read_text().replace("minimum: -1000", "minimum: -1"))
    assert check_crds(tmp_path) == [str(path)]
    (tmp_path / CRD_FILES["PowerSite"]).unlink()
    assert len(check_crds(tmp_path)) == 2


def test_cli_check_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["crds", "--check", "--output", str(tmp_path)]).exit_code == 1
    assert runner.invoke(cli, ["crds", "--output", str(tmp_path)]).exit_code == 0
    result = runner.invoke(cli, ["crds", "--check", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output


def _walk(node: dict[str, Any], path: str = "") -> Any:
    """Every sub-schema with its path: through properties, items and additionalProperties."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _walk(sub, f"{path}/properties/{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _walk(node[key], f"{path}/{key}")


@pytest.mark.parametrize("kind", ["PowerSite", "ComputeJob", "GridEvent"])
def test_schema_is_structural(kind: str) -> None:
    schema = openapi_schema(crd_for(kind))
    for path, node in _walk(schema):
        assert "$ref" not in node and "title" not in node and "$defs" not in node, path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        if "properties" in node:
            assert "additionalProperties" not in node, path
        if node.get("type") == "object" and "properties" not in node and (
            path != "/properties/metadata"  # the API server owns metadata's schema
        ):
            assert "additionalProperties" in node or node.get(
                "x-kubernetes-preserve-unknown-fields"
            ), path


@pytest.mark.parametrize("kind", ["PowerSite", "ComputeJob", "GridEvent"])
def test_every_field_is_explained(kind: str) -> None:
    """Descriptions become `kubectl explain`; an undocumented field is a bug."""
    schema = openapi_schema(crd_for(kind))
    missing = [
        f"{path}/{name}"
        for path, node in _walk(schema)
        for name, sub in node.get("properties", {}).items()
        if path and name not in ("metadata",) and not sub.get("description")
    ]
    assert missing == []


def test_names_columns_and_scope() -> None:
    job, site = crd_for("ComputeJob"), crd_for("PowerSite")
    # not "cj": that is CronJob's, and kubectl picks it (tests/envtest/test_admission.py)
    assert job["spec"]["names"]["shortNames"] == ["cjob"]
    assert site["spec"]["names"]["shortNames"] == ["psite"]
    assert job["spec"]["scope"] == "Namespaced" and site["spec"]["scope"] == "Cluster"
    for crd in (job, site):
        assert crd["spec"]["names"]["categories"] == ["suandian"]
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
    columns = {kind: [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]
                      if "priority" not in c] for kind, crd in (("cj", job), ("psite", site))}
    assert columns["cj"] == ["Phase", "Site", "Start", "Green%", "Saved", "Age"]
    assert columns["psite"] == ["Green kW", "gCO2/kWh", "Headroom", "Nodes", "Age"]


def test_printer_columns_point_at_real_status_fields() -> None:
    for kind in ("ComputeJob", "PowerSite"):
        crd = crd_for(kind)
        status = openapi_schema(crd)["properties"]["status"]["properties"]
        for column in crd["spec"]["versions"][0]["additionalPrinterColumns"]:
            where, _, field = column["jsonPath"].lstrip(".").partition(".")
            if where == "status":
                assert field in status, column


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_pass_models_and_crd(path: Path, crds: dict[str, Any]) -> None:
    obj = load_yaml(path)
    parse_manifest(obj)
    assert admit(crds[obj["kind"]], obj) == []


def test_there_are_examples_of_both_kinds() -> None:
    kinds = [load_yaml(p)["kind"] for p in EXAMPLES]
    assert kinds.count("PowerSite") >= 7 and kinds.count("ComputeJob") >= 3

"""The chart as files: strict lint, CRDs and dashboards in sync with their sources, docs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import helm_python
import yaml

from chart.chartkit import CHART, ROOT, load_yaml_docs
from suandian.api.crd import CRD_FILES, check_crds, render_crd


def test_lint_strict_finds_nothing(chart_dir: Path) -> None:
    report = helm_python.lint(chart_dir, strict=True, kube_version="v1.33.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_lint_strict_fails_on_a_broken_copy(tmp_path: Path) -> None:
    broken = tmp_path / "suandian"
    helm_python.Chart.load(CHART).save_dir(tmp_path)
    (broken / "templates" / "broken.yaml").write_text("{{ .Values.nope.deeper }}\n")
    report = helm_python.lint(broken, strict=True)
    assert report["errors"] or [m for m in report["messages"] if m["severity"] >= 2]


def test_chart_crds_are_identical_to_the_generated_ones() -> None:
    for filename in CRD_FILES.values():
        chart_copy = (CHART / "crds" / filename).read_text(encoding="utf-8")
        assert chart_copy == (ROOT / "crds" / filename).read_text(encoding="utf-8"), (
            f"{filename} differs: run `suandian crds --output helm/suandian/crds`")
    assert check_crds(CHART / "crds") == []


def test_crd_sync_check_would_catch_a_hand_edit(tmp_path: Path) -> None:
    kind, filename = next(iter(CRD_FILES.items()))
    (tmp_path / filename).write_text(render_crd(kind).replace("v1alpha1", "v1beta1"))
    assert str(tmp_path / filename) in check_crds(tmp_path)


def test_kopf_peering_crds_are_shipped() -> None:
    crds = load_yaml_docs(CHART / "crds" / "kopf-peering.yaml")
    names = {(c["spec"]["names"]["kind"], c["spec"]["scope"]) for c in crds}
    assert names == {("ClusterKopfPeering", "Cluster"), ("KopfPeering", "Namespaced")}
    assert {c["spec"]["group"] for c in crds} == {"kopf.dev"}


def _dashboards_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards", ROOT / "hack" / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dashboards_are_in_sync_with_their_source() -> None:
    script = _dashboards_script()
    built = script.build()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in (CHART / "dashboards").glob("*")}
    assert on_disk == built, "stale dashboards: run `python hack/dashboards.py`"
    assert script.main(["--check"]) == 0


def test_dashboards_take_datasource_and_site_as_variables() -> None:
    for path in sorted((CHART / "dashboards").glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["site"]["type"] == "query"
        assert variables["site"]["multi"] and variables["site"]["includeAll"]
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}"
                assert target["expr"].strip()
        site_panels = [p for p in board["panels"]
                       if any("$site" in t["expr"] for t in p["targets"])]
        assert len(site_panels) >= len(board["panels"]) // 2, path.name


def test_the_dashboards_issues_6_and_14_name() -> None:
    titles = {json.loads(p.read_text(encoding="utf-8"))["title"]
              for p in (CHART / "dashboards").glob("*.json")}
    assert titles == {"Suandian — power and placement", "Suandian — savings and service",
                      "Suandian — green-power ledger"}


def test_the_ledger_dashboard_filters_by_namespace_and_shows_provenance() -> None:
    board = json.loads((CHART / "dashboards" / "green-power-ledger.json").read_text(
        encoding="utf-8"))
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["namespace"]["multi"] and variables["namespace"]["includeAll"]
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    per_site = [e for e in exprs if e.startswith("site:")]  # site-level rules: PUE, CUE
    assert len(per_site) == 2
    assert all("$namespace" in e for e in exprs if e not in per_site)
    assert any("by (provenance)" in e for e in exprs)
    assert any("by (source)" in e for e in exprs)


def test_every_top_level_value_is_documented() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    docs = (ROOT / "docs" / "helm.md").read_text(encoding="utf-8")
    missing = [key for key in values if f"`{key}" not in docs]
    assert missing == []
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    assert set(values) <= set(schema["properties"])

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from suandian.cli import cli
from suandian.forecast import builtin_sites
from suandian.sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]
EMBEDDED = ROOT / "operator" / "suandian" / "forecast" / "data" / "sites"


def test_embedded_sites_equal_the_examples() -> None:
    examples = sorted((ROOT / "examples" / "powersites").glob("*.yaml"))
    assert [p.name for p in examples] == sorted(p.name for p in EMBEDDED.glob("*.yaml"))
    for p in examples:
        assert (EMBEDDED / p.name).read_bytes() == p.read_bytes(), p.name
    assert set(builtin_sites()) == {"gansu", "ningxia", "inner-mongolia", "guizhou", "chengyu",
                                    "jing-jin-ji", "yangtze-delta", "guangdong"}


def test_scenario_sites_inline_and_by_path(tmp_path: Path) -> None:
    manifest = yaml.safe_load((EMBEDDED / "gansu.yaml").read_text())
    manifest["metadata"]["name"] = "my-site"
    (tmp_path / "other.yaml").write_text((EMBEDDED / "guizhou.yaml").read_text())
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"sites": [manifest, "other.yaml", "ningxia"]}))
    names = [s.metadata.name for s in load_scenario(str(scenario)).sites]
    assert names == ["my-site", "guizhou", "ningxia"]
    empty = tmp_path / "e.yaml"
    empty.write_text("name: no-sites-given\n")  # the embedded hubs
    assert {s.metadata.name for s in load_scenario(str(empty)).sites} == set(builtin_sites())


def test_cli_table_json_and_plot(tmp_path: Path) -> None:
    runner = CliRunner()
    start = ["--start", "2026-06-21T00:00+0800"]
    table = runner.invoke(cli, ["forecast", "--site", "gansu", "--hours", "6", *start])
    assert table.exit_code == 0, table.output
    assert "gCO2/kWh" in table.output and "Sun 06-21 05:00" in table.output
    out = runner.invoke(cli, ["forecast", "--site", "guizhou", "--json", *start])
    doc = json.loads(out.stdout)
    assert doc["site"] == "guizhou" and doc["slots"] == 192 and doc["source"] == "builtin"
    assert doc["health"]["ready"] is True
    assert set(doc["greenKW"]) == {"hydro", "solar", "wind"}
    png = tmp_path / "f.png"
    plotted = runner.invoke(cli, ["forecast", "--site", "inner-mongolia", "--plot", str(png),
                                  *start])
    assert plotted.exit_code == 0, plotted.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000
    bad = runner.invoke(cli, ["forecast", "--site", "atlantis"])
    assert bad.exit_code == 2 and "gansu" in bad.output


def test_scenario_with_csv_files_and_a_failing_service(tmp_path: Path) -> None:
    """CSV supply relative to the scenario; a carbon service with no credentials: the CLI
    reports the degradation and shows the conservative forecast, it does not crash."""
    manifest = yaml.safe_load((EMBEDDED / "guizhou.yaml").read_text())
    manifest["metadata"]["name"] = "csv-site"
    manifest["spec"]["supply"] = [{"type": "solar", "capacityKW": 1000}]
    rows = "\n".join(f"2026-06-01T{h:02d}:00:00+08:00,{100 * h}" for h in range(24))
    (tmp_path / "solar.csv").write_text("time,value[kW]\n" + rows + "\n")
    manifest["spec"]["forecast"] = {
        "supply": {"provider": "csv", "csv": {"paths": {"solar": "solar.csv"}}},
        "carbon": {"provider": "builtin"}}
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({"sites": [manifest]}))
    runner = CliRunner()
    args = ["forecast", "--site", "csv-site", "--scenario", str(scenario), "--hours", "12",
            "--start", "2026-06-01T00:00+0800", "--json"]
    doc = json.loads(runner.invoke(cli, args).stdout)
    assert doc["source"] == "csv+builtin" and doc["health"]["reason"] == "ForecastFresh"
    assert doc["greenKW"]["solar"][:8] == [0.0] * 4 + [100.0] * 4  # 00:00, 01:00 local

    manifest["spec"]["forecast"]["carbon"] = {
        "provider": "electricityMaps",
        "electricityMaps": {"url": "http://127.0.0.1:9/v3", "zone": "CN",
                            "tokenSecretRef": {"name": "absent", "key": "token"}}}
    scenario.write_text(yaml.safe_dump({"sites": [manifest]}))
    result = runner.invoke(cli, args)
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["source"] == "conservative" and doc["health"]["reason"] == "MissingCredentials"
    assert sum(doc["greenTotalKW"]) == 0.0 and doc["carbonGPerKWh"][0] == 498.9
    assert "degraded (MissingCredentials)" in result.stderr

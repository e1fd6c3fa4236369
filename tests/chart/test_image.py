"""The Dockerfile, as far as it can be checked with no Docker engine: its build stage's
files build the wheel, and what it declares agrees with what the chart expects."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from chart.chartkit import CHART, ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def instructions(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+)$", DOCKERFILE, re.M)]


def test_slim_base_non_root_user_matching_the_chart() -> None:
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE
    (user,) = instructions("USER")
    uid, gid = (int(x) for x in user.split(":"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert (uid, gid) == (values["podSecurityContext"]["runAsUser"],
                          values["podSecurityContext"]["runAsGroup"])
    assert uid != 0


def test_exposed_ports_are_the_charts() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    exposed = {int(p) for line in instructions("EXPOSE") for p in line.split()}
    assert exposed == {values["operator"]["healthPort"], values["metrics"]["port"],
                       values["webhook"]["port"]}


def test_only_runtime_dependencies_are_installed() -> None:
    assert "[test]" not in DOCKERFILE
    assert "pip install -e" not in DOCKERFILE
    for tool in ("pytest", "ruff", "mypy", "gcc", "build-essential"):
        assert tool not in DOCKERFILE.split("FROM ${PYTHON_IMAGE}\n")[-1]


def test_the_build_stage_files_build_a_wheel_with_the_cli(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    for line in instructions("COPY"):
        if line.startswith("--from"):
            continue
        *sources, _ = line.split()
        for source in sources:
            src = ROOT / source.rstrip("/")
            if src.is_dir():
                shutil.copytree(src, context / src.name,
                                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                shutil.copy(src, context / src.name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps",
         "--wheel-dir", str(tmp_path / "wheels"), str(context)],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "wheels").glob("suandian-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "suandian = suandian.cli:main" in archive.read(entry_points).decode()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert {"suandian/metrics/__init__.py", "suandian/metrics/ledger.py",
            "suandian/report/__init__.py", "suandian/cli.py", "suandian/py.typed"} <= names
    # the wheel without extras is the image's base: no plots, no MILP
    base = [line.split(":", 1)[1].strip() for line in metadata.splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert base and not [r for r in base if r.startswith(("matplotlib", "highspy", "pytest"))]
    assert any(r.startswith("kopf") for r in base)
    # ... but for the [openadr] extra: the VEN's OpenADR client
    extras = [line.split(":", 1)[1].strip() for line in metadata.splitlines()
              if line.startswith("Requires-Dist:") and 'extra == "openadr"' in line]
    assert [r for r in extras if r.startswith("openleadr")], extras
    assert '[openadr]"' in DOCKERFILE


def test_the_image_runs_suandian_run() -> None:
    """ENTRYPOINT + CMD make `suandian run ...`, a command line `suandian run` accepts."""
    import json

    from click.testing import CliRunner

    from suandian import cli

    (entry,) = instructions("ENTRYPOINT")
    (cmd,) = instructions("CMD")
    argv = json.loads(entry) + json.loads(cmd)
    assert argv[:2] == ["suandian", "run"]
    seen: dict[str, object] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("suandian.controllers.main.run_operator", lambda **kw: seen.update(kw))
        result = CliRunner().invoke(cli.cli, argv[1:])
    assert result.exit_code == 0, result.output
    assert seen["liveness_endpoint"] == "http://0.0.0.0:8080/healthz"

"""End to end on a real cluster: runs hack/kind-e2e.sh (kind, the chart, PowerSites and
ComputeJobs; see the script for its checks). Skips, saying why, without Docker and kind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "kind-e2e.sh"
TOOLS = ("docker", "kind", "kubectl", "helm", "openssl")


def missing_prerequisite() -> str | None:
    """Why the kind end-to-end cannot run here, or None when it can."""
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    if absent:
        return f"no cluster: {', '.join(absent)} not installed (needs {', '.join(TOOLS)})"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "no cluster: the Docker engine did not answer `docker info` in 20 s"
    if info.returncode != 0:
        return "no cluster: the Docker engine is not reachable (`docker info` failed)"
    return None


@pytest.mark.parametrize("script", [SCRIPT, ROOT / "hack" / "build-image.sh"],
                         ids=lambda p: p.name)
def test_the_scripts_are_valid_bash(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert os.access(script, os.X_OK)


def test_the_image_script_tags_the_charts_default_image() -> None:
    """The chart's default image (values.yaml, tag = appVersion) is what the script builds."""
    import yaml

    chart = yaml.safe_load((ROOT / "helm/suandian/Chart.yaml").read_text())
    values = yaml.safe_load((ROOT / "helm/suandian/values.yaml").read_text())
    script = (ROOT / "hack" / "build-image.sh").read_text()
    assert f'image="{values["image"]["repository"]}:${{version' in script
    assert values["image"]["tag"] == "" and chart["appVersion"]
    assert "build-image.sh" in SCRIPT.read_text()


@pytest.mark.e2e
def test_kind_end_to_end() -> None:
    reason = missing_prerequisite()
    if reason is not None:
        pytest.skip(reason)
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True,
                            timeout=1800, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "all checks passed" in result.stdout

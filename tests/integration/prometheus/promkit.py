"""Helpers of the Prometheus tests: find the binaries, run a server on a free port."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from tests.support.operator import free_port

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "helm" / "suandian" / "alerts" / "suandian.rules.yaml"
LEDGER_RULES = RULES.parent / "suandian.ledger.rules.yaml"


def require_binary(name: str) -> str:
    """The path of a Prometheus binary; skip without it, fail without it under CI."""
    path = shutil.which(name)
    if path is None:
        message = (f"`{name}` is not installed (Debian package `prometheus`; "
                   "run .ci/install-prometheus.sh)")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: required under CI")
        pytest.skip(message)
    return path


class PrometheusServer:
    """One Prometheus process on a loopback port, scraping ``targets`` every second."""

    def __init__(self, binary: str, workdir: Path, targets: list[str],
                 flags: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                       "scrape_timeout": "900ms"},
            "rule_files": [str(RULES), str(LEDGER_RULES)],
            "scrape_configs": [{"job_name": "suandian",
                                "static_configs": [{"targets": targets}]}],
        }
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log = workdir / "prometheus.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config_path}",
             f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn", *flags],
            stdout=self._log_file, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log_file.close()

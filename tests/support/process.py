"""``suandian run`` as a separate process, as it runs in its pod: started, stopped, killed.

The real-API tier runs the operator exactly as the chart does (its own process, its
own credentials from a kubeconfig, real time), so that ``kill -9`` is a real process
death: no ``finally`` runs, no peering record is removed, connections just drop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.operator import free_port

__all__ = ["OperatorProcess"]


class OperatorProcess:
    """One operator process; its log is ``<workdir>/<name>.log`` (appended across restarts)."""

    def __init__(self, kubeconfig: Path, workdir: Path, *, name: str = "operator",
                 args: Sequence[str] = ("--standalone",),
                 env: Mapping[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.name = name
        self.args = list(args)
        self.env = dict(env or {})
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        self.log_path = workdir / f"{name}.log"
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, *, wait: bool = True, timeout: float = 60.0) -> OperatorProcess:
        argv = [sys.executable, "-m", "suandian", "run", "--kubeconfig", str(self.kubeconfig),
                "--liveness", f"http://127.0.0.1:{self.liveness_port}/healthz",
                "--metrics-port", str(self.metrics_port), "--log-format", "plain",
                *self.args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts + 1}: {' '.join(argv[2:])}\n".encode())
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=env)
        self.starts += 1
        if wait:
            self.wait_live(timeout)
        return self

    def wait_live(self, timeout: float = 60.0) -> None:
        """Until the liveness endpoint answers 200 (kopf serves it once the operator runs;
        with a webhook, its probe fails until the webhook listens)."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        while True:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited ({self.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass  # not serving yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not live after {timeout}s:\n{self.tail()}")
            time.sleep(0.2)

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc is not None else None

    def kill(self) -> None:
        """``kill -9``: the process dies where it stands."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, as the kubelet sends it; SIGKILL after ``timeout``."""
        if self._proc is None or self._proc.poll() is not None:
            return self.returncode
        self._proc.send_signal(signal.SIGTERM)
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, size: int = 3000) -> str:
        return self.log()[-size:]

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

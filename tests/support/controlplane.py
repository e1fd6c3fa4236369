"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, controller manager,
scheduler, from ``KUBEBUILDER_ASSETS`` (envtest's convention).

``ControlPlane(workdir).start()`` brings one up in a few seconds and ``stop()`` takes it
down; :class:`~tests.support.kube.Kube` talks to it. What runs is exactly what a cluster
runs, minus kubelets: the real admission chain (schema, CEL, strict field validation,
webhooks, optional plugins such as ``OwnerReferencesPermissionEnforcement``), real RBAC,
the real Job controller and garbage collector, the real kube-scheduler binding Pods to
the Node objects a test makes Ready. Pods never run; a test finishes one by setting its
phase through ``pods/status``.

Every request is written to an audit log (``audit_events()``), so a test can say which
requests a user made and what the server answered, RBAC refusals included.

Where the binaries come from: ``$KUBEBUILDER_ASSETS`` holds ``kube-apiserver``,
``kube-controller-manager`` and ``kube-scheduler`` (``../shared/kube/unpack.sh`` prints
such a folder; ``setup-envtest`` makes one too); ``etcd`` is taken from there or PATH
(Debian's ``etcd-server``). :func:`missing` says what is absent, for a skip reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import urllib3
from tests.support.kube import Kube, KubeError
from tests.support.operator import free_port

__all__ = ["ADMIN_TOKEN", "ControlPlane", "assets_dir", "missing", "stop_processes"]

ADMIN_TOKEN = "envtest-admin-token"
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# what the controller manager runs: everything but the controllers that need kubelets
# or a cloud (they would mark our kubelet-less Nodes NotReady or wait for a provider)
CONTROLLERS = ("*,-node-lifecycle-controller,-node-ipam-controller,"
               "-cloud-node-lifecycle-controller,-service-lb-controller,-node-route-controller")
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"""


def stop_processes(procs: Sequence[subprocess.Popen[bytes]], timeout: float = 5.0) -> None:
    """SIGTERM to every one at once, then SIGKILL to each still there after ``timeout``."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def assets_dir() -> Path | None:
    value = os.environ.get("KUBEBUILDER_ASSETS")
    return Path(value) if value else None


def _etcd(assets: Path | None) -> str | None:
    if assets is not None and (assets / "etcd").is_file():
        return str(assets / "etcd")
    return shutil.which("etcd")


def missing() -> str | None:
    """Why no control plane can start here (None: everything is present)."""
    assets = assets_dir()
    if assets is None:
        return ("KUBEBUILDER_ASSETS is not set (run ../shared/kube/unpack.sh and export "
                "the folder it prints, or use setup-envtest)")
    absent = [b for b in BINARIES if not (assets / b).is_file()]
    if absent:
        return f"KUBEBUILDER_ASSETS={assets} lacks {', '.join(absent)}"
    if _etcd(assets) is None:
        return "no etcd binary in KUBEBUILDER_ASSETS or on PATH (apt-get install etcd-server)"
    if shutil.which("openssl") is None:
        return "no openssl binary (it makes the service-account signing key)"
    return None


class ControlPlane:
    """One control plane, its files under ``workdir`` (see the module docstring)."""

    def __init__(self, workdir: Path, *, admission_plugins: Sequence[str] = (),
                 name: str = "envtest", apiserver_args: Sequence[str] = (),
                 controllers: str = CONTROLLERS, scheduler: bool = True) -> None:
        self.workdir = workdir
        self.name = name
        self.admission_plugins = tuple(admission_plugins)
        self.apiserver_args = tuple(apiserver_args)  # e.g. a Karmada host's front proxy
        self.controllers = controllers
        self.scheduler = scheduler  # a Karmada host runs none: its Jobs never run there
        self.etcd_url = ""
        self.assets = assets_dir() or Path("/nonexistent")
        self.port = 0
        self.url = ""
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, Any] = {}

    # -- files ---------------------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        """The API server's self-signed serving certificate (its own CA)."""
        return self.workdir / "certs" / "apiserver.crt"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    def kubeconfig(self, path: Path, *, token: str = ADMIN_TOKEN, user: str = "admin",
                   namespace: str = "default") -> Path:
        """Write a kubeconfig for ``token`` (default: the cluster admin)."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": self.name,
            "clusters": [{"name": self.name, "cluster": {
                "server": self.url, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": self.name, "context": {
                "cluster": self.name, "user": user, "namespace": namespace}}],
        }
        path.write_text(json.dumps(config, indent=1), encoding="utf-8")
        return path

    def admin(self) -> Kube:
        return Kube(self.url, ADMIN_TOKEN, ca_file=self.ca_file)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 90.0,
              setup: Callable[[Kube], object] | None = None) -> ControlPlane:
        """Start etcd and the API server, run ``setup`` with the admin's client, then
        start the controller manager and the scheduler.

        What ``setup`` creates exists before the controllers first look: CRDs made there
        are watched by the garbage collector from its first discovery, where CRDs made
        later wait for its next resync (30 s) before their dependents are collected.
        """
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        certs = self.workdir / "certs"
        certs.mkdir(exist_ok=True)
        key = certs / "sa.key"
        subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                       capture_output=True)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{ADMIN_TOKEN},admin,admin,"system:masters"\n', encoding="utf-8")
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY, encoding="utf-8")

        etcd_client, etcd_peer = free_port(), free_port()
        self._spawn("etcd", [
            str(_etcd(self.assets)), "--data-dir", str(self.workdir / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_client}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}",
            "--log-level", "warn",
        ])
        self.etcd_url = f"http://127.0.0.1:{etcd_client}"
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        apiserver = [
            str(self.assets / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_client}",
            f"--secure-port={self.port}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", f"--cert-dir={certs}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={key}",
            f"--service-account-signing-key-file={key}",
            f"--token-auth-file={tokens}", "--authorization-mode=Node,RBAC",
            "--service-cluster-ip-range=10.96.0.0/16",
            f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}",
            "--audit-log-mode=blocking", *self.apiserver_args,
        ]
        if self.admission_plugins:
            apiserver.append("--enable-admission-plugins=" + ",".join(self.admission_plugins))
        self._spawn("kube-apiserver", apiserver)
        self._wait_ready(timeout)
        if setup is not None:
            setup(self.admin())

        kubeconfig = self.kubeconfig(self.workdir / "admin.kubeconfig")
        self._spawn("kube-controller-manager", [
            str(self.assets / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}", "--leader-elect=false",
            f"--service-account-private-key-file={key}", f"--root-ca-file={self.ca_file}",
            f"--controllers={self.controllers}", f"--secure-port={free_port()}",
            "--bind-address=127.0.0.1",
        ])
        if not self.scheduler:
            self._wait_for_default_service_account(timeout)
            return self
        self._spawn("kube-scheduler", [
            str(self.assets / "kube-scheduler"),
            f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}", "--leader-elect=false",
            f"--secure-port={free_port()}", "--bind-address=127.0.0.1",
        ])
        self._wait_for_default_service_account(timeout)
        return self

    def stop(self) -> None:
        """SIGTERM to the Kubernetes parts at once, then etcd; SIGKILL after 5 s each
        (a test's server owes nobody a graceful drain)."""
        for group in (("kube-scheduler", "kube-controller-manager", "kube-apiserver"),
                      ("etcd",)):
            stop_processes([p for p in (self._procs.pop(n, None) for n in group)
                            if p is not None])
        for log in self._logs.values():
            log.close()
        self._logs.clear()

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed by stop()
        self._logs[name] = log
        self._procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            if self.ca_file.exists():  # written a moment before it listens: refusals pass
                with contextlib.suppress(KubeError, OSError, urllib3.exceptions.HTTPError):
                    if self.admin().raw("GET", "/readyz") == "ok":
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"kube-apiserver not ready after {timeout}s")
            time.sleep(0.2)

    def _wait_for_default_service_account(self, timeout: float) -> None:
        """The controller manager runs once it has made the ``default`` ServiceAccount."""
        deadline = time.monotonic() + timeout
        kube = self.admin()
        while kube.get("/api/v1/namespaces/default/serviceaccounts/default") is None:
            self._check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"no default ServiceAccount after {timeout}s")
            time.sleep(0.2)

    # -- what tests read -----------------------------------------------------------------

    def audit_events(self) -> Iterator[dict[str, Any]]:
        """Every audited request so far (service accounts' requests: see AUDIT_POLICY)."""
        if not self.audit_log.exists():
            return
        with self.audit_log.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)

    def log_tail(self, name: str, size: int = 4000) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")[-size:]

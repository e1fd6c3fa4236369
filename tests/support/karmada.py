"""Real Karmada on three real control planes: a Karmada API server and two members.

``KarmadaSet(workdir, members=...).start()`` does what ``../shared/karmada/README.md``
found to work on loopback:

- the **host** is a :class:`ControlPlane` with the front-proxy flags the aggregated API
  needs, a controller manager limited to namespaces, garbage collection and service
  accounts, and no scheduler (a Job created there never runs there);
- Karmada's CRDs (server-side apply), ``karmada-aggregated-apiserver`` (the only server of
  ``cluster.karmada.io/v1alpha1 Cluster``) behind an ``ExternalName`` Service and an
  APIService, ``karmada-webhook`` with Karmada's webhook configuration pointed at it,
  ``karmada-controller-manager`` and ``karmada-scheduler``;
- each **member** is a full :class:`ControlPlane` (real Job controller, real scheduler,
  Ready Node objects made by the caller), joined in Push mode (a Secret with its admin
  token and a ``Cluster`` naming its endpoint).

Where the binaries come from: ``$SUANDIAN_KARMADA_BIN`` (``../shared/karmada/unpack.sh``
prints the folder); the CRDs and webhook configuration are the copies under
``tests/envtest/fixtures/karmada/`` (from the same snapshot). :func:`missing_karmada`
says what is absent, for a skip reason.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from tests.support.controlplane import ADMIN_TOKEN, ControlPlane, missing, stop_processes
from tests.support.kube import Kube, KubeError, wait_for
from tests.support.operator import free_port

__all__ = ["FIXTURES", "KarmadaSet", "cluster_ready", "missing_karmada"]

FIXTURES = Path(__file__).resolve().parents[1] / "envtest" / "fixtures" / "karmada"
BINARIES = ("karmada-aggregated-apiserver", "karmada-webhook", "karmada-controller-manager",
            "karmada-scheduler")
HOST_CONTROLLERS = ("namespace-controller,garbage-collector-controller,"
                    "serviceaccount-token-controller,serviceaccount-controller,"
                    "clusterrole-aggregation-controller")
CLUSTERS = "/apis/cluster.karmada.io/v1alpha1/clusters"


def missing_karmada() -> str | None:
    """Why real Karmada cannot run here (None: it can)."""
    reason = missing()
    if reason:
        return reason
    folder = os.environ.get("SUANDIAN_KARMADA_BIN")
    if not folder:
        return ("SUANDIAN_KARMADA_BIN is not set (export the folder "
                "../shared/karmada/unpack.sh prints, or run .ci/install-karmada.sh)")
    absent = [b for b in BINARIES if not (Path(folder) / b).is_file()]
    if absent:
        return f"SUANDIAN_KARMADA_BIN={folder} lacks {', '.join(absent)}"
    if not (FIXTURES / "webhook-configuration.yaml").is_file():
        return f"no Karmada CRDs and webhook configuration under {FIXTURES}"
    return None


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _pki(folder: Path) -> dict[str, Path]:
    """A CA; a front-proxy client certificate (CN front-proxy-client) and a serving one
    for 127.0.0.1, both signed by it."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {"ca": folder / "ca.crt", "ca_key": folder / "ca.key"}
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(out["ca_key"]),
             "-out", str(out["ca"]), "-days", "1", "-subj", "/CN=karmada test CA")
    for name, subject, ext in (
            ("proxy", "/CN=front-proxy-client", "extendedKeyUsage=clientAuth"),
            ("serving", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\n"
                                         "extendedKeyUsage=serverAuth")):
        key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
        extfile = folder / f"{name}.ext"
        extfile.write_text(ext + "\n", encoding="utf-8")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                 str(csr), "-subj", subject)
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(out["ca"]), "-CAkey",
                 str(out["ca_key"]), "-CAcreateserial", "-out", str(cert), "-days", "1",
                 "-extfile", str(extfile))
        out[name], out[f"{name}_key"] = cert, key
    return out


def cluster_ready(cluster: Mapping[str, Any] | None) -> bool | None:
    """A ``Cluster``'s Ready condition (None: none yet)."""
    for cond in ((cluster or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return None


class KarmadaSet:
    """A Karmada host and its members (see the module docstring)."""

    def __init__(self, workdir: Path, members: Mapping[str, Mapping[str, str]]) -> None:
        self.workdir = workdir
        self.member_labels = {name: dict(labels) for name, labels in members.items()}
        self.bin = Path(os.environ.get("SUANDIAN_KARMADA_BIN") or "/nonexistent")
        self.host: ControlPlane | None = None
        self.members: dict[str, ControlPlane] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, Any] = {}
        self.pki: dict[str, Path] = {}

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, setup: Callable[[Kube], object] | None = None,
              member_setup: Callable[[str, Kube], object] | None = None,
              timeout: float = 120.0) -> KarmadaSet:
        """Start the host (``setup`` runs on it before its controllers start), Karmada,
        the members (``member_setup(name, admin)`` on each: Nodes), and join them."""
        reason = missing_karmada()
        if reason:
            raise RuntimeError(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = pki = _pki(self.workdir / "pki")
        self.host = ControlPlane(self.workdir / "host", name="karmada", apiserver_args=(
            f"--proxy-client-cert-file={pki['proxy']}",
            f"--proxy-client-key-file={pki['proxy_key']}",
            f"--requestheader-client-ca-file={pki['ca']}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--disable-admission-plugins=StorageObjectInUseProtection",
        ), controllers=HOST_CONTROLLERS, scheduler=False)

        def host_setup(kube: Kube) -> None:
            self._install_crds(kube, timeout)
            if setup is not None:
                setup(kube)

        self.host.start(timeout=timeout, setup=host_setup)
        kube = self.host.admin()
        kubeconfig = self.host.kubeconfig(self.workdir / "karmada.kubeconfig")
        self._aggregated_apiserver(kube, kubeconfig, timeout)
        self._webhook(kube, kubeconfig, timeout)
        self._spawn("karmada-controller-manager", [
            f"--kubeconfig={kubeconfig}", "--leader-elect=false",
            f"--metrics-bind-address=127.0.0.1:{free_port()}",
            f"--health-probe-bind-address=127.0.0.1:{free_port()}",
            "--cluster-status-update-frequency=2s", "--cluster-monitor-period=1s",
            "--cluster-monitor-grace-period=6s", "--cluster-failure-threshold=3s",
            "--cluster-success-threshold=2s"])
        self._spawn("karmada-scheduler", [
            f"--kubeconfig={kubeconfig}", "--leader-elect=false",
            f"--metrics-bind-address=127.0.0.1:{free_port()}",
            f"--health-probe-bind-address=127.0.0.1:{free_port()}"])
        for name in self.member_labels:
            member = self.members[name] = ControlPlane(self.workdir / name, name=name)
            member.start(timeout=timeout)  # known before it starts: stop() ends a failed start
            if member_setup is not None:
                member_setup(name, member.admin())
            self.join(name)
        for name in self.member_labels:
            wait_for(lambda n=name: cluster_ready(kube.get(f"{CLUSTERS}/{n}")), timeout=timeout,
                     what=f"member {name} Ready in Karmada")
        return self

    def join(self, name: str) -> None:
        """Register member ``name`` in Push mode (its admin token in a Secret)."""
        assert self.host is not None
        kube, member = self.host.admin(), self.members[name]
        kube.apply_all([{"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": name, "namespace": "karmada-cluster"},
            "data": {"token": base64.b64encode(ADMIN_TOKEN.encode()).decode()}}])
        body = {"apiVersion": "cluster.karmada.io/v1alpha1", "kind": "Cluster",
                "metadata": {"name": name, "labels": self.member_labels[name]},
                "spec": {"syncMode": "Push", "apiEndpoint": member.url,
                         "insecureSkipTLSVerification": True,
                         "secretRef": {"namespace": "karmada-cluster", "name": name}}}
        if kube.get(f"{CLUSTERS}/{name}") is None:
            kube.raw("POST", CLUSTERS, body)

    def stop_member(self, name: str) -> None:
        """Take a member's control plane down (Karmada finds it unreachable)."""
        self.members[name].stop()

    def restart_member(self, name: str, timeout: float = 120.0) -> None:
        """Bring a stopped member back on its own etcd data (what it held is still there),
        at the new endpoint its API server got, and point its ``Cluster`` there."""
        assert self.host is not None
        member = self.members[name]
        for stale in (member.ca_file, member.ca_file.with_suffix(".key")):
            stale.unlink(missing_ok=True)  # the start waits for a new serving certificate
        member.start(timeout=timeout)
        self.host.admin().patch(f"{CLUSTERS}/{name}", {"spec": {"apiEndpoint": member.url}})

    def stop(self) -> None:
        stop_processes([p for p in (self._procs.pop(n, None) for n in (
            "karmada-scheduler", "karmada-controller-manager", "karmada-webhook",
            "karmada-aggregated-apiserver")) if p is not None])
        for log in self._logs.values():
            log.close()
        self._logs.clear()
        for member in self.members.values():
            member.stop()
        if self.host is not None:
            self.host.stop()

    def __enter__(self) -> KarmadaSet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests read -----------------------------------------------------------------

    def admin(self) -> Kube:
        assert self.host is not None
        return self.host.admin()

    def member(self, name: str) -> Kube:
        return self.members[name].admin()

    def log_tail(self, name: str, size: int = 4000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    def rss_mib(self) -> float:
        """Resident memory of every process of the set (host, members, Karmada), MiB."""
        pids = [p.pid for p in self._procs.values()]
        for plane in (self.host, *self.members.values()):
            if plane is not None:
                pids += [p.pid for p in plane._procs.values()]
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    # -- parts ---------------------------------------------------------------------------

    def _spawn(self, name: str, args: Sequence[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed by stop()
        self._logs[name] = log
        self._procs[name] = subprocess.Popen([str(self.bin / name), *args], stdout=log,
                                             stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)

    def _alive(self, name: str) -> None:
        proc = self._procs[name]
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def _install_crds(self, kube: Kube, timeout: float) -> None:
        kube.apply_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                        for ns in ("karmada-system", "karmada-cluster")])
        names = []
        for path in sorted((FIXTURES / "crds").rglob("*.yaml")):
            for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if crd:
                    names.append(crd["metadata"]["name"])
                    kube.raw("PATCH", "/apis/apiextensions.k8s.io/v1/"
                             f"customresourcedefinitions/{names[-1]}", crd,
                             content_type="application/apply-patch+yaml",
                             query={"fieldManager": "karmada", "force": "true"})
        for name in names:
            wait_for(lambda n=name: _established(kube, n), timeout=timeout,
                     what=f"CRD {name} Established")

    def _aggregated_apiserver(self, kube: Kube, kubeconfig: Path, timeout: float) -> None:
        assert self.host is not None
        port = free_port()
        certs = self.workdir / "aggregated-certs"
        certs.mkdir(exist_ok=True)
        self._spawn("karmada-aggregated-apiserver", [
            f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--etcd-servers={self.host.etcd_url}", "--bind-address=127.0.0.1",
            f"--secure-port={port}", f"--cert-dir={certs}"])
        kube.apply_all([{
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "karmada-aggregated-apiserver", "namespace": "karmada-system"},
            "spec": {"type": "ExternalName", "externalName": "127.0.0.1"}}])
        kube.raw("POST", "/apis/apiregistration.k8s.io/v1/apiservices", {
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v1alpha1.cluster.karmada.io"},
            "spec": {"group": "cluster.karmada.io", "version": "v1alpha1",
                     "groupPriorityMinimum": 2000, "versionPriority": 10,
                     "insecureSkipTLSVerify": True,
                     "service": {"namespace": "karmada-system",
                                 "name": "karmada-aggregated-apiserver", "port": port}}})

        def served() -> bool:
            self._alive("karmada-aggregated-apiserver")
            try:
                kube.list(CLUSTERS)
            except KubeError:
                return False
            return True

        wait_for(served, timeout=timeout, what="Clusters served by the aggregated API")

    def _webhook(self, kube: Kube, kubeconfig: Path, timeout: float) -> None:
        port = free_port()
        certs = self.workdir / "webhook-certs"
        certs.mkdir(exist_ok=True)
        (certs / "tls.crt").write_bytes(self.pki["serving"].read_bytes())
        (certs / "tls.key").write_bytes(self.pki["serving_key"].read_bytes())
        self._spawn("karmada-webhook", [
            f"--kubeconfig={kubeconfig}", "--bind-address=127.0.0.1",
            f"--secure-port={port}", f"--cert-dir={certs}",
            f"--health-probe-bind-address=127.0.0.1:{free_port()}",
            f"--metrics-bind-address=127.0.0.1:{free_port()}"])
        bundle = base64.b64encode(self.pki["ca"].read_bytes()).decode()
        text = (FIXTURES / "webhook-configuration.yaml").read_text(encoding="utf-8")
        text = text.replace("https://karmada-webhook.karmada-system.svc:443",
                            f"https://127.0.0.1:{port}").replace("{{caBundle}}", bundle)
        configs = [d for d in yaml.safe_load_all(text) if d]
        deadline = time.monotonic() + timeout
        import socket
        while True:  # the webhook serves before it is registered (failurePolicy: Fail)
            self._alive("karmada-webhook")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"karmada-webhook not serving:\n"
                                       f"{self.log_tail('karmada-webhook')}") from None
                time.sleep(0.2)
        kube.apply_all(configs)


def _established(kube: Kube, name: str) -> bool:
    crd = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}") or {}
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])

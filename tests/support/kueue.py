"""The real Kueue manager, run out of cluster on a :class:`ControlPlane`.

``KueueManager(plane, workdir).start()`` installs Kueue's CRDs (server-side, as Kueue's
own install does), its webhooks pointed at the manager on loopback with a ``caBundle``
(the Pod, Deployment and StatefulSet webhooks left out: only ``batch/job`` is managed,
else every Pod would go through Kueue with ``failurePolicy: Fail``), starts
``kueue-manager`` with the configuration ``../shared/kueue/README.md`` found to work, and
waits until its webhook answers. It writes a throwaway certificate to
``/etc/kueue/metrics/certs`` (the manager insists on that path; tests run as root here).
Where the binary lives: ``$SUANDIAN_KUEUE_BIN`` (a
folder with ``kueue-manager``; ``../shared/kueue/unpack.sh`` prints one); the CRDs and
webhook manifests are the ones beside ``unpack.sh``, found by :func:`kueue_manifests`.
"""

from __future__ import annotations

import base64
import copy
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from tests.support.controlplane import ControlPlane
from tests.support.kube import Kube, KubeError, wait_for
from tests.support.operator import free_port

__all__ = ["KueueManager", "kueue_manifests", "missing_kueue"]

NAMESPACE = "kueue-system"
SKIPPED_WEBHOOKS = ("pod", "deployment", "statefulset")
METRICS_CERTS = Path("/etc/kueue/metrics/certs")


def kueue_manifests() -> Path | None:
    """The folder holding Kueue's ``crds/`` and ``webhook-manifests.yaml``."""
    for folder in (os.environ.get("SUANDIAN_KUEUE_DIR"), "../shared/kueue",
                   "../../shared/kueue", "/work/shared/kueue"):
        if folder and (Path(folder) / "webhook-manifests.yaml").is_file():
            return Path(folder)
    return None


def missing_kueue() -> str | None:
    binary = os.environ.get("SUANDIAN_KUEUE_BIN")
    if not binary:
        return ("SUANDIAN_KUEUE_BIN is not set (export the folder ../shared/kueue/unpack.sh "
                "prints)")
    if not (Path(binary) / "kueue-manager").is_file():
        return f"SUANDIAN_KUEUE_BIN={binary} holds no kueue-manager"
    if kueue_manifests() is None:
        return "no Kueue CRDs and webhook manifests (set SUANDIAN_KUEUE_DIR)"
    return None


class KueueManager:
    """One Kueue manager process against ``plane`` (see the module docstring)."""

    def __init__(self, plane: ControlPlane, workdir: Path) -> None:
        self.plane = plane
        self.workdir = workdir
        self.kube: Kube = plane.admin()
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "kueue-manager.log"

    def start(self, ca: Path, cert: Path, key: Path, timeout: float = 90.0) -> KueueManager:
        """Install and start Kueue; ``ca``/``cert``/``key``: a serving certificate for
        127.0.0.1 and the CA that signed it (the webhooks' ``caBundle``)."""
        folder = kueue_manifests()
        assert folder is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kube.apply_all([{"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": NAMESPACE}}])
        names = []
        for path in sorted((folder / "crds").glob("*.yaml")):
            for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if crd:
                    names.append(crd["metadata"]["name"])
                    self.kube.raw("PATCH", "/apis/apiextensions.k8s.io/v1/"
                                  f"customresourcedefinitions/{names[-1]}", crd,
                                  content_type="application/apply-patch+yaml",
                                  query={"fieldManager": "kueue", "force": "true"})
        for name in names:  # the manager sets up its indexes on them at once
            wait_for(lambda n=name: _established(self.kube, n), timeout=timeout,
                     what=f"CRD {name} Established")
        certs = self.workdir / "certs"
        # the manager always starts its metrics server's certificate watcher on this fixed
        # path when its own certificate management is off (it exits without it)
        for folder_ in (certs, METRICS_CERTS):
            folder_.mkdir(parents=True, exist_ok=True)
            (folder_ / "tls.crt").write_bytes(cert.read_bytes())
            (folder_ / "tls.key").write_bytes(key.read_bytes())
        port = free_port()
        health = free_port()
        config = self.workdir / "config.yaml"
        config.write_text(yaml.safe_dump({
            "apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration",
            "namespace": NAMESPACE,
            "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
            "metrics": {"bindAddress": "0"},
            "webhook": {"port": port, "host": "127.0.0.1", "certDir": str(certs)},
            "leaderElection": {"leaderElect": False},
            "internalCertManagement": {"enable": False},
            "clientConnection": {"qps": 300, "burst": 500},
            "integrations": {"frameworks": ["batch/job"]},
            "featureGates": {"VisibilityOnDemand": False},
        }), encoding="utf-8")
        kubeconfig = self.plane.kubeconfig(self.workdir / "kubeconfig")
        binary = Path(os.environ["SUANDIAN_KUEUE_BIN"]) / "kueue-manager"
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [str(binary), f"--config={config}", f"--kubeconfig={kubeconfig}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._register_webhooks(folder / "webhook-manifests.yaml", port, ca)
        self._wait(health, timeout)
        return self

    def _register_webhooks(self, manifests: Path, port: int, ca: Path) -> None:
        bundle = base64.b64encode(ca.read_bytes()).decode()
        selector = {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                          "operator": "NotIn",
                                          "values": ["kube-system", NAMESPACE]}]}
        for doc in yaml.safe_load_all(manifests.read_text(encoding="utf-8")):
            if not doc:
                continue
            config = copy.deepcopy(doc)
            hooks = []
            for hook in config.get("webhooks") or []:
                if any(f"-{kind}" in hook["clientConfig"]["service"]["path"]
                       for kind in SKIPPED_WEBHOOKS):
                    continue
                path = hook["clientConfig"]["service"]["path"]
                hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}",
                                        "caBundle": bundle}
                hook["namespaceSelector"] = selector
                hooks.append(hook)
            config["webhooks"] = hooks
            config["metadata"] = {"name": f"kueue-{config['metadata']['name']}"}
            self.kube.apply_all([config])

    def _wait(self, health: int, timeout: float) -> None:
        """Until the manager is healthy and its webhook admits a ResourceFlavor."""
        import urllib.request

        deadline = time.monotonic() + timeout
        probe = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
                 "metadata": {"name": "kueue-ready-probe"}}
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"kueue-manager exited:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=2):
                    self.kube.raw("POST", "/apis/kueue.x-k8s.io/v1beta2/resourceflavors",
                                  probe, query={"dryRun": "All"})
                    return
            except (OSError, KubeError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"kueue-manager not ready after {timeout}s:\n{self.tail()}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def tail(self, size: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() \
            else ""

    # -- what the scenarios set up ---------------------------------------------------------

    def queues(self, sites: dict[str, dict[str, str]], quota: dict[str, dict[str, str]],
               namespaces: list[str], queue: str = "default",
               cluster_queue: str = "suandian") -> None:
        """A ResourceFlavor per site (its nodes' labels), one ClusterQueue with ``quota``
        per flavor, and a LocalQueue ``queue`` in each namespace."""
        flavors = [{"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
                    "metadata": {"name": name}, "spec": {"nodeLabels": labels}}
                   for name, labels in sites.items()]
        resources = sorted({r for q in quota.values() for r in q})
        cq = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
              "metadata": {"name": cluster_queue},
              "spec": {"namespaceSelector": {}, "resourceGroups": [{
                  "coveredResources": resources,
                  "flavors": [{"name": name, "resources": [
                      {"name": r, "nominalQuota": quota[name].get(r, "0")}
                      for r in resources]} for name in sites]}]}}
        local = [{"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
                  "metadata": {"name": queue, "namespace": ns},
                  "spec": {"clusterQueue": cluster_queue}} for ns in namespaces]
        for obj in (*flavors, cq, *local):
            self.kube.raw("POST", _path(obj), obj)

    def workloads(self, namespace: str) -> list[dict[str, Any]]:
        return self.kube.list(f"/apis/kueue.x-k8s.io/v1beta2/namespaces/{namespace}/workloads")


def _established(kube: Kube, name: str) -> bool:
    crd = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}") or {}
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


def _path(obj: dict[str, Any]) -> str:
    plural = {"ResourceFlavor": "resourceflavors", "ClusterQueue": "clusterqueues",
              "LocalQueue": "localqueues"}[obj["kind"]]
    ns = obj["metadata"].get("namespace")
    return (f"/apis/kueue.x-k8s.io/v1beta2/{f'namespaces/{ns}/' if ns else ''}{plural}")


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c.get("type") == kind), None)


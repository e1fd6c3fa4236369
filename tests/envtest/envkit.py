"""What the real-API scenarios share: the cluster they set up and the objects they make.

One control plane per test session (``conftest.control_plane``), set up the way a
platform team would: the CRDs from ``crds/`` (and kopf's peering CRD from the chart),
the chart's ServiceAccount, RBAC and peering object rendered by real Helm (the Go SDK in
the ``helm-python-sdk`` wheel), Ready Nodes in four regions, and four PowerSites whose
forecasts are CSV files in a ConfigMap of the operator's namespace, written relative to
the session's start so that every scenario knows what the planner must decide:

- ``gansu``, ``guangdong``, ``yangtze-delta``: green all the time (jobs start at once);
- ``ningxia``: no green for six hours, then plenty (jobs allowed only there wait).
"""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import helm_python
import yaml
from tests.support.controlplane import ControlPlane
from tests.support.kube import Kube, KubeError, path_of, wait_for

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "suandian"
RELEASE, NAMESPACE = "suandian", "suandian-system"
SERVICE_ACCOUNT = "suandian"  # the chart's fullname for release "suandian"
REGION = "topology.kubernetes.io/region"
FORECASTS = "suandian-forecasts"  # the ConfigMap of CSV forecasts
GREEN_AFTER = timedelta(hours=6)  # when ningxia's green power arrives

# name, region, CPUs, GPUs
NODES = [
    ("gansu-1", "gansu", 64, 0), ("gansu-2", "gansu", 64, 0),
    ("ningxia-1", "ningxia", 64, 0), ("ningxia-2", "ningxia", 64, 0),
    ("guangdong-1", "guangdong", 32, 0), ("yangtze-gpu-1", "yangtze-delta", 32, 8),
]
SITES = ("gansu", "ningxia", "guangdong", "yangtze-delta")
RBAC_KINDS = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
              "RoleBinding", "ClusterKopfPeering"}


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def render_chart(values: Mapping[str, Any] | None = None, *, upgrade: bool = False,
                 revision: int = 1) -> list[dict[str, Any]]:
    """The chart's objects as ``helm install suandian -n suandian-system`` renders them
    (``upgrade``: as ``helm upgrade`` does, at ``revision``)."""
    chart = helm_python.Chart.load(CHART)
    try:
        rendered = chart.render(dict(values or {}), name=RELEASE, namespace=NAMESPACE,
                                is_install=not upgrade, is_upgrade=upgrade,
                                revision=revision)
    finally:
        chart.close()
    return [doc for path in sorted(rendered) if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(rendered[path]) if doc]


# -- CRDs ------------------------------------------------------------------------------


def install_crds(kube: Kube) -> list[str]:
    """Create the project's CRDs and kopf's; wait until each is Established and served."""
    crds = [d for p in sorted((ROOT / "crds").glob("*.yaml")) for d in load_docs(p)]
    crds += load_docs(CHART / "crds" / "kopf-peering.yaml")
    kube.apply_all(crds)
    names = [c["metadata"]["name"] for c in crds]
    for name in names:
        wait_for(lambda n=name: established(kube, n), timeout=60,
                 what=f"CRD {name} Established")
    # a freshly created CRD's storage may answer 429 "(re)initializing" for a moment
    wait_for(lambda: _lists(kube, "/apis/suandian.io/v1alpha1/computejobs"), timeout=30,
             what="ComputeJobs served")
    return names


def established(kube: Kube, name: str) -> bool:
    crd = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}") or {}
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


def _lists(kube: Kube, path: str) -> bool:
    try:
        kube.list(path)
    except KubeError as exc:
        if exc.status in (404, 429, 503):
            return False
        raise
    return True


# -- Nodes -----------------------------------------------------------------------------


def add_nodes(kube: Kube, nodes: Iterable[tuple[str, str, int, int]] = NODES,
              memory: str = "256Gi") -> None:
    """Ready Nodes with no kubelet: created, untainted, their status written by hand."""
    for name, region, cpus, gpus in nodes:
        kube.apply_all([{"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": name, "labels": {REGION: region, "kubernetes.io/hostname": name,
                                     "kubernetes.io/os": "linux"}}}])
        # TaintNodesByCondition taints a new Node not-ready; its kubelet would clear it
        kube.patch(f"/api/v1/nodes/{name}", {"spec": {"taints": None}})
        capacity = {"cpu": str(cpus), "memory": memory, "pods": "110",
                    "ephemeral-storage": "500Gi"}
        if gpus:
            capacity["nvidia.com/gpu"] = str(gpus)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        kube.patch(f"/api/v1/nodes/{name}/status", {"status": {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "envtest node", "lastHeartbeatTime": now,
                            "lastTransitionTime": now}]}})


# -- the chart -------------------------------------------------------------------------


def install_chart_rbac(kube: Kube, values: Mapping[str, Any] | None = None
                       ) -> list[dict[str, Any]]:
    """The chart's namespace-level identity: its ServiceAccount, RBAC and peering object."""
    objects = [o for o in render_chart(values) if o["kind"] in RBAC_KINDS]
    kube.apply_all([{"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": NAMESPACE}}])
    for obj in objects:
        obj.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
    return kube.apply_all(objects)


def operator_kubeconfig(plane: ControlPlane, path: Path) -> Path:
    """A kubeconfig with the chart ServiceAccount's token, from the TokenRequest API."""
    token = plane.admin().service_account_token(NAMESPACE, SERVICE_ACCOUNT, seconds=6 * 3600)
    return plane.kubeconfig(path, token=token, user=f"system:serviceaccount:{NAMESPACE}:"
                            f"{SERVICE_ACCOUNT}", namespace=NAMESPACE)


# -- PowerSites and their forecasts ----------------------------------------------------


def _csv(start: datetime, value_at: Any, hours: int = 72) -> str:
    rows = ["time,value"]
    first = start.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    for h in range(hours + 2):
        t = first + timedelta(hours=h)
        rows.append(f"{t:%Y-%m-%dT%H:%M:%SZ},{value_at(t):g}")
    return "\n".join(rows) + "\n"


Green = Callable[[datetime], float]


def default_green(start: datetime) -> dict[str, Green]:
    """Green kW by site (see the module docstring): ningxia's comes after six hours."""
    later = start + GREEN_AFTER

    def steady(_: datetime) -> float:
        return 200_000.0

    def ningxia(t: datetime) -> float:
        return 200_000.0 if t >= later else 0.0

    return {site: ningxia if site == "ningxia" else steady for site in SITES}


def forecast_configmap(start: datetime, green: Mapping[str, Green] | None = None
                       ) -> dict[str, Any]:
    """CSV forecasts for every site, written relative to ``start`` (``green``: kW over
    time by site, :func:`default_green` when not given)."""
    green = green or default_green(start)
    data = {f"{site}-solar": _csv(start, green[site]) for site in green}
    data.update({f"{site}-carbon": _csv(start, lambda _: 550.0) for site in green})
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": FORECASTS, "namespace": NAMESPACE}, "data": data}


def powersite(name: str) -> dict[str, Any]:
    """A PowerSite of the nodes in region ``name``, forecast from the ConfigMap."""
    def csv(signal: str, key: str) -> dict[str, Any]:
        return {"provider": "csv", "csv": {"signals": {signal: {"name": FORECASTS,
                                                                "key": f"{name}-{key}"}}}}

    return {
        "apiVersion": "suandian.io/v1alpha1", "kind": "PowerSite",
        "metadata": {"name": name, "labels": {"suandian.io/zone": "test"}},
        "spec": {
            "nodeSelector": {REGION: name},
            "location": {"latitude": 36.0, "longitude": 105.0, "timeZone": "Asia/Shanghai"},
            "supply": [{"type": "solar", "capacityKW": 300_000}],
            "grid": {"importLimitKW": 500_000, "carbonIntensity": 550.0},
            "pue": 1.2,
            "forecast": {"refreshInterval": "15m", "maxStaleness": "6h",
                         "supply": csv("solar", "solar"), "carbon": csv("carbonIntensity",
                                                                        "carbon")},
        },
    }


def install_sites(kube: Kube, start: datetime, green: Mapping[str, Green] | None = None
                  ) -> None:
    green = green or default_green(start)
    kube.apply_all([forecast_configmap(start, green), *(powersite(s) for s in green)])


def set_green(kube: Kube, start: datetime, green: Mapping[str, Green]) -> None:
    """New forecasts for some sites, read at once: the ConfigMap rewritten, and each
    site's spec touched (a PowerSite refreshes when its spec changes)."""
    current = kube.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/{FORECASTS}") or {}
    data = {**(current.get("data") or {}), **forecast_configmap(start, green)["data"]}
    kube.patch(f"/api/v1/namespaces/{NAMESPACE}/configmaps/{FORECASTS}", {"data": data})
    for site in green:
        obj = kube.get(f"/apis/suandian.io/v1alpha1/powersites/{site}") or {}
        interval = (obj.get("spec") or {}).get("forecast", {}).get("refreshInterval")
        kube.patch(f"/apis/suandian.io/v1alpha1/powersites/{site}", {"spec": {"forecast": {
            "refreshInterval": "14m" if interval == "15m" else "15m"}}})


def set_up(kube: Kube, start: datetime, chart_values: Mapping[str, Any] | None = None,
           green: Mapping[str, Green] | None = None) -> None:
    """Everything a scenario expects of the cluster (see the module docstring)."""
    install_crds(kube)
    install_chart_rbac(kube, chart_values)
    add_nodes(kube)
    install_sites(kube, start, green)


# -- reading the outcome ---------------------------------------------------------------


def namespace(kube: Kube, name: str) -> str:
    kube.apply_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}])
    return name


def status_of(kube: Kube, obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict((kube.get(path_of(obj)) or {}).get("status") or {})


def events_of(kube: Kube, obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Events about ``obj`` (by kind and name), oldest first."""
    meta = obj["metadata"]
    ns = meta.get("namespace") or "default"
    selector = f"involvedObject.kind={obj['kind']},involvedObject.name={meta['name']}"
    found = kube.list(f"/api/v1/namespaces/{ns}/events", fieldSelector=selector)
    return sorted(found, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")


def posted(kube: Kube, obj: Mapping[str, Any], reason: str, *, type: str | None = None,
           text: str = "", timeout: float = 30) -> list[dict[str, Any]]:
    """Wait for the events about ``obj`` with this reason (and type, and text in the
    message), oldest first. kopf posts events from a queue of its own after the status
    patch, so a status a test has seen does not mean its event is in the API yet."""
    def found() -> list[dict[str, Any]]:
        return [e for e in events_of(kube, obj) if e["reason"] == reason
                and (type is None or e["type"] == type) and text in (e.get("message") or "")]
    return wait_for(found, timeout=timeout, what=f"a {type or ''} {reason} event".replace(
        "  ", " ") + (f" saying {text!r}" if text else ""))


def child_of(kube: Kube, cj: Mapping[str, Any]) -> dict[str, Any] | None:
    meta = cj["metadata"]
    return kube.get(f"/apis/batch/v1/namespaces/{meta['namespace']}/jobs/{meta['name']}")


def pods_of(kube: Kube, job: Mapping[str, Any]) -> list[dict[str, Any]]:
    meta = job["metadata"]
    return kube.list(f"/api/v1/namespaces/{meta['namespace']}/pods",
                     labelSelector=f"batch.kubernetes.io/job-name={meta['name']}")


def condition(status: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def settle(seconds: float) -> None:
    """Give the operator a moment to do what it should not (a negative check)."""
    time.sleep(seconds)


def webhook_certs(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA and a serving certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca, ca_key = workdir / "ca.crt", workdir / "ca.key"
    cert, key, csr = workdir / "tls.crt", workdir / "tls.key", workdir / "tls.csr"
    san = workdir / "san.cnf"
    san.write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
            "-out", str(ca), "-days", "1", "-subj", "/CN=envtest webhook CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(san))
    return ca, cert, key


def chart_webhook(ca: Path, port: int) -> dict[str, Any]:
    """The chart's MutatingWebhookConfiguration, pointed at ``https://127.0.0.1:port``
    (where the operator process serves it) instead of the in-cluster Service."""
    values = {"webhook": {"certManager": {"enabled": False},
                          "tls": {"secretName": "suandian-webhook-tls",
                                  "caBundle": b64(ca.read_bytes())}}}
    (config,) = [o for o in render_chart(values) if o["kind"] == "MutatingWebhookConfiguration"]
    for hook in config["webhooks"]:
        service = hook["clientConfig"].pop("service")
        hook["clientConfig"]["url"] = f"https://127.0.0.1:{port}{service['path']}"
    return config

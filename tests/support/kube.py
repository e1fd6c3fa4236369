"""A small synchronous client of a real API server, for the test's side of a scenario.

Tests of the real-API tier set up objects and read the outcome with it; the operator
under test uses its own client. Bodies are dicts; a 404 on ``get`` is ``None``; every
other error is :class:`KubeError` with the server's status, reason and message, so a
test can assert on exactly what the server refused and why.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import urllib3

__all__ = ["Kube", "KubeError", "path_of", "wait_for"]

T = TypeVar("T")
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# plural paths of the kinds tests create; anything else is given as a path
_KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("v1", "Pod"): ("pods", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Event"): ("events", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("v1", "Service"): ("services", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("suandian.io/v1alpha1", "ComputeJob"): ("computejobs", True),
    ("suandian.io/v1alpha1", "PowerSite"): ("powersites", False),
    ("suandian.io/v1alpha1", "GridEvent"): ("gridevents", False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions",
                                                              False),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"): (
        "mutatingwebhookconfigurations", False),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): (
        "validatingwebhookconfigurations", False),
    ("kopf.dev/v1", "ClusterKopfPeering"): ("clusterkopfpeerings", False),
}


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


def path_of(obj: Mapping[str, Any], *, name: bool = True) -> str:
    """The REST path of a manifest (its collection when ``name`` is false)."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    plural, namespaced = _KINDS[(api_version, kind)]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    meta = obj.get("metadata") or {}
    if namespaced:
        base += f"/namespaces/{meta.get('namespace') or 'default'}"
    base += f"/{plural}"
    return f"{base}/{meta['name']}" if name else base


class Kube:
    """Calls to one API server with one bearer token."""

    def __init__(self, url: str, token: str, *, ca_file: Path) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self._http = urllib3.PoolManager(ca_certs=str(ca_file), cert_reqs="CERT_REQUIRED",
                                         maxsize=4, retries=False,
                                         timeout=urllib3.Timeout(connect=5, read=30))

    def raw(self, method: str, path: str, body: Any = None, *,
            content_type: str = "application/json",
            query: Mapping[str, str] | None = None) -> Any:
        """One request; the decoded JSON answer (text when it is not JSON)."""
        url = self.url + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                   "Content-Type": content_type}
        data = None if body is None else json.dumps(body).encode()
        response = self._http.request(method, url, body=data, headers=headers)
        text = response.data.decode("utf-8", "replace")
        try:
            decoded: Any = json.loads(text) if text else {}
        except ValueError:
            decoded = text
        if response.status >= 400:
            info = decoded if isinstance(decoded, dict) else {"message": text[:500]}
            raise KubeError(response.status, str(info.get("reason") or ""),
                            str(info.get("message") or ""))
        return decoded

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            return dict(self.raw("GET", path))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, path: str, **query: str) -> list[dict[str, Any]]:
        return list(self.raw("GET", path, query=query or None).get("items") or [])

    def create(self, obj: Mapping[str, Any], *, strict: bool = True,
               dry_run: bool = False) -> dict[str, Any]:
        """POST with strict field validation (kubectl's default): unknown fields refused;
        ``dry_run``: admitted (or refused) in full, stored nowhere."""
        query = {"fieldValidation": "Strict"} if strict else {}
        if dry_run:
            query["dryRun"] = "All"
        return dict(self.raw("POST", path_of(obj, name=False), dict(obj), query=query))

    def apply_all(self, objs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Create each object, or leave it when one of that name exists."""
        out = []
        for obj in objs:
            try:
                out.append(self.create(obj))
            except KubeError as exc:
                if exc.status != 409:
                    raise
                out.append(self.raw("GET", path_of(obj)))
        return out

    def patch(self, path: str, patch: Any, *, content_type: str = MERGE) -> dict[str, Any]:
        return dict(self.raw("PATCH", path, patch, content_type=content_type))

    def delete(self, path: str, *, propagation: str = "Background") -> bool:
        try:
            self.raw("DELETE", path, {"propagationPolicy": propagation})
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def service_account_token(self, namespace: str, name: str,
                              seconds: int = 3600) -> str:
        """A token for a ServiceAccount from the TokenRequest API, as a pod would get."""
        answer = self.raw("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                          {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                           "spec": {"expirationSeconds": seconds}})
        return str(answer["status"]["token"])


def wait_for(probe: Callable[[], T | None], *, timeout: float = 60.0, step: float = 0.2,
             what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)

"""Helpers of the chart tests: render results as objects, and pick objects out of them."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from crdcheck import admit

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "suandian"
RELEASE = "suandian"
NAMESPACE = "suandian-system"

Obj = dict[str, Any]


def objects_of(rendered: dict[str, str]) -> list[Obj]:
    """Every Kubernetes object of a render, in template order (NOTES.txt left out)."""
    found: list[Obj] = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        found.extend(doc for doc in yaml.safe_load_all(rendered[path]) if doc)
    return found


def find(objects: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind
            and (name is None or o["metadata"]["name"] == name)]


def operator_roles(objects: list[Obj]) -> list[Obj]:
    """The roles bound to a ServiceAccount (the operator's; the chart binds no user)."""
    bound = {b["roleRef"]["name"] for b in find(objects, "ClusterRoleBinding")
             + find(objects, "RoleBinding")
             if any(s["kind"] == "ServiceAccount" for s in b["subjects"])}
    return [r for r in find(objects, "ClusterRole") + find(objects, "Role")
            if r["metadata"]["name"] in bound]


def one(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    matches = find(objects, kind, name)
    assert len(matches) == 1, f"expected one {kind} {name or ''}, got {len(matches)}"
    return matches[0]


def load_yaml_docs(path: Path) -> list[Obj]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _crd(schema: Obj) -> Obj:
    """A CRD-shaped wrapper, so crdcheck.admit can apply a schema."""
    return {"spec": {"versions": [{"schema": {"openAPIV3Schema": {
        "type": "object", "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "spec": schema}, "required": ["spec"]}}}]}}


_STR = {"type": "string"}
_STR_MAP = {"type": "object", "additionalProperties": _STR}
_SELECTOR = {"type": "object", "properties": {"matchLabels": _STR_MAP}}
THIRD_PARTY: dict[tuple[str, str], Obj] = {
    # The fields of the upstream CRDs (prometheus-operator v0.7x, cert-manager v1) that the
    # chart sets, with their types: unknown or mistyped fields are refused.
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _crd({
        "type": "object", "required": ["selector", "endpoints"], "properties": {
            "jobLabel": _STR, "selector": _SELECTOR,
            "namespaceSelector": {"type": "object", "properties": {
                "matchNames": {"type": "array", "items": _STR}}},
            "endpoints": {"type": "array", "minItems": 1, "items": {
                "type": "object", "properties": {
                    "port": _STR, "path": _STR, "interval": _STR,
                    "scrapeTimeout": _STR}}}}}),
    ("monitoring.coreos.com/v1", "PrometheusRule"): _crd({
        "type": "object", "properties": {"groups": {"type": "array", "items": {
            "type": "object", "required": ["name", "rules"], "properties": {
                "name": _STR, "interval": _STR, "rules": {"type": "array", "items": {
                    "type": "object", "required": ["expr"], "properties": {
                        "alert": _STR, "record": _STR, "expr": _STR, "for": _STR,
                        "labels": _STR_MAP, "annotations": _STR_MAP}}}}}}}}),
    ("cert-manager.io/v1", "Issuer"): _crd({
        "type": "object", "properties": {"selfSigned": {"type": "object"}}}),
    ("cert-manager.io/v1", "Certificate"): _crd({
        "type": "object", "required": ["secretName", "issuerRef"], "properties": {
            "secretName": _STR, "duration": _STR, "renewBefore": _STR,
            "dnsNames": {"type": "array", "minItems": 1, "items": _STR},
            "privateKey": {"type": "object", "properties": {
                "algorithm": {"type": "string", "enum": ["RSA", "ECDSA", "Ed25519"]},
                "size": {"type": "integer"},
                "rotationPolicy": {"type": "string", "enum": ["Never", "Always"]}}},
            "issuerRef": {"type": "object", "required": ["name"], "properties": {
                "name": _STR, "kind": _STR, "group": _STR}}}}),
}


@functools.cache
def chart_crds() -> dict[tuple[str, str], Obj]:
    """The chart's own CRDs (Suandian's and kopf's peering), by (apiVersion, kind)."""
    found: dict[tuple[str, str], Obj] = {}
    for path in sorted((CHART / "crds").glob("*.yaml")):
        for crd in load_yaml_docs(path):
            for version in crd["spec"]["versions"]:
                api_version = f"{crd['spec']['group']}/{version['name']}"
                found[api_version, crd["spec"]["names"]["kind"]] = crd
    return found


K8S_VERSION = "1.37"
"""The newest Kubernetes whose schemas kubernetes-validate ships."""
OLDEST_K8S_VERSION = "1.30"
"""The oldest the chart supports (Chart.yaml kubeVersion; pod scheduling gates are GA)."""


def problems(obj: Obj, k8s_version: str = K8S_VERSION) -> list[str]:
    """Why the API server would refuse ``obj``: built-in kinds by their real schemas
    (kubernetes-validate, strict), custom ones by their CRD's schema and CEL rules."""
    key = (obj["apiVersion"], obj["kind"])
    crd = chart_crds().get(key) or THIRD_PARTY.get(key)
    if crd is not None:
        declared = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].get("properties", {})
        body = {k: v for k, v in obj.items() if k in declared or k not in _ENVELOPE}
        return admit(crd, body)
    try:
        kubernetes_validate.validate(obj, k8s_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.absolute_path))}: {exc.message}"]
    return []


_ENVELOPE = {"apiVersion", "kind", "metadata"}

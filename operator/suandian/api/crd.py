"""Generate the CustomResourceDefinitions from the pydantic models.

pydantic emits JSON Schema 2020-12; the API server wants a *structural* OpenAPI v3.0
schema. :func:`structural` bridges the two:

- ``$ref`` is inlined (structural schemas cannot reference) and ``title`` dropped;
- ``Optional[X]`` (``anyOf: [X, null]``) becomes ``X``, not required, with no null default;
- ``additionalProperties: false`` is dropped: unknown fields are pruned by the server, and
  refused by ``kubectl``'s default strict field validation;
- a pass-through model (``extra="allow"``) becomes ``x-kubernetes-preserve-unknown-fields``;
- numeric ``exclusiveMinimum: x`` becomes ``minimum: x, exclusiveMinimum: true`` (v3.0);
- ``x-kubernetes-validations`` (CEL) written next to the models are kept where they stand.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from suandian.api.computejob import ComputeJob
from suandian.api.gridevent import GridEvent
from suandian.api.powersite import PowerSite

__all__ = ["CRD_FILES", "build_crds", "check_crds", "crd_for", "render_crd", "structural"]

GROUP = "suandian.io"
VERSION = "v1alpha1"

_COLUMNS: dict[str, list[dict[str, Any]]] = {
    "ComputeJob": [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Site", "type": "string", "jsonPath": ".status.site"},
        {"name": "Start", "type": "string", "jsonPath": ".status.plannedStart",
         "description": "Planned start (RFC 3339)."},
        {"name": "Green%", "type": "integer", "jsonPath": ".status.greenPercent"},
        {"name": "Saved", "type": "string", "jsonPath": ".status.saved",
         "description": "CO2 saved against running at once."},
        {"name": "Reason", "type": "string", "jsonPath": ".status.reason", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ],
    "PowerSite": [
        {"name": "Green kW", "type": "number", "jsonPath": ".status.greenPowerKW"},
        {"name": "gCO2/kWh", "type": "number", "jsonPath": ".status.gridCarbonIntensity"},
        {"name": "Headroom", "type": "number", "jsonPath": ".status.headroomKW",
         "description": "Green kW not used by compute now."},
        {"name": "Nodes", "type": "integer", "jsonPath": ".status.nodes"},
        {"name": "Forecast", "type": "string", "jsonPath": ".status.forecastSource",
         "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ],
    "GridEvent": [
        {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
        {"name": "Sites", "type": "string", "jsonPath": ".spec.sites"},
        {"name": "Start", "type": "string", "jsonPath": ".spec.start",
         "description": "When the event begins (a date column would print a future time "
                        "as <invalid>)."},
        {"name": "End", "type": "string", "jsonPath": ".spec.end"},
        {"name": "Asked", "type": "string", "jsonPath": ".status.asked"},
        {"name": "Committed", "type": "string", "jsonPath": ".status.committed"},
        {"name": "Delivered", "type": "string", "jsonPath": ".status.delivered",
         "description": "Delivered over asked so far."},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Effect", "type": "string", "jsonPath": ".status.effect", "priority": 1,
         "description": "What answering costs in CO2 and money, as the plan expects it."},
        {"name": "Misses", "type": "integer", "jsonPath": ".status.deadlineMisses",
         "priority": 1, "description": "Moved jobs that missed their deadline."},
        {"name": "Reason", "type": "string", "jsonPath": ".status.reason", "priority": 1},
    ],
}

_NAMES: dict[str, dict[str, Any]] = {
    "ComputeJob": {"plural": "computejobs", "singular": "computejob", "kind": "ComputeJob",
                   "listKind": "ComputeJobList", "shortNames": ["cjob"],
                   "categories": ["suandian"]},
    "PowerSite": {"plural": "powersites", "singular": "powersite", "kind": "PowerSite",
                  "listKind": "PowerSiteList", "shortNames": ["psite"],
                  "categories": ["suandian"]},
    "GridEvent": {"plural": "gridevents", "singular": "gridevent", "kind": "GridEvent",
                  "listKind": "GridEventList", "shortNames": ["gev"],
                  "categories": ["suandian"]},
}
_SCOPES = {"ComputeJob": "Namespaced", "PowerSite": "Cluster", "GridEvent": "Cluster"}
MODELS: dict[str, type[BaseModel]] = {"PowerSite": PowerSite, "ComputeJob": ComputeJob,
                                      "GridEvent": GridEvent}
CRD_FILES = {kind: f"{_NAMES[kind]['plural']}.{GROUP}.yaml" for kind in MODELS}


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """Turn a pydantic JSON schema into a structural OpenAPI v3.0 schema (see module doc)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        node = dict(node)
        if "$ref" in node:
            target = copy.deepcopy(defs[node.pop("$ref").split("/")[-1]])
            node = {**target, **node}  # the field's own description wins over the model's
        any_of = node.get("anyOf")
        if any_of and {"type": "null"} in any_of:
            rest = [a for a in any_of if a != {"type": "null"}]
            node.pop("anyOf")
            if len(rest) == 1:
                node = {**walk(rest[0]), **{k: v for k, v in node.items() if k != "anyOf"}}
            else:
                node["anyOf"] = rest
            if node.get("default", 0) is None:
                node.pop("default")
        node.pop("title", None)
        node.pop("$defs", None)
        if node.get("additionalProperties") is False:
            node.pop("additionalProperties")
        if node.get("additionalProperties") is True:
            node.pop("additionalProperties")
            node["x-kubernetes-preserve-unknown-fields"] = True
        if node.get("type") == "object" and "properties" not in node and (
            "additionalProperties" not in node
        ):
            node["x-kubernetes-preserve-unknown-fields"] = True
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            value = node.get(bound)
            if isinstance(value, int | float) and not isinstance(value, bool):
                node["minimum" if bound == "exclusiveMinimum" else "maximum"] = value
                node[bound] = True
        if "const" in node:
            node["enum"] = [node.pop("const")]
        if "description" in node:
            node["description"] = " ".join(node["description"].replace("``", "`").split())
        out: dict[str, Any] = {}
        for key, value in sorted(node.items(), key=_key_order):
            if key in ("properties", "patternProperties"):
                out[key] = {k: walk(v) for k, v in value.items()}
            elif key in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "not"):
                out[key] = walk(value)
            else:
                out[key] = value
        return out

    return walk({k: v for k, v in schema.items() if k != "$defs"})  # type: ignore[no-any-return]


_FIRST = ("type", "description", "required", "properties")


def _key_order(item: tuple[str, Any]) -> tuple[int, str]:
    key = item[0]
    return (_FIRST.index(key), "") if key in _FIRST else (len(_FIRST), key)


def _root_schema(kind: str) -> dict[str, Any]:
    model = MODELS[kind]
    schema = structural(model.model_json_schema(by_alias=True, mode="validation"))
    props = schema["properties"]
    props["apiVersion"] = {"type": "string", "description": "APIVersion of the object."}
    props["kind"] = {"type": "string", "description": "Kind of the object."}
    props["metadata"] = {"type": "object"}
    # Status is written by the operator through the status subresource.
    return {
        "type": "object",
        "description": schema.get("description", ""),
        "required": ["spec"],
        "properties": {k: props[k] for k in ("apiVersion", "kind", "metadata", "spec", "status")},
    }


def _mark_conditions(node: Any) -> None:
    """Conditions are a map keyed by ``type``, as Kubernetes lists them."""
    if isinstance(node, dict):
        conditions = node.get("properties", {}).get("conditions")
        if conditions and conditions.get("type") == "array":
            conditions["x-kubernetes-list-type"] = "map"
            conditions["x-kubernetes-list-map-keys"] = ["type"]
            conditions.pop("default", None)
        for value in node.values():
            _mark_conditions(value)


def crd_for(kind: str) -> dict[str, Any]:
    """The CustomResourceDefinition of ``kind`` as a dict."""
    schema = _root_schema(kind)
    _mark_conditions(schema)
    names = _NAMES[kind]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{names['plural']}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "suandian"},
        },
        "spec": {
            "group": GROUP,
            "names": names,
            "scope": _SCOPES[kind],
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _COLUMNS[kind],
                }
            ],
        },
    }


def render_crd(kind: str) -> str:
    """The CRD of ``kind`` as YAML text, exactly as it is checked in."""
    header = (
        "# Generated by `suandian crds` from operator/suandian/api/; do not edit by hand.\n"
    )
    return header + yaml.safe_dump(crd_for(kind), sort_keys=False, width=100, allow_unicode=True)


def build_crds(output: Path) -> list[Path]:
    """Write every CRD into ``output``; return the paths written."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, filename in CRD_FILES.items():
        path = output / filename
        path.write_text(render_crd(kind), encoding="utf-8")
        written.append(path)
    return written


def check_crds(directory: Path) -> list[str]:
    """Names of the CRD files in ``directory`` that are missing or differ from the models."""
    stale = []
    for kind, filename in CRD_FILES.items():
        path = directory / filename
        if not path.exists() or path.read_text(encoding="utf-8") != render_crd(kind):
            stale.append(str(path))
    return stale

"""Admit an object as the API server would, from a CRD alone: defaults, schema, CEL.

This is the fast stand-in for an API server (docs/testing.md): the real-API tier sends
the same manifests to a real kube-apiserver (tests/envtest/test_admission.py). It
applies the schema's defaults, validates with strict field validation (``kubectl``'s
default: unknown fields are errors, not silently pruned), honours the Kubernetes
extensions we use (``x-kubernetes-int-or-string``, ``preserve-unknown-fields``,
``list-type: set``), and evaluates every ``x-kubernetes-validations`` CEL rule with
cel-python. Each error is ``"path: message"`` with the wire path of the field.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from typing import Any

import celpy
import jsonschema

_ENV = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}


def openapi_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def admit(crd: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """Every reason the API server would refuse ``obj`` (empty when it would accept it)."""
    schema = openapi_schema(crd)
    obj = apply_defaults(schema, copy.deepcopy(obj))
    errors = [
        f"{_path(e.absolute_path)}: {e.message}"
        for e in _validator(schema).iter_errors(obj)
    ]
    if not errors:  # the server runs CEL only on a schema-valid object
        errors += list(_cel_errors(schema, obj, ""))
    return errors


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(schema["items"], v) for v in value]
    return value


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    return out


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def _is_rfc3339(value: object) -> bool:
    """RFC 3339 date-time, as the API server checks ``format: date-time`` (zone required)."""
    if not isinstance(value, str):
        return True  # formats only constrain strings
    if _RFC3339.match(value) is None:
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


def _validator(schema: dict[str, Any]) -> jsonschema.Draft4Validator:
    # Our own check: jsonschema's depends on an optional package that may be absent.
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time")(_is_rfc3339)
    return jsonschema.Draft4Validator(_strict(schema), format_checker=checker)


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _cel_errors(schema: dict[str, Any], value: Any, path: str) -> Any:
    for rule in schema.get("x-kubernetes-validations", []):
        program = _PROGRAMS.get(rule["rule"])
        if program is None:
            program = _PROGRAMS[rule["rule"]] = _ENV.program(_ENV.compile(rule["rule"]))
        result = program.evaluate({"self": celpy.json_to_cel(_cel_value(value))})
        if isinstance(result, celpy.CELEvalError) or not bool(result):
            where = path + rule.get("fieldPath", "")
            yield f"{where}: {rule['message']} (rule: {rule['rule']})"
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                yield from _cel_errors(sub, value[name], f"{path}.{name}" if path else name)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                yield from _cel_errors(extra, item, f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from _cel_errors(schema["items"], item, f"{path}[{i}]")


def _cel_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value

"""Kubernetes Events about our objects, posted through kopf's event poster.

Kopf batches and posts events in the background (and truncates messages to what the
API accepts), so posting never blocks a handler. Reasons are CamelCase words that
``kubectl get events --field-selector reason=...`` can filter on; docs/operator.md lists
every reason the operator uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import kopf

__all__ = ["normal", "warning"]


def _ref(body: Mapping[str, Any]) -> dict[str, Any]:
    """The smallest body kopf can build an object reference from (it reads ``metadata``)."""
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid") if meta.get(k)},
    }


def normal(body: Mapping[str, Any], reason: str, message: str) -> None:
    """Post a ``Normal`` event about ``body``."""
    kopf.event(kopf.Body(cast(Any, _ref(body))), type="Normal", reason=reason, message=message)


def warning(body: Mapping[str, Any], reason: str, message: str) -> None:
    """Post a ``Warning`` event about ``body``."""
    kopf.event(kopf.Body(cast(Any, _ref(body))), type="Warning", reason=reason, message=message)

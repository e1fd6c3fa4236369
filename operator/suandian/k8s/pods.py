"""Pure builders for plain Pods that opt in to green-window scheduling.

A Pod labelled ``suandian.io/managed: "true"`` gets the scheduling gate
``suandian.io/green-window`` from the mutating webhook, so kube-scheduler leaves it
alone. While it is gated, the operator may add node affinity (Kubernetes allows only
tightening a gated pod's scheduling constraints: required terms can be added where there
were none, preferred ones replaced), and at the planned start it removes the gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from suandian.k8s.decision import PREFIX, Decision
from suandian.k8s.jobs import node_affinity

__all__ = [
    "GATE",
    "MANAGED_LABEL",
    "gate_added",
    "gate_patch_ops",
    "has_gate",
    "is_managed",
    "placement_patch",
    "ungate_patch",
]

GATE = PREFIX + "green-window"
MANAGED_LABEL = PREFIX + "managed"


def is_managed(pod: Mapping[str, Any]) -> bool:
    """Whether the pod opted in (label ``suandian.io/managed: "true"``)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return str(labels.get(MANAGED_LABEL, "")).lower() == "true"


def has_gate(pod: Mapping[str, Any]) -> bool:
    gates = (pod.get("spec") or {}).get("schedulingGates") or []
    return any(g.get("name") == GATE for g in gates)


def gate_added(gates: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The pod's scheduling gates with ours appended (once)."""
    current = [dict(g) for g in gates or []]
    if not any(g.get("name") == GATE for g in current):
        current.append({"name": GATE})
    return current


def gate_patch_ops(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations that add our gate to a pod (the webhook's answer)."""
    spec = pod.get("spec") or {}
    gates = spec.get("schedulingGates")
    if gates is None:
        return [{"op": "add", "path": "/spec/schedulingGates", "value": [{"name": GATE}]}]
    if any(g.get("name") == GATE for g in gates):
        return []
    return [{"op": "add", "path": "/spec/schedulingGates/-", "value": {"name": GATE}}]


def ungate_patch(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """JSON patch removing our gate, guarded by a ``test`` of the list it edits.

    If another controller changed the gates meanwhile, the ``test`` fails and the API
    refuses the patch instead of dropping someone else's gate.
    """
    gates = list((pod.get("spec") or {}).get("schedulingGates") or [])
    kept = [g for g in gates if g.get("name") != GATE]
    return [
        {"op": "test", "path": "/spec/schedulingGates", "value": gates},
        {"op": "replace", "path": "/spec/schedulingGates", "value": kept},
    ]


def placement_patch(
    pod: Mapping[str, Any], decision: Decision, site_selector: Mapping[str, str]
) -> dict[str, Any]:
    """Merge patch recording the decision and pinning a gated pod to its site."""
    affinity = node_affinity(
        (pod.get("spec") or {}).get("affinity"), site_selector, decision.node_preferences
    )
    return {
        "metadata": {"annotations": decision.annotations()},
        "spec": {"affinity": affinity},
    }

"""Pure helpers for the ``status`` of our resources: conditions and phases.

Merge patches replace lists whole, so whoever writes ``status.conditions`` writes the
full list: :func:`with_condition` returns it, keeping the others and the transition
time of a condition whose status did not change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from suandian.k8s.decision import format_time

__all__ = ["condition_status", "with_condition"]


def with_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """The conditions with ``type_`` set; the transition time moves only on a change."""
    wanted = "True" if status else "False"
    out: list[dict[str, Any]] = []
    found = False
    for cond in conditions or []:
        if cond.get("type") != type_:
            out.append(dict(cond))
            continue
        found = True
        changed = cond.get("status") != wanted
        new = {
            "type": type_, "status": wanted, "reason": reason, "message": message[:32768],
            "lastTransitionTime": format_time(now) if changed else cond.get(
                "lastTransitionTime", format_time(now)),
        }
        if generation is not None:
            new["observedGeneration"] = generation
        out.append(new)
    if not found:
        new = {"type": type_, "status": wanted, "reason": reason, "message": message[:32768],
               "lastTransitionTime": format_time(now)}
        if generation is not None:
            new["observedGeneration"] = generation
        out.append(new)
    return out


def condition_status(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> str | None:
    """``True``/``False``/``Unknown`` of a condition, or None when absent."""
    for cond in conditions or []:
        if cond.get("type") == type_:
            return str(cond.get("status"))
    return None

"""The planner's settings (:class:`~suandian.planner.PlanParams`) from a scenario's
``planner:`` mapping or ``suandian simulate --planner key=value``.

The keys are the dataclass's fields in camelCase (``delay_penalty_g_per_kwh_h`` is
``delayPenaltyGPerKwhH``), read off the dataclass itself: a field the planner gains is
a setting here with no change to this module. Each value is converted by its field's
type (a duration, a number, a whole number, true/false), and the whole set is then
checked by ``PlanParams`` itself, so the bounds live in one place.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from datetime import timedelta
from typing import Any

from suandian.errors import FieldError, PlanningError
from suandian.planner import PlanParams
from suandian.units import parse_duration

__all__ = ["PLANNER_KEYS", "SIM_PLAN_PARAMS", "parse_planner", "plan_params"]

SIM_PLAN_PARAMS = PlanParams(safety_margin=timedelta(0))
"""The simulator's planner settings before a scenario's: the operator's, with no safety
margin (the simulator's actions take no time)."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(str(value).strip())


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _whole(value: Any) -> int:
    number = _number(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValueError(value)


_CONVERT: dict[Any, tuple[Callable[[Any], Any], str]] = {
    timedelta: (_duration, "a duration, e.g. 15m"),
    float: (_number, "a number"),
    int: (_whole, "a whole number"),
    bool: (_flag, "true or false"),
}


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A converter that also takes null (YAML ``~``, or ``none`` on the command line)."""
    def read(value: Any) -> Any:
        if value is None or str(value).strip().lower() in ("none", "null", "~"):
            return None
        return convert(value)
    return read


def _converter(hint: Any) -> tuple[Callable[[Any], Any], str] | None:
    """How to read a value of a field's type; ``X | None`` as ``X`` or null."""
    args = typing.get_args(hint)
    if type(None) in args and len(args) == 2:
        inner = _converter(next(a for a in args if a is not type(None)))
        return None if inner is None else (_optional(inner[0]), f"{inner[1]} or null")
    if hint is str:
        return (lambda value: str(value).strip(), "a text")
    return _CONVERT.get(hint)


def _keys() -> dict[str, tuple[str, Callable[[Any], Any], str]]:
    hints = typing.get_type_hints(PlanParams)
    out = {}
    for f in fields(PlanParams):
        convert = _converter(hints[f.name])
        if convert is not None:  # a field of another type (a mapping...) is not a setting
            out[_camel(f.name)] = (f.name, *convert)
    return out


PLANNER_KEYS = _keys()
"""camelCase key -> (PlanParams field, converter, what a value must be)."""


def parse_planner(doc: Any, where: str, errors: list[FieldError]) -> dict[str, Any]:
    """PlanParams field -> value from a mapping of camelCase keys; each problem is added
    to ``errors`` under ``where.key``, naming what would be valid."""
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        errors.append(FieldError(where, (
            f"a mapping of planner settings, e.g. {{riskAversion: 0.5}}; settings are: "
            f"{', '.join(PLANNER_KEYS)}")))
        return {}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        entry = PLANNER_KEYS.get(str(key))
        if entry is None:
            errors.append(FieldError(f"{where}.{key}", (
                f"unknown planner setting (check its spelling); settings are: "
                f"{', '.join(PLANNER_KEYS)}")))
            continue
        name, convert, what = entry
        try:
            out[name] = convert(value)
        except (ValueError, TypeError) as exc:
            detail = f": {exc}" if convert is _duration else ""
            errors.append(FieldError(f"{where}.{key}", f"{value!r} is not {what}{detail}"))
    if out and not errors:
        try:
            plan_params(out)
        except PlanningError as exc:
            keys = ", ".join(f"{where}.{_camel(n)}" for n in out)
            errors.append(FieldError(keys, str(exc)))
    return out


def plan_params(overrides: Mapping[str, Any]) -> PlanParams:
    """The simulator's planner settings with ``overrides`` (PlanParams fields) on top."""
    return replace(SIM_PLAN_PARAMS, **overrides)

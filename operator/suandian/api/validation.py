"""Turn manifests into models, and pydantic's errors into ones a user can act on.

Every error names the field by its wire path (``spec.deadline.maxDelay``,
``spec.template.spec.template.spec.containers[0].resources.requests.cpu``) and says what
would be valid; an unknown field lists the fields that exist there.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError

from suandian.api.computejob import ComputeJob
from suandian.api.gridevent import GridEvent
from suandian.api.powersite import PowerSite
from suandian.errors import FieldError, InvalidSpecError
from suandian.units import parse_time

__all__ = ["KINDS", "field_errors", "parse_computejob", "parse_gridevent", "parse_manifest",
           "parse_powersite"]

M = TypeVar("M", bound=BaseModel)

KINDS: dict[str, type[BaseModel]] = {"PowerSite": PowerSite, "ComputeJob": ComputeJob,
                                     "GridEvent": GridEvent}


def parse_powersite(obj: Mapping[str, Any]) -> PowerSite:
    """Validate a PowerSite manifest; raise :class:`InvalidSpecError` naming each bad field."""
    return _parse(PowerSite, obj, context=None)


def parse_gridevent(obj: Mapping[str, Any]) -> GridEvent:
    """Validate a GridEvent manifest; raise :class:`InvalidSpecError` naming each bad field."""
    return _parse(GridEvent, obj, context=None)


def parse_computejob(obj: Mapping[str, Any], *, created: datetime | None = None) -> ComputeJob:
    """Validate a ComputeJob manifest.

    ``created`` is the creation time (``metadata.creationTimestamp``, or now for a new
    object): a ``completeBy`` deadline must leave room for ``duration`` after it. It is
    taken from the manifest's metadata when not given.
    """
    if created is None:
        stamp = (obj.get("metadata") or {}).get("creationTimestamp")
        if isinstance(stamp, datetime):
            created = stamp
        elif isinstance(stamp, str):
            try:
                created = parse_time(stamp)
            except ValueError:
                created = None
    return _parse(ComputeJob, obj, context={"created": created} if created else None)


def parse_manifest(obj: Mapping[str, Any], *, now: datetime | None = None) -> BaseModel:
    """Validate a manifest of any Suandian kind, chosen by its ``kind``."""
    kind = obj.get("kind")
    if kind == "ComputeJob":
        return parse_computejob(obj, created=now)
    if kind == "PowerSite":
        return parse_powersite(obj)
    if kind == "GridEvent":
        return parse_gridevent(obj)
    raise InvalidSpecError(
        str(kind), [FieldError("kind", f"{kind!r} is not one of {sorted(KINDS)}")]
    )


def _parse(model: type[M], obj: Mapping[str, Any], context: dict[str, Any] | None) -> M:
    try:
        return model.model_validate(obj, context=context)
    except ValidationError as exc:
        raise InvalidSpecError(model.__name__, field_errors(model, exc)) from None


def field_errors(model: type[BaseModel], exc: ValidationError) -> list[FieldError]:
    """The errors of ``exc`` as :class:`FieldError` with wire paths and helpful messages."""
    out: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        loc = _drop_union_tags(err["loc"])
        path = _wire_path(loc)
        message = _message(model, err, loc)
        if (path, message) not in seen:
            seen.add((path, message))
            out.append(FieldError(path, message))
    return out


def _drop_union_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # pydantic adds tags like 'function-before[...]' or 'decimal' inside unions; not fields.
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in _TAGS)))


_TIME_ERRORS = {"timezone_aware", "datetime_from_date_parsing", "datetime_parsing", "datetime_type"}
_TAGS = {"decimal", "str", "int", "float", "function-plain", "function-after"}


def _wire_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _message(model: type[BaseModel], err: Any, loc: tuple[int | str, ...]) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if kind == "extra_forbidden":
        known = _known_fields(model, loc[:-1])
        hint = f"; fields here are: {', '.join(known)}" if known else ""
        return f"unknown field (check its spelling){hint}"
    if kind == "missing":
        return "required field is missing"
    if kind in _TIME_ERRORS:
        return f"{msg}; use an RFC 3339 time with a zone, e.g. 2026-11-29T08:00:00+08:00"
    if kind in _BOUND_ERRORS:
        # "Input should be greater than 0": say what was given and what the field is for
        got = err.get("input")
        described = _description(model, loc)
        msg = msg.replace("Input should be", "must be")
        msg += f", not {got!r}" if got is not None else ""
        return f"{msg}; {described[:1].lower()}{described[1:]}" if described else msg
    return msg


_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal",
                 "finite_number", "too_short", "too_long"}


def _description(model: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """The documented meaning of the field at ``loc`` (its attribute docstring), one line."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    parent: Any = model
    for part in loc[:-1]:
        parent = _step(parent, part)
        if parent is None:
            return ""
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
        return ""
    for name, info in parent.model_fields.items():
        if loc[-1] in (name, info.alias) and info.description:
            return " ".join(info.description.split()).rstrip(".")
    return ""


def _known_fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(f.alias or name for name, f in current.model_fields.items())
    return []


def _step(annotation: Any, part: int | str) -> Any:
    annotation = _unwrap(annotation)
    if isinstance(part, int):
        args = get_args(annotation)
        return _unwrap(args[0]) if get_origin(annotation) is list and args else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return _unwrap(info.annotation)
        return None
    if get_origin(annotation) is dict:
        return _unwrap(get_args(annotation)[1])
    return None


def _unwrap(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    return annotation

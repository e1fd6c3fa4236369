"""Parsing and formatting of the units users write in manifests.

Durations accept the two spellings people use in Kubernetes: Go's (``90m``, ``4h``,
``1h30m``, ``1.5h``, with ``d`` for days as a convenience) and ISO 8601 (``PT4H``,
``P1DT2H``). Quantities follow Kubernetes' own grammar (``500m``, ``16Gi``, ``2``,
``1e3``) and are parsed exactly, as :class:`decimal.Decimal`, because ``0.1`` CPU must not
become ``0.1000000000000000055``. Parsers raise :class:`ValueError` with a message that
shows a valid example; pydantic turns that into a field error.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

__all__ = [
    "DURATION_PATTERN",
    "GO_DURATION_PATTERN",
    "QUANTITY_PATTERN",
    "format_duration",
    "humanize_duration",
    "parse_duration",
    "parse_quantity",
    "parse_time",
]

NUMBER = r"(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)"  # [.] not \. : the pattern is quoted in CEL
_NUMBER = NUMBER
_GO_UNIT = r"(?:ms|us|ns|d|h|m|s)"
#: Go-style durations as CEL's ``duration()`` accepts them (no ``d``): used to guard CEL rules.
GO_DURATION_PATTERN = rf"^(?:{_NUMBER}(?:ms|us|ns|h|m|s))+$"
_GO_DURATION = rf"(?:{_NUMBER}{_GO_UNIT})+"
_ISO_DURATION = (
    rf"P(?:{_NUMBER}W)?(?:{_NUMBER}D)?(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?"
)
#: Every duration spelling we accept; RE2-compatible, so the CRD can carry it as ``pattern``.
DURATION_PATTERN = rf"^(?:{_GO_DURATION}|{_ISO_DURATION})$"

_GO_PART = re.compile(rf"({_NUMBER})({_GO_UNIT})")
_ISO_PART = re.compile(
    rf"^P(?:(?P<W>{_NUMBER})W)?(?:(?P<D>{_NUMBER})D)?"
    rf"(?:T(?:(?P<H>{_NUMBER})H)?(?:(?P<M>{_NUMBER})M)?(?:(?P<S>{_NUMBER})S)?)?$"
)
_GO_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "ms": 1e-3,
    "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
}
_ISO_SECONDS = {"W": 604800.0, "D": 86400.0, "H": 3600.0, "M": 60.0, "S": 1.0}
_DURATION_HINT = "a duration like '90m', '4h', '1h30m', '2d' or ISO 8601 'PT4H'"
_MAX_DURATION_S = 366 * 86400.0


def parse_duration(text: str) -> timedelta:
    """Parse ``90m``, ``1h30m``, ``2d``, ``PT4H`` or ``P1DT2H`` into a :class:`timedelta`.

    Years and months are refused on purpose: their length depends on the calendar.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected {_DURATION_HINT}, got {type(text).__name__}")
    s = text.strip()
    seconds: float
    if s.startswith("P"):
        match = _ISO_PART.match(s)
        if match is None or s in ("P", "PT") or s.endswith("T"):
            raise ValueError(f"{text!r} is not {_DURATION_HINT}")
        seconds = sum(float(v) * _ISO_SECONDS[k] for k, v in match.groupdict().items() if v)
    else:
        if not s or re.fullmatch(_GO_DURATION, s) is None:
            raise ValueError(f"{text!r} is not {_DURATION_HINT}")
        seconds = sum(float(n) * _GO_SECONDS[u] for n, u in _GO_PART.findall(s))
    if not math.isfinite(seconds) or seconds > _MAX_DURATION_S:
        raise ValueError(f"{text!r} is longer than a year; use at most '8784h'")
    return timedelta(seconds=seconds)


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time (``Z`` or an offset) into an aware UTC :class:`datetime`.

    Kubernetes, the CSV traces and the forecast services all write times this way; a time
    without a zone is refused, because guessing one shifts a deadline by hours.
    """
    when = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add 'Z' or an offset like '+08:00'")
    return when.astimezone(UTC)


def format_duration(value: timedelta) -> str:
    """Format as Go does (``1h30m``, ``45s``, ``0s``): the form CEL's ``duration()`` reads back."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    sign = "-" if total_ms < 0 else ""
    total_ms = abs(total_ms)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    out = sign
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if seconds or millis:
        out += f"{seconds}.{millis:03d}".rstrip("0").rstrip(".") + "s"
    return out


def humanize_duration(value: timedelta | float) -> str:
    """A short human form for messages and tables: ``5h``, ``1d 2h``, ``45m``, ``30s``."""
    total = round(value.total_seconds() if isinstance(value, timedelta) else value)
    if total < 0:
        return "-" + humanize_duration(-total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"


# Kubernetes' own quantity grammar (k8s.io/apimachinery resource.Quantity), without a sign:
# a request or capacity is never negative.
QUANTITY_PATTERN = (
    r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY = re.compile(QUANTITY_PATTERN)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}
_QUANTITY_HINT = "a Kubernetes quantity like '2', '500m', '16Gi' or '1.5e3'"


def parse_quantity(value: str | int | float | Decimal) -> Decimal:
    """Parse a Kubernetes quantity exactly: ``500m`` → 0.5, ``16Gi`` → 17179869184."""
    if isinstance(value, bool):
        raise TypeError(f"expected {_QUANTITY_HINT}, got a boolean")
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not {_QUANTITY_HINT}")
        number = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if _QUANTITY.match(text) is None:
            raise ValueError(f"{value!r} is not {_QUANTITY_HINT}")
        number = _parse_quantity_text(text.lstrip("+"))
    else:
        raise TypeError(f"expected {_QUANTITY_HINT}, got {type(value).__name__}")
    if number < 0:
        raise ValueError(f"{value!r} is negative; quantities here are at least 0")
    if not number.is_finite():
        raise ValueError(f"{value!r} is not {_QUANTITY_HINT}")
    return number


def _parse_quantity_text(text: str) -> Decimal:
    for suffix, factor in _BINARY.items():
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * factor
    lowered = text.lower()
    if "e" in lowered and not text.endswith("E"):
        try:
            return Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
            raise ValueError(f"{text!r} is not {_QUANTITY_HINT}") from exc
    suffix = text[-1] if text and not text[-1].isdigit() and text[-1] != "." else ""
    return Decimal(text[: len(text) - len(suffix)]) * _DECIMAL[suffix]

"""OpenADR 2.0b events (as ``openleadr`` parses them) as GridEvent manifests: pure.

The VEN (:mod:`suandian.controllers.openadr`) hands each event it receives to
:func:`grid_event_of` and applies the manifest; the GridEvent controller then plans it
like any other, and the VEN opts in or out by the plan's answer. What maps to what:

=====================  ====================  ==========================================
``signal_name``        ``signal_type``       GridEvent
=====================  ====================  ==========================================
``LOAD_DISPATCH``      ``setpoint``          Shed, ``ceilingKW`` = the lowest payload
``LOAD_DISPATCH``      ``delta`` (< 0)       Shed, ``reductionKW`` = the largest −payload
``LOAD_DISPATCH``      ``delta`` (> 0)       Absorb, ``powerKW`` = the smallest payload
``ELECTRICITY_PRICE``  ``price``             Price, one period per interval (per kWh)
``SIMPLE``             ``level`` (1 to 3)    Shed, ``reductionPercent`` = the highest
                                             level's share (``SUANDIAN_OPENADR_SIMPLE_
                                             LEVELS``, by default 1=25,2=50,3=75)
``LOAD_CONTROL``       ``x-loadControl       Shed, ``reductionPercent`` = the largest
                       PercentOffset`` (< 0) −payload (percent)
=====================  ====================  ==========================================

Payloads are kW (the signal's ``powerReal`` unit), or a ``SIMPLE`` level: 0 normal, 1
moderate, 2 high, 3 special, as OpenADR 2.0 defines them, each a share of the site's
import to shed against the plan without the event. An event's window is its active
period, and a request with several intervals holds its strictest value over all of
them. A ``SIMPLE`` event at level 0 throughout asks nothing: no GridEvent, and the VEN
opts in. The sites are the event's ``resource_id`` targets, else the configured ones
(``SUANDIAN_OPENADR_SITES``). Anything else (a signal of another type, a level with no
share, no site) is refused with :class:`Unplannable`, naming what to send instead: the
VEN opts out of it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from suandian.config import DEFAULT_SIMPLE_LEVELS, simple_levels
from suandian.k8s.decision import format_time

__all__ = ["DEFAULT_CURRENCY", "DEFAULT_SIMPLE_LEVELS", "Unplannable", "event_name",
           "grid_event_of", "simple_levels"]

DEFAULT_CURRENCY = "CNY"
"""A price signal's currency when its measurement names none."""


class Unplannable(ValueError):
    """An OpenADR event the operator cannot plan for (the VEN opts out), and why."""


def event_name(event_id: str) -> str:
    """The GridEvent's name for an OpenADR event id (a DNS label, ``oadr-`` first)."""
    label = re.sub(r"[^a-z0-9-]+", "-", event_id.lower()).strip("-")
    return f"oadr-{label}"[:63].rstrip("-")


def grid_event_of(event: Mapping[str, Any], default_sites: Sequence[str],
                  mandatory: bool, levels: Mapping[int, float] | None = None
                  ) -> dict[str, Any] | None:
    """The GridEvent manifest of an OpenADR event (see the module doc); None for a
    ``SIMPLE`` event that asks nothing (level 0). ``levels``: each ``SIMPLE`` level's
    reduction, percent (:func:`simple_levels`; None: the defaults)."""
    descriptor = event.get("event_descriptor") or {}
    event_id = str(descriptor.get("event_id") or "")
    if not event_id:
        raise Unplannable("the event has no event_id")
    period = event.get("active_period") or {}
    start, duration = period.get("dtstart"), period.get("duration")
    if not isinstance(start, datetime) or not isinstance(duration, timedelta):
        raise Unplannable(f"event {event_id}: no active period (dtstart and duration)")
    targets = (event.get("targets_by_type") or {}).get("resource_id") or []
    sites = sorted(set(targets)) or sorted(set(default_sites))
    if not sites:
        raise Unplannable(f"event {event_id}: it targets no resource_id and "
                          "SUANDIAN_OPENADR_SITES names no PowerSite")
    levels = simple_levels(DEFAULT_SIMPLE_LEVELS) if levels is None else levels
    request = _request(event_id, event.get("event_signals") or [], levels)
    if request is None:
        return None
    spec: dict[str, Any] = {
        "sites": sites, "start": format_time(start), "end": format_time(start + duration),
        "mandatory": mandatory, "source": "OpenADR", "sourceRef": event_id[:253],
        **request,
    }
    return {"apiVersion": "suandian.io/v1alpha1", "kind": "GridEvent",
            "metadata": {"name": event_name(event_id),
                         "labels": {"suandian.io/source": "openadr"}},
            "spec": spec}


def _request(event_id: str, signals: Sequence[Mapping[str, Any]],
             levels: Mapping[int, float]) -> dict[str, Any] | None:
    for signal in signals:
        name, kind = signal.get("signal_name"), signal.get("signal_type")
        payloads = [float(i["signal_payload"]) for i in signal.get("intervals") or []
                    if i.get("signal_payload") is not None]
        if not payloads:
            continue
        if name == "LOAD_DISPATCH" and kind == "setpoint":
            return {"type": "Shed", "shed": {"ceilingKW": max(0.0, min(payloads))}}
        if name == "LOAD_DISPATCH" and kind == "delta":
            if all(p < 0 for p in payloads):
                return {"type": "Shed", "shed": {"reductionKW": -min(payloads)}}
            if all(p > 0 for p in payloads):
                return {"type": "Absorb", "absorb": {"powerKW": min(payloads)}}
            raise Unplannable(f"event {event_id}: a delta both up and down; send one "
                              "event for each direction")
        if name == "ELECTRICITY_PRICE" and kind == "price":
            return {"type": "Price", "prices": _prices(signal)}
        if name in ("SIMPLE", "simple") and kind == "level":
            return _simple(event_id, payloads, levels)
        if name == "LOAD_CONTROL" and kind == "x-loadControlPercentOffset":
            if all(-100 <= p < 0 for p in payloads):
                return {"type": "Shed", "shed": {"reductionPercent": -min(payloads)}}
            raise Unplannable(f"event {event_id}: a percent offset is planned as a shed "
                              "only: send offsets within -100..0 (below 0)")
    seen = ", ".join(sorted({f"{s.get('signal_name')}/{s.get('signal_type')}"
                             for s in signals})) or "no signal"
    raise Unplannable(f"event {event_id}: {seen} is not a signal Suandian plans for; send "
                      "LOAD_DISPATCH setpoint or delta (kW), SIMPLE level, LOAD_CONTROL "
                      "x-loadControlPercentOffset, or ELECTRICITY_PRICE price")


def _simple(event_id: str, payloads: Sequence[float], levels: Mapping[int, float]
            ) -> dict[str, Any] | None:
    """A ``SIMPLE`` signal's highest level as a Shed by its share (None at level 0)."""
    level = max(payloads)
    if level == 0:
        return None
    if not math.isfinite(level) or level != int(level) or int(level) not in levels:
        raise Unplannable(f"event {event_id}: SIMPLE level {level:g} has no share to shed "
                          f"(SUANDIAN_OPENADR_SIMPLE_LEVELS names "
                          f"{', '.join(map(str, sorted(levels))) or 'none'})")
    return {"type": "Shed", "shed": {"reductionPercent": levels[int(level)]}}


def _prices(signal: Mapping[str, Any]) -> dict[str, Any]:
    unit = str((signal.get("measurement") or {}).get("unit") or DEFAULT_CURRENCY)
    periods = []
    for interval in signal.get("intervals") or []:
        begin, length = interval.get("dtstart"), interval.get("duration")
        if isinstance(begin, datetime) and isinstance(length, timedelta):
            periods.append({"start": format_time(begin), "end": format_time(begin + length),
                            "pricePerKWh": float(interval["signal_payload"])})
    return {"currency": unit if re.fullmatch(r"[A-Z]{3}", unit) else DEFAULT_CURRENCY,
            "periods": periods}

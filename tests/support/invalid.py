"""The project's catalogue of invalid manifests, and what each must be refused for.

Each :class:`Bad` is a valid example with one change, and the wire path of the field the
refusal must name. ``REFUSED_BY_BOTH`` must be refused by the pydantic models and by the
CRD (schema and CEL): ``tests/unit/api/test_invalid_manifests.py`` checks both with the
models and cel-python, and ``tests/envtest/test_admission.py`` sends every one to a real
API server. ``REFUSED_BY_MODELS_ONLY`` need what no CRD rule can see (the creation time,
the IANA zone database): the API server admits them and the operator refuses them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conftest import ROOT, load_yaml

__all__ = ["CONTAINER", "CREATED", "REFUSED_BY_BOTH", "REFUSED_BY_MODELS_ONLY", "WINDOWED", "Bad"]

SITE = load_yaml(ROOT / "examples/powersites/gansu.yaml")
JOB = load_yaml(ROOT / "examples/computejobs/llm-finetune.yaml")
ETL = load_yaml(ROOT / "examples/computejobs/nightly-etl.yaml")
SHED = load_yaml(ROOT / "examples/gridevents/evening-peak-shed.yaml")
ABSORB = load_yaml(ROOT / "examples/gridevents/night-wind-absorb.yaml")
TARIFF = load_yaml(ROOT / "examples/gridevents/tou-tariff.yaml")
CONTAINER = "spec.template.spec.template.spec.containers"


def _windowed() -> dict[str, Any]:
    """The nightly ETL with an absolute window (notBefore, completeBy) after CREATED."""
    obj = copy.deepcopy(ETL)
    obj["spec"]["notBefore"] = "2026-11-29T00:30:00+08:00"
    obj["spec"]["deadline"] = {"completeBy": "2026-11-29T08:00:00+08:00"}
    return obj


WINDOWED = _windowed()
CREATED = "2026-11-28T12:00:00Z"
"""The creation time the models are given (the window rules measure from it)."""


@dataclass(frozen=True)
class Bad:
    name: str
    base: dict[str, Any]
    change: Callable[[dict[str, Any]], None]
    field: str  # the wire path (or its last part) that the error must name

    def manifest(self) -> dict[str, Any]:
        obj = copy.deepcopy(self.base)
        self.change(obj)
        return obj


def put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        *parents, leaf = _split(path)
        node: Any = obj
        for part in parents:
            node = node[part]
        node[leaf] = value

    return change


def drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        *parents, leaf = _split(path)
        node: Any = obj
        for part in parents:
            node = node[part]
        del node[leaf]

    return change


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for token in path.replace("]", "").replace("[", ".").split("."):
        parts.append(int(token) if token.isdigit() else token)
    return parts


def both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        for c in changes:
            c(obj)

    return change


REFUSED_BY_BOTH = [
    # PowerSite
    Bad("latitude 123", SITE, put("spec.location.latitude", 123), "spec.location.latitude"),
    Bad("longitude -200", SITE, put("spec.location.longitude", -200), "spec.location.longitude"),
    Bad("latitude as text", SITE, put("spec.location.latitude", "north"), "spec.location.latitude"),
    Bad("PUE 0.5", SITE, put("spec.pue", 0.5), "spec.pue"),
    Bad("PUE 12", SITE, put("spec.pue", 12), "spec.pue"),
    Bad("empty node selector", SITE, put("spec.nodeSelector", {}), "spec.nodeSelector"),
    Bad("node selector value not a string", SITE,
        put("spec.nodeSelector", {"topology.kubernetes.io/region": 5}), "spec.nodeSelector"),
    Bad("storage without capacity", SITE, drop("spec.storage.capacityKWh"), "capacityKWh"),
    Bad("storage without max power", SITE, drop("spec.storage.maxPowerKW"), "maxPowerKW"),
    Bad("round-trip efficiency 1.5", SITE, put("spec.storage.roundTripEfficiency", 1.5),
        "spec.storage.roundTripEfficiency"),
    Bad("zero capacity", SITE, put("spec.supply[0].capacityKW", 0), "spec.supply[0].capacityKW"),
    Bad("negative capacity", SITE, put("spec.supply[1].capacityKW", -5),
        "spec.supply[1].capacityKW"),
    Bad("unknown source type", SITE, put("spec.supply[0].type", "coal"), "spec.supply[0].type"),
    Bad("profile of 23 hours", SITE, put("spec.supply[2].hourlyProfile", [0.5] * 23),
        "spec.supply[2].hourlyProfile"),
    Bad("unknown field (typo)", SITE,
        both(drop("spec.grid.importLimitKW"), put("spec.grid.importLimit", 5000)),
        "spec.grid.importLimit"),
    Bad("grid missing", SITE, drop("spec.grid"), "grid"),
    Bad("carbon intensity in kg", SITE, put("spec.grid.carbonIntensity", 5000),
        "spec.grid.carbonIntensity"),
    Bad("provider without its block", SITE, put("spec.forecast.carbon",
        {"provider": "electricityMaps"}), "electricityMaps"),
    Bad("grid-only provider for supply", SITE, put("spec.forecast.supply",
        {"provider": "wattTime", "wattTime": {
            "region": "CAISO_NORTH",
            "usernameSecretRef": {"name": "wt", "key": "user"},
            "passwordSecretRef": {"name": "wt", "key": "password"}}}),
        "spec.forecast.supply"),
    Bad("refresh interval in words", SITE, put("spec.forecast.refreshInterval", "soon"),
        "spec.forecast.refreshInterval"),
    # ComputeJob
    Bad("zero duration", JOB, put("spec.duration", "0s"), "spec.duration"),
    Bad("negative duration", JOB, put("spec.duration", "-5m"), "spec.duration"),
    Bad("duration as a number", JOB, put("spec.duration", 3600), "spec.duration"),
    Bad("duration in words", JOB, put("spec.duration", "four hours"), "spec.duration"),
    Bad("duration in months", JOB, put("spec.duration", "P1M"), "spec.duration"),
    Bad("both deadline forms", JOB,
        put("spec.deadline", {"maxDelay": "4h", "completeBy": "2026-12-01T00:00:00Z"}),
        "completeBy"),
    Bad("neither deadline form", JOB, put("spec.deadline", {}), "completeBy"),
    Bad("zero max delay", JOB, put("spec.deadline.maxDelay", "0m"), "spec.deadline.maxDelay"),
    Bad("completeBy not a time", JOB, put("spec.deadline", {"completeBy": "tomorrow"}),
        "spec.deadline.completeBy"),
    Bad("completeBy without a zone", JOB,
        put("spec.deadline", {"completeBy": "2026-12-01T08:00:00"}), "spec.deadline.completeBy"),
    Bad("unknown field maxDelays", JOB, put("spec.maxDelays", "4h"), "spec.maxDelays"),
    Bad("unparsable quantity", JOB, put(f"{CONTAINER}[0].resources.requests.cpu", "lots"),
        f"{CONTAINER}[0].resources.requests.cpu"),
    Bad("negative quantity", JOB, put(f"{CONTAINER}[0].resources.requests.memory", "-2Gi"),
        f"{CONTAINER}[0].resources.requests.memory"),
    Bad("gpu quantity with bad suffix", JOB,
        put(f"{CONTAINER}[0].resources.limits", {"nvidia.com/gpu": "8gpus"}),
        f"{CONTAINER}[0].resources.limits.nvidia.com/gpu"),
    Bad("no containers", JOB, put(CONTAINER, []), CONTAINER),
    Bad("parallelism 0", JOB, put("spec.template.spec.parallelism", 0),
        "spec.template.spec.parallelism"),
    Bad("template missing", JOB, drop("spec.template"), "template"),
    Bad("min green fraction 1.5", JOB, put("spec.minGreenFraction", 1.5),
        "spec.minGreenFraction"),
    Bad("priority 5000", JOB, put("spec.priority", 5000), "spec.priority"),
    Bad("unknown policy", JOB, put("spec.policy", "Whenever"), "spec.policy"),
    Bad("zero watts", JOB, put("spec.power", {"watts": 0}), "spec.power.watts"),
    Bad("data of 0 GB", JOB, put("spec.data", {"sizeGB": 0, "site": "gansu"}),
        "spec.data.sizeGB"),
    Bad("data without its site", JOB, put("spec.data", {"sizeGB": 500}), "spec.data.site"),
    Bad("data at a site no PowerSite could be named", JOB,
        put("spec.data", {"sizeGB": 500, "site": "Gansu Hub"}), "spec.data.site"),
    Bad("interruptible as text", JOB, put("spec.interruptible", "sometimes"),
        "spec.interruptible"),
    Bad("site named twice", JOB, put("spec.sites", ["gansu", "gansu"]), "spec.sites"),
    Bad("window shorter than duration", WINDOWED, put("spec.duration", "8h"), "completeBy"),
    Bad("completeBy before notBefore", WINDOWED,
        put("spec.deadline.completeBy", "2026-11-28T23:00:00+08:00"), "completeBy"),
    # GridEvent
    Bad("window reversed", SHED, put("spec.end", "2026-12-04T17:00:00+08:00"), "spec.end"),
    Bad("window of a year", SHED, put("spec.end", "2027-12-04T21:00:00+08:00"), "spec.end"),
    Bad("start not a time", SHED, put("spec.start", "this evening"), "spec.start"),
    Bad("end without a zone", SHED, put("spec.end", "2026-12-04T21:00:00"), "spec.end"),
    Bad("unknown event type", SHED, put("spec.type", "Curtail"), "spec.type"),
    Bad("no sites", SHED, put("spec.sites", []), "spec.sites"),
    Bad("site named twice", SHED, put("spec.sites", ["gansu", "gansu"]), "spec.sites"),
    Bad("site no PowerSite could be named", SHED, put("spec.sites", ["Yangtze Delta"]),
        "spec.sites[0]"),
    Bad("negative ceiling", SHED, put("spec.shed.ceilingKW", -100), "spec.shed.ceilingKW"),
    Bad("zero reduction", SHED, put("spec.shed", {"reductionKW": 0}), "spec.shed.reductionKW"),
    Bad("ceiling and reduction both", SHED,
        put("spec.shed", {"ceilingKW": 2000, "reductionKW": 500}), "ceilingKW"),
    Bad("neither ceiling nor reduction", SHED, put("spec.shed", {}), "ceilingKW"),
    Bad("reduction in kW and percent both", SHED,
        put("spec.shed", {"reductionKW": 500, "reductionPercent": 50}), "reductionPercent"),
    Bad("reduction of 150%", SHED, put("spec.shed", {"reductionPercent": 150}),
        "spec.shed.reductionPercent"),
    Bad("reduction of 0%", SHED, put("spec.shed", {"reductionPercent": 0}),
        "spec.shed.reductionPercent"),
    Bad("shed without its block", SHED, drop("spec.shed"), "shed"),
    Bad("shed with an absorb block", SHED, put("spec.absorb", {"powerKW": 100}), "absorb"),
    Bad("ceiling in watts", SHED, put("spec.shed.ceilingKW", 2e10), "spec.shed.ceilingKW"),
    Bad("priority 5000", SHED, put("spec.priority", 5000), "spec.priority"),
    Bad("unknown source", SHED, put("spec.source", "Email"), "spec.source"),
    Bad("unknown field (typo)", SHED, put("spec.mandatoy", True), "spec.mandatoy"),
    Bad("negative surplus", ABSORB, put("spec.absorb.powerKW", -3000), "spec.absorb.powerKW"),
    Bad("surplus at a positive price", ABSORB, put("spec.absorb.pricePerKWh", 0.4),
        "spec.absorb.pricePerKWh"),
    Bad("surplus price without currency", ABSORB, drop("spec.absorb.currency"), "currency"),
    Bad("currency in words", ABSORB, put("spec.absorb.currency", "yuan"),
        "spec.absorb.currency"),
    Bad("tariff without currency", TARIFF, drop("spec.prices.currency"), "currency"),
    Bad("tariff without periods", TARIFF, put("spec.prices.periods", []),
        "spec.prices.periods"),
    Bad("overlapping price periods", TARIFF,
        put("spec.prices.periods[1].start", "2026-12-04T07:00:00+08:00"), "periods"),
    Bad("price period reversed", TARIFF,
        put("spec.prices.periods[2].end", "2026-12-04T09:00:00+08:00"), "end"),
    Bad("price period outside the window", TARIFF,
        put("spec.prices.periods[5].end", "2026-12-05T02:00:00+08:00"), "prices"),
    Bad("price per MWh", TARIFF, put("spec.prices.periods[0].pricePerKWh", 280000),
        "pricePerKWh"),
    Bad("price as text", TARIFF, put("spec.prices.periods[0].pricePerKWh", "cheap"),
        "pricePerKWh"),
]

# Rules no CRD can express: they need the creation time or an IANA zone database.
REFUSED_BY_MODELS_ONLY = [
    Bad("deadline in the past", JOB, put("spec.deadline", {"completeBy": "2026-01-01T00:00:00Z"}),
        "completeBy"),
    Bad("deadline in the past although the window from notBefore fits", WINDOWED,
        both(put("spec.notBefore", "2026-01-01T00:30:00+08:00"),
             put("spec.deadline", {"completeBy": "2026-01-01T08:00:00+08:00"})),
        "completeBy"),
    Bad("window from creation shorter than duration", JOB,
        put("spec.deadline", {"completeBy": "2026-11-28T17:00:00Z"}), "duration"),
    Bad("unknown time zone", SITE, put("spec.location.timeZone", "Mars/Olympus_Mons"),
        "spec.location.timeZone"),
    Bad("wrong apiVersion", SITE, put("apiVersion", "suandian.io/v1"), "apiVersion"),
]

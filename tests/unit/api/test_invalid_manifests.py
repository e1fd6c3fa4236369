"""Bad manifests are refused twice: by the pydantic models (the operator and the CLI) and
by the generated CRD (schema and CEL, as the API server would), each naming the field.

A few rules need the creation time (no CEL rule can see it); those are refused by the
models, which the operator applies on admission, and are listed apart so that the split
is explicit rather than hidden.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from suandian.api import parse_computejob, parse_powersite
from suandian.errors import InvalidSpecError

from conftest import ROOT, load_yaml
from crdcheck import admit

SITE = load_yaml(ROOT / "examples/powersites/gansu.yaml")
JOB = load_yaml(ROOT / "examples/computejobs/llm-finetune.yaml")
ETL = load_yaml(ROOT / "examples/computejobs/nightly-etl.yaml")
CONTAINER = "spec.template.spec.template.spec.containers"


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
    Bad("interruptible as text", JOB, put("spec.interruptible", "sometimes"),
        "spec.interruptible"),
    Bad("site named twice", JOB, put("spec.sites", ["gansu", "gansu"]), "spec.sites"),
    Bad("window shorter than duration", ETL, put("spec.duration", "8h"), "completeBy"),
    Bad("completeBy before notBefore", ETL,
        put("spec.deadline.completeBy", "2026-11-28T23:00:00+08:00"), "completeBy"),
]

# Rules no CRD can express: they need the creation time or an IANA zone database.
REFUSED_BY_MODELS_ONLY = [
    Bad("deadline in the past", JOB, put("spec.deadline", {"completeBy": "2026-01-01T00:00:00Z"}),
        "completeBy"),
    Bad("window from creation shorter than duration", JOB,
        put("spec.deadline", {"completeBy": "2026-11-28T17:00:00Z"}), "duration"),
    Bad("unknown time zone", SITE, put("spec.location.timeZone", "Mars/Olympus_Mons"),
        "spec.location.timeZone"),
    Bad("wrong apiVersion", SITE, put("apiVersion", "suandian.io/v1"), "apiVersion"),
]
CREATED = "2026-11-28T12:00:00Z"


def _refusal(bad: Bad) -> InvalidSpecError:
    obj = bad.manifest()
    obj.setdefault("metadata", {})["creationTimestamp"] = CREATED
    parse = parse_computejob if obj["kind"] == "ComputeJob" else parse_powersite
    with pytest.raises(InvalidSpecError) as info:
        parse(obj)
    return info.value


def _ids(cases: list[Bad]) -> list[str]:
    return [c.name for c in cases]


def test_enough_invalid_manifests_are_covered() -> None:
    assert len(REFUSED_BY_BOTH) >= 25
    assert {c.base["kind"] for c in REFUSED_BY_BOTH} == {"PowerSite", "ComputeJob"}


@pytest.mark.parametrize("bad", REFUSED_BY_BOTH + REFUSED_BY_MODELS_ONLY,
                         ids=_ids(REFUSED_BY_BOTH + REFUSED_BY_MODELS_ONLY))
def test_models_refuse_and_name_the_field(bad: Bad) -> None:
    error = _refusal(bad)
    assert any(bad.field in str(e) for e in error.errors), [str(e) for e in error.errors]


@pytest.mark.parametrize("bad", REFUSED_BY_BOTH, ids=_ids(REFUSED_BY_BOTH))
def test_crd_refuses_and_names_the_field(bad: Bad, crds: dict[str, Any]) -> None:
    errors = admit(crds[bad.base["kind"]], bad.manifest())
    assert errors, "the CRD admitted it"
    leaf = bad.field.rsplit(".", 1)[-1].split("[")[0]
    assert any(leaf in e for e in errors), errors


# The API server routes by apiVersion before any schema applies: no CRD check for that one.
_SCHEMA_BLIND = [b for b in REFUSED_BY_MODELS_ONLY if b.field != "apiVersion"]


@pytest.mark.parametrize("bad", _SCHEMA_BLIND, ids=_ids(_SCHEMA_BLIND))
def test_crd_cannot_see_creation_time_rules(bad: Bad, crds: dict[str, Any]) -> None:
    """Documents the split: these reach the operator, which refuses them (Valid=False)."""
    assert admit(crds[bad.base["kind"]], bad.manifest()) == []


def test_unknown_field_lists_the_valid_ones() -> None:
    bad = REFUSED_BY_BOTH[_ids(REFUSED_BY_BOTH).index("unknown field maxDelays")]
    message = str(_refusal(bad))
    assert "unknown field" in message
    assert "deadline" in message and "duration" in message


def test_duration_error_shows_valid_examples() -> None:
    bad = REFUSED_BY_BOTH[_ids(REFUSED_BY_BOTH).index("duration in words")]
    assert "'1h30m'" in str(_refusal(bad))

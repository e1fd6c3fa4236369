"""Bad manifests are refused twice: by the pydantic models (the operator and the CLI) and
by the generated CRD (schema and CEL, as the API server would), each naming the field.

A few rules need the creation time (no CEL rule can see it); those are refused by the
models, which the operator applies on admission, and are listed apart so that the split
is explicit rather than hidden.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.invalid import CREATED, REFUSED_BY_BOTH, REFUSED_BY_MODELS_ONLY, Bad

from suandian.api import parse_computejob, parse_gridevent, parse_powersite
from suandian.errors import InvalidSpecError

from crdcheck import admit


def _refusal(bad: Bad) -> InvalidSpecError:
    obj = bad.manifest()
    obj.setdefault("metadata", {})["creationTimestamp"] = CREATED
    parse = {"ComputeJob": parse_computejob, "PowerSite": parse_powersite,
             "GridEvent": parse_gridevent}[obj["kind"]]
    with pytest.raises(InvalidSpecError) as info:
        parse(obj)
    return info.value


def _ids(cases: list[Bad]) -> list[str]:
    return [c.name for c in cases]


def test_enough_invalid_manifests_are_covered() -> None:
    assert len(REFUSED_BY_BOTH) >= 25
    assert {c.base["kind"] for c in REFUSED_BY_BOTH} == {"PowerSite", "ComputeJob",
                                                        "GridEvent"}
    assert sum(c.base["kind"] == "GridEvent" for c in REFUSED_BY_BOTH) >= 15


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

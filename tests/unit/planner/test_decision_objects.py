"""Decisions built slot by slot (:func:`suandian.planner.decisions._decision`) are the
decisions the constructor builds: equal, hashed, printed, pickled and serialised alike;
and with the fast path off the plan is the same."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from suandian.planner import JobDecision, PlanParams, decisions, plan
from unit.planner.test_bounded_search import _world


def _plans(monkeypatch: pytest.MonkeyPatch, direct: bool) -> list[JobDecision]:
    monkeypatch.setattr(decisions, "_DIRECT", direct)
    out: list[JobDecision] = []
    for seed, capacity in ((0, 1.0), (1, 0.1), (3, 0.5)):
        out.extend(plan(_world(seed, 40, 4, 48, capacity), PlanParams()).decisions)
    return out


def test_decisions_set_slot_by_slot_are_the_constructors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert decisions._DIRECT  # the model has the fields the fast path sets
    fast = _plans(monkeypatch, True)
    assert fast and any(d.site is not None for d in fast)
    for d in fast:
        built = JobDecision(**{f.name: getattr(d, f.name) for f in dataclasses.fields(d)})
        assert d == built and hash(d) == hash(built) and repr(d) == repr(built)
        assert pickle.loads(pickle.dumps(d)) == d and d.to_dict() == built.to_dict()
        with pytest.raises(dataclasses.FrozenInstanceError):
            d.reason = "changed"  # type: ignore[misc]
    assert _plans(monkeypatch, False) == fast

"""Decisions survive the trip through annotations and status; pod gate patches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jsonpatch
import pytest

from suandian.k8s.decision import Decision, format_grams
from suandian.k8s.pods import GATE, gate_added, gate_patch_ops, is_managed, ungate_patch
from suandian.k8s.status import with_condition
from suandian.units import parse_time

T0 = datetime(2026, 6, 21, tzinfo=UTC)


def sample() -> Decision:
    return Decision(
        site="gansu", planned_start=T0 + timedelta(hours=2), latest_start=T0 + timedelta(hours=9),
        reason="waiting 2h for sun", windows=((T0 + timedelta(hours=2), T0 + timedelta(hours=4)),
                                              (T0 + timedelta(hours=8), T0 + timedelta(hours=10))),
        expected_emissions_g=1000.0, run_now_emissions_g=42_200.0, expected_green_fraction=0.93,
        energy_kwh=12.5)


def test_decision_round_trips_through_annotations_and_status():
    d = sample()
    back = Decision.from_annotations(d.annotations())
    assert back is not None
    assert (back.site, back.planned_start, back.latest_start, back.windows) == (
        d.site, d.planned_start, d.latest_start, d.windows)
    status = d.status_fields()
    assert status["greenPercent"] == 93
    assert status["saved"] == "41.2 kg"
    assert status["emissions"]["savedGrams"] == 41200.0
    again = Decision.from_status(status)
    assert again is not None and again.windows == d.windows
    assert again.saved_g == pytest.approx(41_200.0)


def test_a_torn_decision_reads_as_none():
    assert Decision.from_annotations({"suandian.io/site": "gansu"}) is None
    assert Decision.from_status({"site": "gansu", "plannedStart": "yesterday",
                                 "latestStart": "2026-06-21T00:00:00Z"}) is None


def test_windows_answer_where_now_is():
    d = sample()
    assert d.window_at(T0 + timedelta(hours=3)) == d.windows[0]
    assert d.window_at(T0 + timedelta(hours=4)) is None  # ends are exclusive
    assert d.next_window_start(T0 + timedelta(hours=4)) == T0 + timedelta(hours=8)
    assert d.start_by() == d.planned_start
    late = Decision(site="x", planned_start=T0 + timedelta(hours=9),
                    latest_start=T0 + timedelta(hours=5), reason="")
    assert late.start_by() == T0 + timedelta(hours=5)  # never past the latest start


def test_times_and_grams_for_people():
    assert parse_time("2026-06-21T08:00:00+08:00") == T0
    with pytest.raises(ValueError):
        parse_time("2026-06-21T08:00:00")
    assert format_grams(850) == "850 g"
    assert format_grams(-1500) == "-1.5 kg"
    assert format_grams(3.1e6) == "3.10 t"


def test_webhook_patch_adds_our_gate_once_and_keeps_others():
    pod = {"metadata": {"labels": {"suandian.io/managed": "true"}}, "spec": {}}
    assert is_managed(pod)
    assert not is_managed({"metadata": {"labels": {"suandian.io/managed": "yes"}}})
    ops = gate_patch_ops(pod)
    gated = jsonpatch.apply_patch(pod, ops)
    assert gated["spec"]["schedulingGates"] == [{"name": GATE}]
    assert gate_patch_ops(gated) == []
    other = {"spec": {"schedulingGates": [{"name": "kueue"}]}}
    assert jsonpatch.apply_patch(other, gate_patch_ops(other))["spec"]["schedulingGates"] == [
        {"name": "kueue"}, {"name": GATE}]
    assert gate_added([{"name": GATE}]) == [{"name": GATE}]


def test_ungating_removes_only_ours_and_refuses_a_changed_list():
    pod = {"spec": {"schedulingGates": [{"name": "kueue"}, {"name": GATE}]}}
    released = jsonpatch.apply_patch(pod, ungate_patch(pod))
    assert released["spec"]["schedulingGates"] == [{"name": "kueue"}]
    changed = {"spec": {"schedulingGates": [{"name": GATE}]}}
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(changed, ungate_patch(pod))


def test_conditions_keep_transition_time_unless_status_changes():
    t1, t2 = T0, T0 + timedelta(hours=1)
    first = with_condition(None, "Valid", True, "SpecValid", "ok", t1)
    same = with_condition(first, "Valid", True, "SpecValid", "still ok", t2)
    assert same[0]["lastTransitionTime"] == "2026-06-21T00:00:00Z"
    flipped = with_condition(same, "Valid", False, "InvalidSpec", "bad", t2, generation=3)
    assert flipped[0]["lastTransitionTime"] == "2026-06-21T01:00:00Z"
    assert flipped[0]["observedGeneration"] == 3
    both = with_condition(flipped, "Started", True, "Planned", "go", t2)
    assert [c["type"] for c in both] == ["Valid", "Started"]

"""What `suandian release` decides for each object, without a server (the real-API tier
runs it against one: tests/envtest/test_uninstall.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from suandian.k8s.release import FREEZE_PRIORITY, Released, freeze_entry, release_plan


def test_only_unfinished_jobs_with_a_suspended_child_are_started() -> None:
    waiting = {"spec": {"suspend": True}}
    running = {"spec": {"suspend": False}}
    assert release_plan({"status": {"phase": "Deferred"}}, waiting) == "start"
    assert release_plan({"status": {"phase": "Suspended"}}, waiting) == "start"  # interruptible
    assert release_plan({"status": {"phase": "Running"}}, running) == "none"
    assert release_plan({"status": {"phase": "Succeeded"}}, waiting) == "none"
    assert release_plan({"status": {"phase": "Pending"}}, None) == "wait"
    assert release_plan({}, None) == "wait"


def test_the_freeze_outranks_every_replica_and_expires() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    (entry,) = freeze_entry("me", now, timedelta(minutes=10))["status"].values()
    assert entry == {"priority": FREEZE_PRIORITY, "lastseen": now.isoformat(), "lifetime": 600}
    assert FREEZE_PRIORITY > 2**32  # the chart's replicas draw 32 random bits


def test_the_report_says_what_was_left() -> None:
    done = Released(jobs=["a/x"], waiting=[f"ns/j{i}" for i in range(12)],
                    problems=["start Job a/y: 403"])
    lines = done.lines()
    assert lines[0].startswith("froze no operator")
    assert "started 1 suspended child Jobs" in lines
    assert lines[-2].startswith("left 12 ComputeJobs") and lines[-2].endswith("...")
    assert lines[-1] == "could not: start Job a/y: 403"

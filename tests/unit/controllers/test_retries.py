"""The one retry rule of the loops that must not die (:mod:`suandian.controllers.retries`)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from suandian.controllers.retries import Streak, failed

FIRST, MOST = timedelta(seconds=5), timedelta(seconds=30)


def fail(streak: Streak, exc: Exception, bug: bool = True) -> tuple[Streak, timedelta]:
    return failed(streak, exc, what="the thing", bug=bug, first=FIRST, most=MOST,
                  logger=logging.getLogger("test.retries"))


def test_the_wait_doubles_with_each_failure_in_a_row_up_to_the_cap() -> None:
    streak, waits = Streak(), []
    for _ in range(6):
        streak, wait = fail(streak, IndexError("7"))
        waits.append(wait.total_seconds())
    assert waits == [5, 10, 20, 30, 30, 30] and streak == Streak(6, "IndexError: 7")
    assert fail(Streak(10_000), IndexError("7"))[1] == MOST  # no overflow far along


def test_a_bug_has_its_traceback_once_and_repeats_are_one_line(
        caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise KeyError("gansu")

    streak = Streak()
    for _ in range(3):
        try:
            boom()
        except KeyError as exc:
            streak, _wait = fail(streak, exc)
    assert caplog.text.count("Traceback") == 1 and "in boom" in caplog.text
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.WARNING,
                                                   logging.WARNING]
    assert "the thing failed again (3 in a row), retrying in 0:00:20: KeyError: 'gansu'" in (
        caplog.text)


def test_an_expected_error_is_one_warning_line_and_another_error_is_news(
        caplog: pytest.LogCaptureFixture) -> None:
    streak, _ = fail(Streak(), ValueError("no room"), bug=False)
    streak, _ = fail(streak, ValueError("no site"), bug=False)  # not a repeat
    assert "Traceback" not in caplog.text
    assert [r.getMessage() for r in caplog.records] == [
        "the thing failed, retrying in 0:00:05: ValueError: no room",
        "the thing failed, retrying in 0:00:10: ValueError: no site"]
    assert all(r.levelno == logging.WARNING for r in caplog.records)

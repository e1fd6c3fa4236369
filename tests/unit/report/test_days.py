"""Day boundaries: local midnights, summer time, the partial day, and refused options."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from suandian.report.days import ReportInputError, days_between, timezone

UTC = timezone("UTC")


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_utc_days_are_midnight_to_midnight() -> None:
    days = days_between(date(2026, 11, 1), date(2026, 11, 4), UTC, now=at("2026-12-01T00:00Z"))
    assert [d.day for d in days] == [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
    assert days[0].start == at("2026-11-01T00:00Z")
    assert days[0].end == days[1].start == at("2026-11-02T00:00Z")
    assert all(d.seconds == 86400 and not d.partial for d in days)


def test_shanghai_days_start_at_16_utc() -> None:
    days = days_between(date(2026, 11, 1), date(2026, 11, 2), timezone("Asia/Shanghai"),
                        now=at("2026-12-01T00:00Z"))
    assert days[0].start == at("2026-10-31T16:00Z")


def test_summer_time_days_are_23_and_25_hours() -> None:
    berlin = timezone("Europe/Berlin")
    spring = days_between(date(2026, 3, 29), date(2026, 3, 30), berlin,
                          now=at("2027-01-01T00:00Z"))
    autumn = days_between(date(2026, 10, 25), date(2026, 10, 26), berlin,
                          now=at("2027-01-01T00:00Z"))
    assert spring[0].seconds == 23 * 3600
    assert autumn[0].seconds == 25 * 3600


def test_today_ends_now_and_is_partial_and_the_future_is_dropped() -> None:
    now = at("2026-11-02T09:30Z")
    days = days_between(date(2026, 11, 1), date(2026, 11, 10), UTC, now=now)
    assert [d.day for d in days] == [date(2026, 11, 1), date(2026, 11, 2)]
    assert days[-1].end == now and days[-1].partial and not days[0].partial


@pytest.mark.parametrize(("since", "until", "words"), [
    (date(2026, 11, 2), date(2026, 11, 2), "--until 2026-11-02 must be after --since"),
    (date(2025, 1, 1), date(2026, 6, 1), "at most 400 days"),
    (date(2027, 1, 1), date(2027, 1, 2), "--since 2027-01-01 is in the future"),
])
def test_bad_periods_are_refused_naming_the_option(since: date, until: date,
                                                   words: str) -> None:
    with pytest.raises(ReportInputError, match=words):
        days_between(since, until, UTC, now=at("2026-12-01T00:00Z"))


def test_an_unknown_zone_is_refused_with_examples() -> None:
    with pytest.raises(ReportInputError, match=r"--timezone 'Mars/Olympus'.*Asia/Shanghai"):
        timezone("Mars/Olympus")

"""Event time (issue 11): `intent.time`, `weekday`, `time_of_day`, `in_window` in the policy's
`timezone` (DST-correct), the checker's refusals with suggestions, and the trading-day
arithmetic the control core rolls over with."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy_engine.lang import eventtime
from policy_engine.lang.eventtime import TradingDay, in_window, time_of_day, weekday, zone

from support.loading import problems

NEW_YORK = zone("America/New_York")


def test_the_functions_read_local_time_across_daylight_saving() -> None:
    before = datetime(2026, 3, 8, 6, 59, tzinfo=UTC)  # 01:59 EST
    after = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT: the clocks jumped
    assert time_of_day(before, NEW_YORK) == 119
    assert time_of_day(after, NEW_YORK) == 180
    assert weekday(after, NEW_YORK) == 6  # Sunday
    assert time_of_day(datetime(2026, 1, 5, 21, 55, 30, tzinfo=UTC), UTC) == 1315.5
    assert in_window(datetime(2026, 1, 5, 21, 55, tzinfo=UTC), "21:55", "22:05", UTC)
    assert not in_window(datetime(2026, 1, 5, 22, 5, tzinfo=UTC), "21:55", "22:05", UTC)


@given(
    t=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    start=st.integers(0, 1439),
    end=st.integers(0, 1439),
)
def test_a_window_and_its_complement_split_the_day(t: datetime, start: int, end: int) -> None:
    """[a, b) and [b, a) cover every instant exactly once (a window wraps past midnight)."""
    a, b = f"{start // 60:02}:{start % 60:02}", f"{end // 60:02}:{end % 60:02}"
    if start == end:
        assert in_window(t, a, b, NEW_YORK)  # an empty-looking window wraps: the whole day
        return
    assert in_window(t, a, b, NEW_YORK) != in_window(t, b, a, NEW_YORK)


@pytest.mark.parametrize("text", ["24:00", "9:30", "09:60", "0930", " 09:30", ""])
def test_a_time_of_day_must_be_hh_mm(text: str) -> None:
    with pytest.raises(eventtime.TimeError, match="HH:MM"):
        eventtime.minutes_of(text)


@pytest.mark.parametrize(
    "name", ["localtime", "posixrules", "posix/UTC", "right/UTC", "/etc/localtime", "../UTC"]
)
def test_a_zone_that_follows_the_host_is_refused(name: str) -> None:
    """Only canonical IANA names load: `localtime` and friends decide differently per host."""
    assert problems(
        f"""
        timezone: "{name}"
        rules: [{{id: a, require: weekday(intent.time) < 5}}]
        """
    ) == [
        f"t.yaml:5:11: PT311 `timezone`: time zone `{name}` depends on the machine it runs on: "
        "use a canonical IANA name such as `Europe/London`"
    ]


def test_the_checker_refuses_what_cannot_be_read_as_time() -> None:
    assert problems(
        """
        timezone: Europe/Londn
        rules: [{id: a, require: weekday(intent.time) < 5}]
        """
    ) == [
        "t.yaml:5:11: PT308 `timezone`: unknown time zone `Europe/Londn` "
        "(did you mean `Europe/London`?)"
    ]
    assert problems(
        """
        rules:
          - {id: a, require: 'in_window(intent.time, "21:55", "25:00")'}
          - {id: b, require: weekday(intent.symbol) < 5}
          - {id: c, limit: intent.time + 1}
          - {id: d, require: intent.timestamp != 0}
        """
    ) == [
        "t.yaml:6:55: PT302 `in_window`: not a time of day \"HH:MM\" (00:00 to 23:59): '25:00'",
        "t.yaml:7:30: PT302 `weekday` needs a time (such as `intent.time`), not `intent.symbol`",
        "t.yaml:8:20: PT302 `+` needs a number, but `intent.time` is a time",
        "t.yaml:9:22: PT301 unknown name `intent.timestamp` (did you mean `intent.time`?)",
    ]


def test_times_compare_with_times_only() -> None:
    assert problems("rules: [{id: a, require: intent.time <= intent.time}]") == []
    assert problems("rules: [{id: a, require: intent.time < 5}]") == [
        "t.yaml:4:26: PT302 cannot compare `intent.time` (time) with `5` (number)"
    ]


def test_utc_needs_no_time_zone_database() -> None:
    assert zone("UTC") is UTC


# --- the trading day --------------------------------------------------------------------


def test_a_trading_day_runs_from_rollover_to_rollover() -> None:
    day = TradingDay(NEW_YORK, "17:00")
    assert day.day_of(datetime(2026, 1, 6, 21, 59, tzinfo=UTC)) == date(2026, 1, 5)  # 16:59
    assert day.day_of(datetime(2026, 1, 6, 22, 0, tzinfo=UTC)) == date(2026, 1, 6)  # 17:00
    assert day.check_from(date(2026, 1, 5)) == datetime(2026, 1, 6, 22, 0, tzinfo=UTC)


def test_a_rollover_skipped_by_daylight_saving_happens_when_the_gap_ends() -> None:
    """02:30 does not exist in New York on 8 March 2026: the day starts at 03:00 EDT."""
    day = TradingDay(NEW_YORK, "02:30")
    assert day.day_of(datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC)) == date(2026, 3, 7)
    assert day.day_of(datetime(2026, 3, 8, 7, 0, tzinfo=UTC)) == date(2026, 3, 8)
    assert day.check_from(date(2026, 3, 7)) <= datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


def test_a_rollover_repeated_by_daylight_saving_happens_the_first_time() -> None:
    day = TradingDay(NEW_YORK, "01:30")
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert day.day_of(first - timedelta(seconds=1)) == date(2026, 10, 31)
    assert day.day_of(first) == date(2026, 11, 1)
    assert day.check_from(date(2026, 10, 31)) == first


@given(
    t=st.datetimes(
        min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
    ),
    rollover=st.sampled_from(["00:00", "01:30", "02:30", "17:00", "23:59"]),
)
def test_no_day_starts_before_its_check_instant(t: datetime, rollover: str) -> None:
    """Between an instant and the check instant of its day's successor the day is the same:
    the control core may skip the conversion until an event reaches the check instant."""
    day = TradingDay(NEW_YORK, rollover)
    current = day.day_of(t)
    check = day.check_from(current)
    assert check > t
    assert day.day_of(check - timedelta(microseconds=1)) <= current + timedelta(days=1)
    assert day.day_of(t + (check - t) / 2) in (current, current + timedelta(days=1))

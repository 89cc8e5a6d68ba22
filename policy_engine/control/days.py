"""The trading day the core is in, and when an event moves it to the next one.

The policy's ``trading_day`` says where and when a day starts (a rollover time of
day in a zone; :class:`~policy_engine.lang.eventtime.TradingDay`). :class:`Days`
keeps the current day and the instant from which a new one is possible, so that
the core tests each event with one comparison and converts time only when a day
may have ended. A day moves only forward (the event clock never moves back), on
event time, never the wall clock.
"""

from __future__ import annotations

from datetime import date, datetime

from ..lang.eventtime import TradingDay


class Days:
    """The current trading day (None before the first timestamped event)."""

    __slots__ = ("calendar", "check", "day")

    def __init__(self, calendar: TradingDay, day: date | None = None) -> None:
        self.calendar = calendar
        self.day = day
        self.check: datetime | None = None if day is None else calendar.check_from(day)

    def crossed(self, now: datetime) -> tuple[date | None, date] | None:
        """``(previous day, new day)`` when ``now`` starts a later day than the current one
        (the previous is None for the first day), else None."""
        check = self.check
        if check is not None and now < check:
            return None
        day = self.calendar.day_of(now)
        previous = self.day
        if previous is not None and day <= previous:
            return None  # before the day's true start (a DST gap): the next event looks again
        self.day = day
        self.check = self.calendar.check_from(day)
        return previous, day

    def follow(self, calendar: TradingDay, clock: datetime | None) -> Days:
        """The days of another calendar (a reloaded policy) without a rollover: the day that
        is running keeps its P&L, and the next rollover is by the new calendar."""
        if calendar == self.calendar or clock is None:
            return Days(calendar, self.day)
        return Days(calendar, calendar.day_of(clock))


__all__ = ["Days"]

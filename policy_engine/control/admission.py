"""Admission: what a live shell refuses before it journals anything.

The core decides on event time and never reads a clock; a live shell still must
not let one event stamped far in the future move the event clock (it would
expire every live reservation). :class:`Admission` compares an event's
timestamp with an injected clock (the wall clock in a live process,
``workflow.now()`` in a Temporal workflow, none in a simulation) and refuses
what is more than ``max_skew`` ahead. Replay never applies it: what was
admitted is in the journal, what was refused is not.

Why not bound it by the event clock itself: a book with no events over a
weekend would then refuse Monday's first event, and every one after it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from time import time as _time

from .events import DEFAULT_MAX_SKEW, Clock, EventError


def wall_clock() -> datetime:
    """Now, in UTC: the default admission clock of a live controller."""
    return datetime.now(UTC)


class Admission:
    """Refuses timestamps more than ``max_skew`` ahead of ``clock()`` (no clock: none)."""

    def __init__(self, clock: Clock | None = wall_clock, max_skew: timedelta = DEFAULT_MAX_SKEW):
        self.clock = clock
        self.max_skew = max_skew
        # With the wall clock, a timestamp well inside the bound is admitted on POSIX
        # seconds (time.time(), ts.timestamp()) without building an aware `now`; within a
        # millisecond of the bound (float rounding) the exact comparison below decides.
        self._skew_s = max_skew.total_seconds() - 0.001 if clock is wall_clock else None

    def ahead(self, ts: datetime | None) -> str | None:
        """Why ``ts`` is too far ahead, or None when it may be admitted."""
        if ts is None or self.clock is None:
            return None
        if self._skew_s is not None and ts.timestamp() <= _time() + self._skew_s:
            return None
        now = self.clock()
        if ts > now + self.max_skew:
            return (
                f"timestamp {ts.isoformat()} is more than {self.max_skew} ahead of the clock "
                f"({now.isoformat()}); refused so that it cannot move the event clock"
            )
        return None

    def check(self, ts: datetime | None) -> None:
        """Raise :class:`EventError` when ``ts`` is too far ahead."""
        ahead = self.ahead(ts)
        if ahead is not None:
            raise EventError(ahead)


__all__ = ["Admission", "wall_clock"]

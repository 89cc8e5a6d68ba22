"""Timed locks: a key locked for a while after a window's count for it reached a threshold.

A policy declares ``locks:`` (``cooldown: {window: closes_any, at_least: 1, for: 60m,
round_to: 5m}``) and reads ``lock.cooldown``: whether the intent's key, in the namespace
the window counts per, is locked at the intent's time. When the window counts an event
for a key and its count there reaches ``at_least``, the key is locked until ``for`` after
that event (or the next rollover, or the next local ``HH:MM``), the end moved up to the
next ``round_to`` boundary (freqtrade's candles: 12:30 on 5-minute candles ends at
12:35). A lock set again keeps the later end. The end lives in the key's bucket (its
``windows`` under ``lock:<name>``, whole microseconds since the epoch) where the compiled
chain reads it; a heap of ends drops it once the event clock reaches it. Nothing here
reads a clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from ..document.model import LockSpec, WindowSpec
from ..engine.runtime import LOCK_PREFIX, epoch_us
from ..lang.eventtime import TradingDay, zone
from .windows import Windows

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Locks:
    """The timed locks of one policy, over the buckets its windows count in."""

    def __init__(
        self, specs: Iterable[LockSpec], windows: Windows, calendar: TradingDay, timezone: str
    ) -> None:
        self.specs: dict[str, LockSpec] = {lk.name: lk for lk in specs}
        self.windows = windows
        self.calendar = calendar
        self.tz = zone(timezone)
        self.by_window: dict[str, tuple[LockSpec, ...]] = {}
        for lk in self.specs.values():
            self.by_window[lk.window] = (*self.by_window.get(lk.window, ()), lk)
        self.ends: dict[tuple[str, str], datetime] = {}  # (lock, key) -> end, in set order
        self.heap: list[tuple[datetime, str, str]] = []
        windows.locks = self if self.specs else None

    def counted(self, window: WindowSpec, key: str, count: int, now: datetime) -> None:
        """Window ``window`` counted an event for ``key`` (its count there now ``count``)."""
        for lk in self.by_window.get(window.name, ()):
            if count >= lk.at_least:
                self.set(lk, window.per, key, self.end_of(lk, now))

    def end_of(self, lock: LockSpec, now: datetime) -> datetime:
        """When ``lock`` set at ``now`` ends."""
        if lock.seconds is not None:
            end = now + timedelta(seconds=lock.seconds)
        elif lock.until == "rollover":
            end = self.calendar.check_from(self.calendar.day_of(now))
        else:
            local = TradingDay(self.tz, str(lock.until))  # "days" that start at that time
            end = local.check_from(local.day_of(now))
        if lock.round_to is not None:  # up to the next candle's open after it
            step = lock.round_to * 1_000_000
            end = _EPOCH + timedelta(microseconds=(epoch_us(end) // step + 1) * step)
        return end

    def set(self, lock: LockSpec, per: str, key: str, end: datetime) -> None:
        held = self.ends.get((lock.name, key))
        if held is not None and held >= end:
            return  # set again: the later end holds
        self.ends[(lock.name, key)] = end
        self.windows.bucket(per, key).windows[LOCK_PREFIX + lock.name] = epoch_us(end)
        heapq.heappush(self.heap, (end, lock.name, key))

    def advance(self, now: datetime) -> None:
        """The clock reads ``now``: locks that ended by then are dropped."""
        heap = self.heap
        while heap and heap[0][0] <= now:
            end, name, key = heapq.heappop(heap)
            if self.ends.get((name, key)) == end:
                del self.ends[(name, key)]
                per = self.windows.specs[self.specs[name].window].per
                self.windows.bucket(per, key).windows.pop(LOCK_PREFIX + name, None)

    def end(self, name: str, key: str) -> datetime | None:
        """When lock ``name`` for ``key`` ends (None: not locked)."""
        return self.ends.get((name, key))

    # --- snapshots and reloads ----------------------------------------------------------
    def entries(self) -> list[list[Any]]:
        """Every lock that holds: ``[name, key, end (ISO 8601)]``, in the order set."""
        return [[n, k, e.isoformat()] for (n, k), e in self.ends.items()]

    def load(self, rows: Iterable[list[Any]]) -> None:
        for name, key, end in rows:
            if name in self.specs and self.specs[name].window in self.windows.specs:
                per = self.windows.specs[self.specs[name].window].per
                self.set(self.specs[name], per, str(key), datetime.fromisoformat(end))

    def follow(
        self, specs: Iterable[LockSpec], windows: Windows, calendar: TradingDay, timezone: str
    ) -> Locks:
        """The locks of a reloaded policy: one declared alike (on a window kept alike)
        keeps its ends; one that is new, changed or gone holds no more."""
        new = Locks(specs, windows, calendar, timezone)
        for (name, key), end in self.ends.items():
            same = new.specs.get(name) == self.specs[name]
            window = self.specs[name].window
            kept = same and windows.specs.get(window) == self.windows.specs.get(window)
            if kept:
                new.set(new.specs[name], windows.specs[window].per, key, end)
                continue
            per = self.windows.specs[window].per
            self.windows.bucket(per, key).windows.pop(LOCK_PREFIX + name, None)
        return new


__all__ = ["Locks"]

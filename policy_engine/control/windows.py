"""Rolling windows: how many events of a kind a bucket saw in the last ``over`` seconds.

A policy declares ``windows:`` (``trades_1h: {count: approvals, per: strategy, over:
1h}``) and reads ``strategy.trades_1h``. The count at event time ``t`` is the
number of counted events with a time in ``(t - over, t]`` (``[t - over, t]`` for a window
declared ``boundary: closed``), where an event's time
is the event clock when it happened (the latest timestamp seen, which never moves
back). The core counts after it decides, so the count an intent sees never
includes itself, as ``active_trades`` does not.

Memory is bounded by the events inside the windows: each window keeps one queue
of ``(expiry, key)`` in the order events happened, and since every entry of a
window lives exactly ``over``, the queue is also in expiry order: moving the clock
pops what expired from the front, in constant time per entry. The counts
themselves live in each bucket's ``windows`` dict, which the compiled chain reads
like any counter. Nothing here reads a clock.

A daily window (``over: trading_day``) keeps no queue: its counts only grow during the
trading day and are dropped at the rollover (:meth:`Windows.new_day`, which the kernel
calls when it starts a day), so its memory is one count per key seen that day.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..document.model import WindowSpec
from .state import Bucket, PortfolioState

if TYPE_CHECKING:
    from .locks import Locks

# What a counted event says about itself: its kind, and the key of each namespace it
# belongs to ("" for the portfolio; a scope is absent when the intent's key is null).
Keys = Mapping[str, str]


class Windows:
    """The rolling windows of one policy over one portfolio state."""

    def __init__(self, specs: Iterable[WindowSpec], state: PortfolioState) -> None:
        self.state = state
        self.specs: dict[str, WindowSpec] = {w.name: w for w in specs}
        # An event leaves its window at its expiry; a closed window keeps it one microsecond
        # (the event clock's grid) longer, so that one exactly `over` ago is still inside.
        self.spans = {
            name: timedelta(seconds=w.over, microseconds=1 if w.closed else 0)
            for name, w in self.specs.items()
        }
        self.queues: dict[str, deque[tuple[datetime, str]]] = {n: deque() for n in self.specs}
        self.by_kind: dict[str, tuple[WindowSpec, ...]] = {}
        for w in self.specs.values():
            self.by_kind[w.count] = (*self.by_kind.get(w.count, ()), w)
        self.daily = tuple(w for w in self.specs.values() if w.daily)
        self.locks: Locks | None = None  # told of every count (control/locks.py)
        for w in self.daily:  # a daily window's events never expire one by one
            del self.queues[w.name]

    def table(self, per: str) -> Mapping[str, Bucket]:
        """Every bucket of ``per`` by key (the portfolio's key is "")."""
        state = self.state
        if per == "portfolio":
            return {"": state}
        if per in ("strategy", "symbol", "cohort"):
            return {"strategy": state.strategies, "symbol": state.symbols}.get(per, state.cohorts)
        return state.scopes.get(per, {})

    def bucket(self, per: str, key: str) -> Bucket:
        """The bucket of ``per`` (a namespace) for ``key``, made if it is new."""
        state = self.state
        if per == "portfolio":
            return state
        if per in ("strategy", "symbol", "cohort"):
            table = {"strategy": state.strategies, "symbol": state.symbols}.get(per, state.cohorts)
        else:
            table = state.scopes.setdefault(per, {})
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = Bucket()
        return bucket

    def count(self, kind: str, now: datetime, keys: Keys, reason: str | None = None) -> None:
        """One event of ``kind`` at ``now`` (a close's exit ``reason``): every window counting
        it adds one to the bucket of its namespace (none when the event has no key there, or
        when the window counts only closes of other reasons)."""
        for w in self.by_kind.get(kind, ()):
            if w.reasons and reason not in w.reasons:
                continue
            key = "" if w.per == "portfolio" else keys.get(w.per)
            if key is None:
                continue
            counts = self.bucket(w.per, key).windows
            counts[w.name] = n = counts.get(w.name, 0) + 1
            if self.locks is not None:
                self.locks.counted(w, key, n, now)
            if not w.daily:
                self.queues[w.name].append((now + self.spans[w.name], key))

    def next_exit(self, name: str, key: str) -> datetime | None:
        """When the oldest event of ``key`` leaves window ``name`` (None: none inside, or a
        daily window, which empties at the rollover)."""
        for expiry, k in self.queues.get(name, ()):
            if k == key:
                return expiry
        return None

    def new_day(self) -> None:
        """The trading day rolled over: every daily window starts again from zero."""
        for w in self.daily:
            for bucket in self.table(w.per).values():
                bucket.windows.pop(w.name, None)

    def advance(self, now: datetime) -> None:
        """The clock reads ``now``: events at ``now - over`` or earlier leave their window."""
        for name, queue in self.queues.items():
            if not queue or queue[0][0] > now:
                continue
            per = self.specs[name].per
            while queue and queue[0][0] <= now:
                _expiry, key = queue.popleft()
                counts = self.bucket(per, key).windows
                left = counts[name] - 1
                if left:
                    counts[name] = left
                else:
                    del counts[name]

    # --- snapshots and reloads ----------------------------------------------------------
    def entries(self) -> dict[str, list[list[Any]]]:
        """Every queued event, by window: ``[expiry (ISO 8601), key]`` in order; a daily
        window's count per key as ``[null, key, count]``, sorted by key (buckets come and go:
        their order must not show in a snapshot)."""
        out: dict[str, list[list[Any]]] = {
            n: [[e.isoformat(), k] for e, k in q] for n, q in self.queues.items()
        }
        for w in self.daily:
            rows = sorted(self.table(w.per).items())
            out[w.name] = [[None, k, b.windows[w.name]] for k, b in rows if w.name in b.windows]
        return out

    def load(self, entries: Mapping[str, list[list[Any]]]) -> None:
        """Restore the queues and the counts they imply (the buckets' counts are rebuilt
        from the queues, so the two cannot disagree)."""
        for name, rows in entries.items():
            if name not in self.specs:
                continue
            per = self.specs[name].per
            if self.specs[name].daily:
                for _none, key, n in rows:
                    self.bucket(per, str(key)).windows[name] = int(n)
                continue
            queue = self.queues[name]
            for expiry, key in rows:
                queue.append((datetime.fromisoformat(expiry), str(key)))
                counts = self.bucket(per, str(key)).windows
                counts[name] = counts.get(name, 0) + 1

    def follow(self, specs: Iterable[WindowSpec]) -> Windows:
        """The windows of a reloaded policy: one declared alike keeps its events; one that
        is new or changed starts empty; one that is gone leaves no count behind."""
        new = Windows(specs, self.state)
        for name, spec in self.specs.items():
            if new.specs.get(name) == spec:
                if not spec.daily:
                    new.queues[name] = self.queues[name]
                continue
            for bucket in self.state.buckets():
                bucket.windows.pop(name, None)
        return new


__all__ = ["Keys", "Windows"]

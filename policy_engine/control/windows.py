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

An aggregate window (``sum:``, ``min:``, ``max:`` or ``drawdown: realized_pnl``) reads a
quantity of the events instead of their number: its queue entries carry the close's
realized P&L in exact integer micro-units (``RISK_SCALE``), and the bucket holds the float
mirror of the exact aggregate (the nearest float to an integer, never accumulated). A sum
moves by each entry in and out; a min, max or drawdown is recomputed from the window's
entries of that key whenever one comes or goes, so its state is the queue itself,
O(events in the window), and a change costs one pass over the queue.

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
from ..engine.contracts import from_units
from .state import Bucket, PortfolioState

if TYPE_CHECKING:
    from .locks import Locks

# What a counted event says about itself: its kind, and the key of each namespace it
# belongs to ("" for the portfolio; a scope is absent when the intent's key is null).
Keys = Mapping[str, str]
# A queued event: when it leaves, its key, and its quantity in micro-units (0 when counted).
Entry = tuple[datetime, str, int]


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
        self.queues: dict[str, deque[Entry]] = {n: deque() for n in self.specs}
        # a sum window's exact total per key (absent: 0), moved by each entry in and out
        self.sums: dict[str, dict[str, int]] = {
            n: {} for n, w in self.specs.items() if w.aggregate == "sum"
        }
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
        # (an if chain, not a dict of the tables built per call: every count comes here)
        if per == "strategy":
            table = state.strategies
        elif per == "symbol":
            table = state.symbols
        elif per == "cohort":
            table = state.cohorts
        else:
            table = state.scopes.setdefault(per, {})
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = Bucket()
        return bucket

    def count(
        self,
        kind: str,
        now: datetime,
        keys: Keys,
        reason: str | None = None,
        units: int | None = None,
    ) -> None:
        """One event of ``kind`` at ``now`` (a close's exit ``reason`` and realized P&L in
        micro-``units``): every window counting it adds one to the bucket of its namespace
        (none when the event has no key there, or when the window counts only closes of
        other reasons); an aggregate window takes in its quantity instead (none when the
        close reports no realized P&L: there is nothing to aggregate)."""
        for w in self.by_kind.get(kind, ()):
            if w.reasons and reason not in w.reasons:
                continue
            key = "" if w.per == "portfolio" else keys.get(w.per)
            if key is None:
                continue
            if w.aggregate is not None:
                if units is not None:
                    self.queues[w.name].append((now + self.spans[w.name], key, units))
                    self._moved(w, key, units)
                continue
            counts = self.bucket(w.per, key).windows
            counts[w.name] = n = int(counts.get(w.name, 0)) + 1
            if self.locks is not None:
                self.locks.counted(w, key, n, now)
            if not w.daily:
                self.queues[w.name].append((now + self.spans[w.name], key, 0))

    def next_exit(self, name: str, key: str) -> datetime | None:
        """When the oldest event of ``key`` leaves window ``name`` (None: none inside, or a
        daily window, which empties at the rollover)."""
        for expiry, k, _units in self.queues.get(name, ()):
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
            spec = self.specs[name]
            per = spec.per
            if spec.aggregate is not None:
                moved: dict[str, int] = {}
                while queue and queue[0][0] <= now:
                    _expiry, key, units = queue.popleft()
                    moved[key] = moved.get(key, 0) - units
                for key in sorted(moved):  # each key recomputed once, in a set order
                    self._moved(spec, key, moved[key])
                continue
            while queue and queue[0][0] <= now:
                _expiry, key, _units = queue.popleft()
                counts = self.bucket(per, key).windows
                left = counts[name] - 1
                if left:
                    counts[name] = left
                else:
                    del counts[name]

    def _moved(self, w: WindowSpec, key: str, units: int) -> None:
        """Entries of ``key`` came into or left aggregate window ``w`` (``units``: the change
        of their total): the bucket's value is set again from the exact aggregate."""
        if w.aggregate == "sum":
            sums = self.sums[w.name]
            value: int | None = sums.pop(key, 0) + units
            if value:
                sums[key] = value
        else:
            value = self.aggregate(w, key)
        self._show(w, key, value)

    def _show(self, w: WindowSpec, key: str, value: int | None) -> None:
        """Set the bucket's mirror of the exact ``value``; 0 or none is no entry (and makes
        no bucket: a missing one reads 0)."""
        if value:
            self.bucket(w.per, key).windows[w.name] = from_units(value)
        elif (bucket := self.table(w.per).get(key)) is not None:
            bucket.windows.pop(w.name, None)

    def aggregate(self, w: WindowSpec, key: str) -> int | None:
        """The exact aggregate in micro-units of ``key``'s entries in window ``w`` (None when
        it has none): the least or largest quantity, their total, or the drawdown: the
        largest fall of their running total (in time order, starting from 0) below its
        highest point so far."""
        quantities = [units for _expiry, k, units in self.queues[w.name] if k == key]
        if not quantities:
            return None
        if w.aggregate == "min":
            return min(quantities)
        if w.aggregate == "max":
            return max(quantities)
        if w.aggregate == "sum":
            return sum(quantities)
        total = peak = fall = 0
        for units in quantities:
            total += units
            peak = max(peak, total)
            fall = max(fall, peak - total)
        return fall

    # --- snapshots and reloads ----------------------------------------------------------
    def entries(self) -> dict[str, list[list[Any]]]:
        """Every queued event, by window: ``[expiry (ISO 8601), key]`` in order (an aggregate
        window's with its quantity in micro-units: ``[expiry, key, units]``); a daily
        window's count per key as ``[null, key, count]``, sorted by key (buckets come and go:
        their order must not show in a snapshot)."""
        out: dict[str, list[list[Any]]] = {
            n: [[e.isoformat(), k] for e, k, _u in q]
            for n, q in self.queues.items()
            if self.specs[n].aggregate is None
        }
        for n, q in self.queues.items():
            if self.specs[n].aggregate is not None:
                out[n] = [[e.isoformat(), k, u] for e, k, u in q]
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
            spec = self.specs[name]
            if spec.aggregate is not None:
                for expiry, key, units in rows:
                    queue.append((datetime.fromisoformat(expiry), str(key), int(units)))
                for key in sorted({str(row[1]) for row in rows}):
                    value = self.aggregate(spec, key)
                    if spec.aggregate == "sum" and value:
                        self.sums[name][key] = value
                    self._show(spec, key, value)
                continue
            for expiry, key in rows:
                queue.append((datetime.fromisoformat(expiry), str(key), 0))
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
                if name in self.sums:
                    new.sums[name] = self.sums[name]
                continue
            for bucket in self.state.buckets():
                bucket.windows.pop(name, None)
        return new


__all__ = ["Keys", "Windows"]

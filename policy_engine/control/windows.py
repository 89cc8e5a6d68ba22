"""Rolling windows: how many events of a kind a bucket saw in the last ``over`` seconds, or
the sum, least, largest or drawdown of a quantity they carry.

A policy declares ``windows:`` (``trades_1h: {count: approvals, per: strategy, over:
1h}``) and reads ``strategy.trades_1h``. The count at event time ``t`` is the
number of counted events with a time in ``(t - over, t]`` (``[t - over, t]`` for a window
declared ``boundary: closed``), where an event's time
is the event clock when it happened (the latest timestamp seen, which never moves
back). The core counts after it decides, so the count an intent sees never
includes itself, as ``active_trades`` does not.

Memory is one log entry per event of a kind, shared by every window of that kind (a
hundred windows over the same approvals keep one log, not a hundred queues): ``(time, keys,
exit reason, quantities)``. Each window holds the tail of its kind's log from its own
position on; since every window lives exactly ``over`` and the log is in time order,
moving the clock moves each position forward past what left, in constant time per entry,
and the log drops what every window has left behind. Exact boundaries on the event
clock's microsecond grid need each distinct time (no coarser bucket keeps ``(t - over,
t]`` exact); the log keeps only that and the keys and quantities the windows read.

What a window shows is kept compact beside the log, per key: a count (in the bucket's
``windows`` dict, which the compiled chain reads like any counter), an exact integer sum,
a monotonic deque for a min or max, a two-stack queue of running totals for a drawdown
(control/rolling.py): amortized constant time per event. Aggregates are in exact
micro-units (``RISK_SCALE``); the bucket holds the float mirror (the nearest float to the
integer, never accumulated). Nothing here reads a clock.

A daily window (``over: trading_day``) keeps no log: its counts only grow during the
trading day and are dropped at the rollover (:meth:`Windows.new_day`, which the kernel
calls when it starts a day), so its memory is one count per key seen that day (a daily
aggregate: one exact sum, min or max per key, or three integers for a drawdown).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..document.model import WindowSpec
from ..engine.contracts import from_units
from .rolling import Drawdown, Extreme
from .state import Bucket, PortfolioState

if TYPE_CHECKING:
    from .locks import Locks

# What a counted event says about itself: the key of each namespace it belongs to ("" for
# the portfolio; a scope is absent when the intent's key is null).
Keys = Mapping[str, str]
# Its quantities in micro-units by name (`risk`, `realized_pnl`; absent: not carried).
Quantities = Mapping[str, int]
# A logged event: its time, keys, exit reason and quantities; a row restored from a format
# older than the shared log carries the one window it belongs to as a fifth element.
Entry = tuple[Any, ...]
_NONE: Quantities = {}


class Windows:
    """The rolling windows of one policy over one portfolio state."""

    def __init__(self, specs: Iterable[WindowSpec], state: PortfolioState) -> None:
        self.state = state
        self.specs: dict[str, WindowSpec] = {w.name: w for w in specs}
        # An event leaves its window at time + span; a closed window keeps it one microsecond
        # (the event clock's grid) longer, so that one exactly `over` ago is still inside.
        self.spans = {
            name: timedelta(seconds=w.over, microseconds=1 if w.closed else 0)
            for name, w in self.specs.items()
        }
        self.by_kind: dict[str, tuple[WindowSpec, ...]] = {}
        for w in self.specs.values():
            self.by_kind[w.count] = (*self.by_kind.get(w.count, ()), w)
        # the kinds some window aggregates a quantity of (the others need only be counted:
        # a caller builds an event's quantities only for these)
        self.quantified = frozenset(w.count for w in self.specs.values() if w.quantity)
        # the rolling windows of each kind, and the kind's log of events (its first entry's
        # position in `bases`); each rolling window's position of its oldest event
        self.rolling = {
            kind: tuple(w for w in ws if not w.daily)
            for kind, ws in self.by_kind.items()
            if any(not w.daily for w in ws)
        }
        self.logs: dict[str, deque[Entry]] = {kind: deque() for kind in self.rolling}
        # what a kind's log keeps of each event: the namespaces and quantities its rolling
        # windows read (less memory, and the snapshot's rows are the entries as they are)
        self.reads = {
            kind: (
                tuple(sorted({w.per for w in ws} - {"portfolio"})),
                tuple(sorted({w.quantity for w in ws if w.quantity})),
            )
            for kind, ws in self.rolling.items()
        }
        self.bases: dict[str, int] = dict.fromkeys(self.rolling, 0)
        self.starts: dict[str, int] = {n: 0 for n, w in self.specs.items() if not w.daily}
        # the earliest time an event of the kind can leave a window (None: none inside): a
        # clock before it moves nothing, so most events cost no walk over the windows
        self.next_leave: dict[str, datetime | None] = dict.fromkeys(self.rolling)
        self.shortest = {
            kind: min(self.spans[w.name] for w in ws) for kind, ws in self.rolling.items()
        }
        # an aggregate window's exact state per key (absent: no entry of that key inside)
        self.sums: dict[str, dict[str, int]] = {}
        self.extremes: dict[str, dict[str, Extreme]] = {}
        self.drawdowns: dict[str, dict[str, Drawdown]] = {}
        for n, w in self.specs.items():
            if w.aggregate == "sum":
                self.sums[n] = {}
            elif w.aggregate in ("min", "max"):
                self.extremes[n] = {}
            elif w.aggregate == "drawdown":
                self.drawdowns[n] = {}
        self.daily = tuple(w for w in self.specs.values() if w.daily)
        # a daily aggregate's exact state per key: nothing leaves before the rollover, so a
        # sum, min or max is one integer and a drawdown (total, highest, largest fall)
        self.today: dict[str, dict[str, tuple[int, ...]]] = {
            w.name: {} for w in self.daily if w.aggregate is not None
        }
        self.locks: Locks | None = None  # told of every count (control/locks.py)

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

    @staticmethod
    def key_of(w: WindowSpec, entry: Entry) -> str | None:
        """The key under which window ``w`` counts ``entry`` (None: it does not count it:
        no key in its namespace, another exit reason, no quantity to aggregate, or a row
        of another window)."""
        if len(entry) > 4 and entry[4] != w.name:
            return None
        if w.reasons and entry[2] not in w.reasons:
            return None
        if w.quantity is not None and w.quantity not in entry[3]:
            return None
        return "" if w.per == "portfolio" else entry[1].get(w.per)

    def count(
        self,
        kind: str,
        now: datetime,
        keys: Keys,
        reason: str | None = None,
        quantities: Quantities | None = None,
    ) -> None:
        """One event of ``kind`` at ``now`` (a close's exit ``reason``; its ``quantities``
        in micro-units): every window of the kind that counts it takes it in (none when the
        event has no key in its namespace, another exit reason, or does not carry the
        quantity it aggregates: there is nothing to aggregate)."""
        specs = self.by_kind.get(kind)
        if not specs:
            return
        entry: Entry = (now, keys, reason, quantities or _NONE)
        log = self.logs.get(kind)
        position = -1
        if log is not None:
            position = self.bases[kind] + len(log)
            pers, reads = self.reads[kind]
            quantities = quantities or _NONE
            logged = {p: keys[p] for p in pers if p in keys}
            log.append((now, logged, reason, {q: quantities[q] for q in reads if q in quantities}))
            leave = now + self.shortest[kind]
            first = self.next_leave[kind]
            if first is None or leave < first:
                self.next_leave[kind] = leave
        for w in specs:
            key = self.key_of(w, entry)
            if key is not None:
                self._enter(w, key, entry, position, now)

    def _enter(self, w: WindowSpec, key: str, entry: Entry, position: int, now: datetime) -> None:
        name = w.name
        if w.aggregate is None:
            counts = self.bucket(w.per, key).windows
            counts[name] = n = int(counts.get(name, 0)) + 1
            if self.locks is not None:
                self.locks.counted(w, key, n, now)
            return
        units: int = entry[3][w.quantity]
        value: int | None
        if w.daily:
            value = self._accumulate(w, key, units)
        elif w.aggregate == "sum":
            sums = self.sums[name]
            value = sums.get(key, 0) + units
            if value:
                sums[key] = value
            else:
                sums.pop(key, None)
        elif w.aggregate == "drawdown":
            drawdown = self.drawdowns[name].get(key)
            if drawdown is None:
                drawdown = self.drawdowns[name][key] = Drawdown()
            drawdown.push(units)
            value = drawdown.value()
        else:
            extreme = self.extremes[name].get(key)
            if extreme is None:
                extreme = self.extremes[name][key] = Extreme(w.aggregate == "min")
            extreme.push(position, units)
            value = extreme.value()
        self._show(w, key, value)

    def _accumulate(self, w: WindowSpec, key: str, units: int) -> int:
        """A daily aggregate takes in ``units`` for ``key``; returns its exact value."""
        held = self.today[w.name].get(key)
        if w.aggregate == "drawdown":
            total, peak, fall = held or (0, 0, 0)
            total += units
            peak = max(peak, total)
            state: tuple[int, ...] = (total, peak, max(fall, peak - total))
        elif held is None:
            state = (units,)
        elif w.aggregate == "sum":
            state = (held[0] + units,)
        else:
            state = (min(held[0], units) if w.aggregate == "min" else max(held[0], units),)
        self.today[w.name][key] = state
        return state[-1]

    def _leave(self, w: WindowSpec, key: str, entry: Entry, position: int) -> None:
        name = w.name
        if w.aggregate is None:
            counts = self.bucket(w.per, key).windows
            left = counts[name] - 1
            if left:
                counts[name] = left
            else:
                del counts[name]
            return
        value: int | None
        if w.aggregate == "sum":
            sums = self.sums[name]
            value = sums.pop(key, 0) - entry[3][w.quantity]
            if value:
                sums[key] = value
        elif w.aggregate == "drawdown":
            drawdown = self.drawdowns[name][key]
            drawdown.leave()
            value = drawdown.value()
            if value is None:
                del self.drawdowns[name][key]
        else:
            extreme = self.extremes[name][key]
            extreme.leave(position)
            value = extreme.value()
            if value is None:
                del self.extremes[name][key]
        self._show(w, key, value)

    def _show(self, w: WindowSpec, key: str, value: int | None) -> None:
        """Set the bucket's mirror of the exact ``value``; 0 or none is no entry (and makes
        no bucket: a missing one reads 0)."""
        if value:
            self.bucket(w.per, key).windows[w.name] = from_units(value)
        elif (bucket := self.table(w.per).get(key)) is not None:
            bucket.windows.pop(w.name, None)

    def next_exit(self, name: str, key: str) -> datetime | None:
        """When the oldest event of ``key`` leaves window ``name`` (None: none inside, or a
        daily window, which empties at the rollover)."""
        w = self.specs[name]
        if w.daily:
            return None
        log = self.logs[w.count]
        for i in range(self.starts[name] - self.bases[w.count], len(log)):
            entry = log[i]
            if self.key_of(w, entry) == key:
                moment: datetime = entry[0] + self.spans[name]
                return moment
        return None

    def new_day(self) -> None:
        """The trading day rolled over: every daily window starts again from zero."""
        for day in self.today.values():
            day.clear()
        for w in self.daily:
            for bucket in self.table(w.per).values():
                bucket.windows.pop(w.name, None)

    def advance(self, now: datetime) -> None:
        """The clock reads ``now``: events at ``now - over`` or earlier leave their window,
        and the log forgets what no window holds any more."""
        cutoffs: dict[timedelta, datetime] = {}
        for kind, log in self.logs.items():
            first = self.next_leave[kind]
            if first is None or now < first:
                continue
            base = self.bases[kind]
            low = None
            leave: datetime | None = None
            for w in self.rolling[kind]:
                span = self.spans[w.name]
                cut = cutoffs.get(span)
                if cut is None:
                    cut = cutoffs[span] = now - span
                i = self.starts[w.name] - base
                while i < len(log) and log[i][0] <= cut:
                    entry = log[i]
                    key = self.key_of(w, entry)
                    if key is not None:
                        self._leave(w, key, entry, base + i)
                    i += 1
                self.starts[w.name] = base + i
                low = i if low is None else min(low, i)
                if i < len(log):
                    out = log[i][0] + span
                    leave = out if leave is None or out < leave else leave
            self.next_leave[kind] = leave
            for _ in range(low or 0):
                log.popleft()
            self.bases[kind] = base + (low or 0)

    def _rewind(self) -> None:
        """Recompute when each kind's next event leaves (after a restore or a reload)."""
        for kind, log in self.logs.items():
            base, leave = self.bases[kind], None
            for w in self.rolling[kind]:
                i = self.starts[w.name] - base
                if i < len(log):
                    out = log[i][0] + self.spans[w.name]
                    leave = out if leave is None or out < leave else leave
            self.next_leave[kind] = leave

    # --- snapshots and reloads ----------------------------------------------------------
    def entries(self, cheap: bool = False) -> dict[str, Any]:
        """The windows' events as a snapshot holds them: ``logs``: each kind's log, a row
        ``[time (ISO 8601), keys, exit reason, quantities]`` per event (the namespaces and
        quantities some window of that kind reads; a row restored from format 10 with its
        window's name as a fifth element); ``held``: how many of its kind's last rows each
        rolling window holds; ``daily``: a daily window's ``[key, count]`` rows sorted by key
        (buckets come and go: their order must not show in a snapshot). ``cheap``: the log
        entries themselves (datetimes, shared dicts that are never changed), for orjson to
        serialise off the caller's lock into the same text."""
        logs: dict[str, list[Any]] = {}
        for kind, log in self.logs.items():
            logs[kind] = (
                list(log)
                if cheap
                else [[e[0].isoformat(), dict(e[1]), e[2], dict(e[3]), *e[4:]] for e in log]
            )
        held = {
            n: self.bases[w.count] + len(self.logs[w.count]) - self.starts[n]
            for n, w in sorted(self.specs.items())
            if not w.daily
        }
        return {"logs": logs, "held": held, "daily": {w.name: self._counts(w) for w in self.daily}}

    def _counts(self, w: WindowSpec) -> list[list[Any]]:
        """A daily window's ``[key, count]`` rows, sorted by key (a daily aggregate's ``[key,
        exact state...]``)."""
        if w.name in self.today:
            return [[k, *v] for k, v in sorted(self.today[w.name].items())]
        rows = sorted(self.table(w.per).items())
        return [[k, b.windows[w.name]] for k, b in rows if w.name in b.windows]

    def view(self) -> dict[str, list[list[Any]]]:
        """What each window holds, however the log keeps it (a checkpoint migrated from an
        older format keeps its rows per window; one written now shares them): a rolling
        window's ``[leave time, key, units]`` per event it counts, in order (units 0 for a
        count); a daily window's ``[key, count]`` rows. Two cores with equal views decide
        alike on every window from then on."""
        out: dict[str, list[list[Any]]] = {}
        for name, w in sorted(self.specs.items()):
            if w.daily:
                out[name] = self._counts(w)
                continue
            log, span = self.logs[w.count], self.spans[name]
            rows = []
            for i in range(self.starts[name] - self.bases[w.count], len(log)):
                key = self.key_of(w, log[i])
                if key is not None:
                    units = log[i][3][w.quantity] if w.quantity else 0
                    rows.append([(log[i][0] + span).isoformat(), key, units])
            out[name] = rows
        return out

    def load(self, data: Mapping[str, Any]) -> None:
        """Restore the logs and what each window shows (rebuilt from the log rows it holds,
        so the two cannot disagree)."""
        for name, rows in data.get("daily", {}).items():
            if name in self.today:
                for key, *state in rows:
                    held = self.today[name][str(key)] = tuple(int(u) for u in state)
                    self._show(self.specs[name], str(key), held[-1])
            elif name in self.specs:
                for key, n in rows:
                    self.bucket(self.specs[name].per, str(key)).windows[name] = int(n)
        for kind, rows in data.get("logs", {}).items():
            if kind not in self.logs:
                continue
            log = self.logs[kind]
            for row in rows:
                keys = {str(p): str(k) for p, k in row[1].items()}
                units = {str(q): int(u) for q, u in row[3].items()}
                log.append((datetime.fromisoformat(row[0]), keys, row[2], units, *row[4:]))
        locks, self.locks = self.locks, None  # the snapshot restores the locks' ends itself
        for name, held in data.get("held", {}).items():
            w = self.specs.get(name)
            if w is None or w.daily:
                continue
            log = self.logs[w.count]
            start = len(log) - int(held)
            self.starts[name] = start
            for i in range(start, len(log)):
                entry = log[i]
                key = self.key_of(w, entry)
                if key is not None:
                    self._enter(w, key, entry, i, entry[0])
        self.locks = locks
        self._rewind()

    def follow(self, specs: Iterable[WindowSpec]) -> Windows:
        """The windows of a reloaded policy: one declared alike keeps its events; one that
        is new or changed starts empty; one that is gone leaves no count behind."""
        new = Windows(specs, self.state)
        for kind, log in self.logs.items():
            if kind in new.logs:  # the log goes on; a new window holds none of it
                new.logs[kind], new.bases[kind] = log, self.bases[kind]
        for name in new.starts:
            kind = new.specs[name].count
            new.starts[name] = new.bases[kind] + len(new.logs[kind])
        for name, spec in self.specs.items():
            if new.specs.get(name) == spec:
                if not spec.daily:
                    new.starts[name] = self.starts[name]
                if name in self.sums:
                    new.sums[name] = self.sums[name]
                if name in self.extremes:
                    new.extremes[name] = self.extremes[name]
                if name in self.drawdowns:
                    new.drawdowns[name] = self.drawdowns[name]
                if name in self.today:
                    new.today[name] = self.today[name]
                continue
            for bucket in self.state.buckets():
                bucket.windows.pop(name, None)
        new._rewind()
        return new


__all__ = ["Keys", "Quantities", "Windows"]

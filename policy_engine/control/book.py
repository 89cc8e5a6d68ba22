"""The book of trades: every approved intent from reservation to close, and the event clock.

:class:`~.trade.Trade` is one approved intent: its reservation, its fills, its position.
:class:`Book` holds the live trades, their deadlines and the logical clock, with
one method per lifecycle step (reserve, fill, release, close, absorb a late fill,
move a trade to another cohort); each step moves exact integer micro-units
through the buckets of :mod:`.state` (portfolio, strategy, symbol, cohort) and
keeps them equal to the sum of the live trades counted in them. Nothing here
reads a clock, a file or a random number.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Iterator
from datetime import datetime, timedelta

from ..engine.contracts import RISK_SCALE
from .balances import lock_of
from .captured import Captured, Captures
from .state import Bucket, PortfolioState, move_all, move_notional
from .trade import Trade

_SCALE = float(RISK_SCALE)

# How many ended trades are remembered with their strategy, symbol and cohort, so that a
# late fill for one of them can still be absorbed as an orphan position (it is real exposure
# at the venue). A fill for a trade ended longer ago than that cannot be attributed. Sized so
# that this window (each with a UUID fill id) and the id window below, full of UUID ids (16
# bytes of entropy each), still carry across a Temporal continue-as-new in about 1 MB
# compressed (Temporal refuses payloads over 2 MB).
ENDED_MEMORY = 8_192
# An ended trade keeps its fill ids, so a fill re-sent after the trade ended is a `duplicate`
# (no exposure), while a NEW fill id is a late orphan (real exposure). It is remembered for at
# most ENDED_MEMORY trades AND at most ENDED_RETENTION of event time after it ended, whichever
# forgets first; past that a fill for it is `unknown`: reported and not absorbed (neither a
# phantom position nor exposure), so the ledger must reconcile anything that late by hand.
ENDED_RETENTION = timedelta(days=7)
# How many decided intent ids are remembered, so that a reused id is refused. A live trade's
# id and a remembered ended trade's id are always refused (a reused id could pick up a late
# fill of the trade it named); beyond that window a retry is implausible, and remembering
# every id for the journal's life would grow every checkpoint and every continue-as-new
# payload without bound (Temporal refuses payloads over 2 MB).
SEEN_MEMORY = 16_384
# How many dropped buckets the book keeps for reuse (see Book.spare).
SPARE_BUCKETS = 8


# why, strategy, symbol, cohort, correlation bucket, side, scopes, keys, fill ids (sorted),
# the event time it ended (None: restored from a snapshot that did not say), and its notional
# and risk units when it ended (an orphan's notional per unit of risk; 0, 0: none known)
Ended = tuple[
    str,
    str,
    str,
    str,
    str | None,
    str,
    dict[str, str] | None,
    dict[str, str] | None,
    tuple[str, ...],
    datetime | None,
    int,
    int,
]


class Book:
    """The trades of one portfolio, their deadlines, and the logical clock.

    All amounts are integer micro-units. Every method is one lifecycle step and
    keeps the buckets of :attr:`state` exact.
    """

    def __init__(self, state: PortfolioState) -> None:
        self.state = state
        self.clock: datetime | None = None  # the latest event timestamp seen (never moves back)
        self.trades: dict[str, Trade] = {}
        self.deadlines: list[tuple[datetime, int, str]] = []  # a heap of (deadline, seq, id)
        # recently ended id -> (why, strategy, symbol, cohort, correlation bucket)
        self.ended: OrderedDict[str, Ended] = OrderedDict()
        # the last SEEN_MEMORY intent ids decided: a set to look up, a queue to forget in order
        self.seen: set[str] = set()
        self.seen_order: deque[str] = deque()
        # the last mark of each symbol marked (a price), and the trades whose fills carried a
        # price, by symbol (what a mark revalues: O(priced positions in that symbol))
        self.marks: dict[str, float] = {}
        self.priced: dict[str, dict[str, Trade]] = {}
        state.positions = self.trades  # what `position.*` reads (one table, not a copy)
        # The captures still alive (a checkpoint being encoded): each keeps a trade's row
        # before the trade changes (see :mod:`.captured`). Empty but during a checkpoint.
        self.captures = Captures()
        # Buckets `tidy` dropped (each equal to a fresh one: every counter zero, no window
        # count), handed out again by `buckets` instead of building new ones: a trade that
        # ends as the last in its strategy, symbol and cohort would otherwise cost three
        # Bucket() for the next one. Never read: only object identity differs.
        self.spare: list[Bucket] = []

    def capture(self) -> Captured:
        """The live trades as they are now, for a reader that may run later or on another
        thread: a shallow copy of the trades, O(1) work per trade."""
        return self.captures.take(self.trades)

    # --- the lifecycle -------------------------------------------------------------------
    def buckets(self, trade: Trade) -> tuple[Bucket, ...]:
        """The portfolio, strategy, symbol and cohort buckets ``trade`` counts in, then the
        bucket of each scope it counts in."""
        s = self.state
        spare = self.spare
        strat = s.strategies.get(trade.strategy)
        if strat is None:
            strat = s.strategies[trade.strategy] = spare.pop() if spare else Bucket()
        sym = s.symbols.get(trade.symbol)
        if sym is None:
            sym = s.symbols[trade.symbol] = spare.pop() if spare else Bucket()
        coh = s.cohorts.get(trade.cohort)
        if coh is None:
            coh = s.cohorts[trade.cohort] = spare.pop() if spare else Bucket()
        if trade.scopes is None:
            return s, strat, sym, coh
        found = [s, strat, sym, coh]  # (a loop, not a generator unpacked: a hot path)
        for scope, value in trade.scopes.items():
            found.append(self.scope_bucket(scope, value))
        return tuple(found)

    def scope_bucket(self, scope: str, value: str) -> Bucket:
        table = self.state.scopes.setdefault(scope, {})
        bucket = table.get(value)
        if bucket is None:
            bucket = table[value] = Bucket()
        return bucket

    def advance(self, now: datetime) -> list[Trade]:
        """Move the clock to ``now`` if later; release and return every reservation due.

        A reservation with deadline ``D`` is due once the clock reads ``D`` or later.
        Due reservations come back in (deadline, reservation order). A fully filled
        trade has nothing left to expire and is skipped.
        """
        clock = self.clock
        if clock is None or now > clock:
            self.clock = clock = now
            self.forget_ended()
        heap = self.deadlines
        if not heap or heap[0][0] > clock:
            return []
        due: list[Trade] = []
        while heap and heap[0][0] <= clock:
            _deadline, seq, intent_id = heapq.heappop(heap)
            trade = self.trades.get(intent_id)
            if trade is None or trade.seq != seq or trade.released is not None:
                continue  # already closed, cancelled or replaced
            if trade.reserved_units == 0 and trade.is_open:
                continue  # fully filled: no reservation left to expire
            self.release(trade, "expired")
            due.append(trade)
        return due

    def next_deadline(self) -> datetime | None:
        """The earliest deadline at which :meth:`advance` would release something, if any.

        Stale heap entries (closed, cancelled or fully filled trades) are dropped on the
        way; :meth:`advance` would skip them too, so nothing it does changes.
        """
        heap = self.deadlines
        while heap:
            _deadline, seq, intent_id = heap[0]
            trade = self.trades.get(intent_id)
            if (
                trade is None
                or trade.seq != seq
                or trade.released is not None
                or (trade.reserved_units == 0 and trade.is_open)
            ):
                heapq.heappop(heap)
                continue
            return heap[0][0]
        return None

    def decided(self, intent_id: str) -> None:
        """Remember that ``intent_id`` was decided (forgetting the oldest beyond the window)."""
        self.seen.add(intent_id)
        order = self.seen_order
        order.append(intent_id)
        if len(order) > SEEN_MEMORY:
            self.seen.discard(order.popleft())

    def get(self, intent_id: str) -> Trade | None:
        return self.trades.get(intent_id)

    def ended_reason(self, intent_id: str) -> str | None:
        """Why a recently ended trade ended (expired / cancelled / closed), if remembered."""
        ended = self.ended.get(intent_id)
        return None if ended is None else ended[0]

    def tidy(self, trade: Trade) -> None:
        """Drop each bucket ``trade`` counts in that is now equal to a fresh one (see
        :meth:`~.state.Bucket.is_fresh`): a bucket lives while a trade, the day's P&L or a
        window count needs it, so the tables stay bounded by the live state, not by every
        name ever seen. Reading a dropped bucket reads a fresh one: nothing changes."""
        s = self.state
        # (drop_if_fresh written out for the three tables every trade counts in: a hot path)
        for table, name in (
            (s.strategies, trade.strategy),
            (s.symbols, trade.symbol),
            (s.cohorts, trade.cohort),
        ):
            bucket = table.get(name)
            if bucket is not None and bucket.is_fresh():
                del table[name]
                if len(self.spare) < SPARE_BUCKETS:
                    self.spare.append(bucket)
        if trade.scopes:
            for scope, value in trade.scopes.items():
                scoped = s.scopes.get(scope)
                if scoped is not None:
                    s.drop_if_fresh(scoped, value)
        s.sweep_if_grown()

    def ended_fill(self, intent_id: str, fill_id: str) -> bool:
        """Whether ``fill_id`` is a fill a remembered ended trade ``intent_id`` already took."""
        ended = self.ended.get(intent_id)
        return ended is not None and fill_id in ended[8]

    def _end(self, trade: Trade, reason: str, notional: int = 0, units: int = 0) -> None:
        del self.trades[trade.intent_id]
        priced = self.priced.get(trade.symbol)
        if priced is not None and trade.intent_id in priced:
            del priced[trade.intent_id]
            if not priced:
                del self.priced[trade.symbol]
        self.tidy(trade)
        ended = self.ended
        ended[trade.intent_id] = (
            reason,
            trade.strategy,
            trade.symbol,
            trade.cohort,
            trade.bucket,
            trade.side,
            trade.scopes,
            trade.keys,
            () if trade.fills is None else tuple(sorted(trade.fills)),
            self.clock,
            notional,
            units,
        )
        ended.move_to_end(trade.intent_id)
        # Only the count bound can newly be exceeded: what the clock's last move put past
        # ENDED_RETENTION was forgotten then (`advance`), and this entry ends at the clock.
        while len(ended) > ENDED_MEMORY:
            ended.popitem(last=False)

    def forget_ended(self) -> None:
        """Forget the oldest ended trades beyond ENDED_MEMORY or ended more than
        ENDED_RETENTION of event time ago (they end in event-time order: the oldest first)."""
        ended = self.ended
        while len(ended) > ENDED_MEMORY:
            ended.popitem(last=False)
        clock = self.clock
        if clock is None:
            return
        horizon = clock - ENDED_RETENTION
        while ended:
            at = next(iter(ended.values()))[9]
            if at is None or at >= horizon:
                break
            ended.popitem(last=False)

    def absorb(
        self, intent_id: str, fill_id: str, units: int, seq: int, created: datetime
    ) -> tuple[Trade, int | None]:
        """A late fill for an ended trade: real exposure at the venue, so an orphan position
        (active risk, one live trade, one open position) that counts against every cap
        until it is closed. The caller has checked the trade is remembered in ``ended``.
        Returns the orphan and the notional it filled (None: the ended trade had none)."""
        ended = self.ended.pop(intent_id)
        why, strategy, symbol, cohort, bucket, side, scopes, keys, fills, _at = ended[:10]
        notional, per = ended[10:]
        trade = Trade(intent_id, strategy, symbol, cohort, 0, seq, created, None, bucket, side)
        trade.scopes, trade.keys = scopes, keys
        trade.late = why
        trade.released = why  # no reservation: nothing left to cancel or expire
        trade.filled_units = units
        trade.fills = {*fills, fill_id}  # the ended trade's fills stay duplicates
        long = trade.long
        move_all(self.buckets(trade), units, 0, 1, 1, long)
        moved = None
        if notional and per:  # at the ended trade's notional per unit of risk
            trade.filled_notional = moved = notional * units // per
            move_notional(self.buckets(trade), moved, 0, long)
        self.trades[intent_id] = trade
        self.state.version += 1
        return trade, moved

    def lock(self, trade: Trade, before: int) -> None:
        """``trade``'s balance lock is now its remainder's share of its notional; it was
        ``before`` (see :func:`~.balances.lock_of`)."""
        if trade.currency is not None:
            now = lock_of(trade.notional_units, trade.reserved_units, trade.approved_units)
            self.state.balances.lock(trade.currency, now - before)

    def locked(self, trade: Trade) -> int:
        """What ``trade``'s reservation locks of its currency now."""
        return lock_of(trade.notional_units, trade.reserved_units, trade.approved_units)

    def reserve(self, trade: Trade) -> None:
        """Hold ``trade.approved_units`` as reserved risk (and its reserved notional) and
        count one live trade."""
        u = trade.approved_units
        long = trade.long
        buckets = self.buckets(trade)
        move_all(buckets, 0, u, 0, 1, long)
        if trade.reserved_notional:
            move_notional(buckets, 0, trade.reserved_notional, long)
        if trade.currency is not None:
            self.lock(trade, 0)
        self.trades[trade.intent_id] = trade
        if trade.expires is not None:
            heapq.heappush(self.deadlines, (trade.expires, trade.seq, trade.intent_id))
        self.state.version += 1

    def unreserve(self, trade: Trade) -> None:
        """Undo :meth:`reserve` of ``trade`` exactly (a group that is not approved whole
        reserves nothing): its reservation and slot leave every bucket, and it is no trade
        (its deadline, if any, is left to be skipped as stale)."""
        if trade.currency is not None:
            self.state.balances.lock(trade.currency, -self.locked(trade))
        buckets = self.buckets(trade)
        move_all(buckets, 0, -trade.approved_units, 0, -1, trade.long)
        if trade.reserved_notional:
            move_notional(buckets, 0, -trade.reserved_notional, trade.long)
        del self.trades[trade.intent_id]
        self.tidy(trade)
        self.state.version += 1

    def fill(self, trade: Trade, fill_id: str, units: int) -> tuple[int, int, int | None]:
        """Commit a fill: move ``units`` from reserved to active (reserved never below zero),
        and the notional with it, pro rata (an overfill at the trade's own notional per unit
        of risk). Returns ``(released_from_reservation, overfill, notional)``, ``notional``
        what moved to filled (None: the trade holds no notional); the caller has checked
        that the fill id is new (and applies the fill's price: control.marks).
        """
        if self.captures.views:  # a capture holds it: keep its row first
            self.captures.keep(trade)
        before = self.locked(trade) if trade.currency is not None else 0
        from_reserved = min(units, trade.reserved_units)
        overfill = units - from_reserved
        opens = not trade.is_open
        moved = None
        if trade.reserved_notional or trade.filled_notional:
            rn, held = trade.reserved_notional, trade.reserved_units
            taken = rn if from_reserved == held else rn * from_reserved // held
            total, per = rn + trade.filled_notional, held + trade.filled_units
            moved = taken + (total * overfill // per if overfill and per else 0)
            trade.reserved_notional -= taken
            trade.filled_notional += moved
            move_notional(self.buckets(trade), moved, -taken, trade.long)
        trade.reserved_units -= from_reserved
        trade.filled_units += units
        if trade.fills is None:
            trade.fills = set()
        trade.fills.add(fill_id)
        long = trade.long
        move_all(self.buckets(trade), units, -from_reserved, 1 if opens else 0, 0, long)
        if trade.currency is not None:
            self.lock(trade, before)
        self.state.version += 1
        return from_reserved, overfill, moved

    def release(self, trade: Trade, reason: str) -> int:
        """Release the unfilled remainder (cancel or expiry); returns the units released.

        A trade with no fill ends here (its trade slot is freed); a partly filled
        one stays open as a position until closed.
        """
        if self.captures.views:  # a capture holds it: keep its row first
            self.captures.keep(trade)
        units = trade.reserved_units
        notional = trade.reserved_notional
        if trade.currency is not None:
            self.state.balances.lock(trade.currency, -self.locked(trade))
        trade.reserved_units = 0
        trade.released = reason
        ends = not trade.is_open
        long = trade.long
        move_all(self.buckets(trade), 0, -units, 0, -1 if ends else 0, long)
        if notional:
            move_notional(self.buckets(trade), 0, -notional, long)
            trade.reserved_notional = 0
        if ends:
            self._end(trade, reason, notional, units)
        self.state.version += 1
        return units

    def close(self, trade: Trade) -> tuple[int, int, int | None]:
        """End a trade: release its active and reserved risk and its trade slot.

        Returns ``(active_released, reserved_released, filled_notional_released)`` (the
        last None: the trade held no notional).
        """
        if self.captures.views:  # a capture holds it: keep its row first
            self.captures.keep(trade)
        active, reserved = trade.filled_units, trade.reserved_units
        if trade.currency is not None:
            self.state.balances.lock(trade.currency, -self.locked(trade))
        was_open = trade.is_open
        long = trade.long
        buckets = self.buckets(trade)
        move_all(buckets, -active, -reserved, -1 if was_open else 0, -1, long)
        self.unmark(trade, buckets)
        notional = trade.reserved_notional + trade.filled_notional
        taken = None
        if notional:
            taken = trade.filled_notional
            move_notional(buckets, -taken, -trade.reserved_notional, long)
            trade.reserved_notional = trade.filled_notional = 0
        trade.reserved_units = 0
        self._end(trade, "closed", notional, active + reserved)
        self.state.version += 1
        return active, reserved, taken

    def reduce(self, trade: Trade, units: int) -> int | None:
        """A partial close: take ``units`` (less than the position) off the trade's active
        risk; the trade stays open with the rest, its slot and any reservation kept.
        Returns the filled notional taken off with them (None: the trade holds none)."""
        held = trade.filled_units
        off = None if not (trade.filled_notional or trade.reserved_notional) else 0
        if self.captures.views:  # a capture holds it: keep its row first
            self.captures.keep(trade)
        trade.filled_units -= units
        long = trade.long
        buckets = self.buckets(trade)
        move_all(buckets, -units, 0, 0, 0, long)
        if trade.filled_notional:  # the notional and quantity shrink with it, pro rata
            off = trade.filled_notional * units // held
            self.unmark(trade, buckets)
            trade.filled_notional -= off
            move_notional(buckets, -off, 0, long)
            if trade.quantity is not None:
                trade.quantity = trade.quantity * (held - units) / held
                self.revalue(trade)
        self.state.version += 1
        return off

    # --- marks -----------------------------------------------------------------------------
    def priced_fill(self, trade: Trade, notional: int, price: float) -> None:
        """A fill of ``notional`` micro-units at ``price``: the position's quantity grows by
        notional / price, and its unrealized P&L is put at the symbol's last mark."""
        if notional > 0 and trade.intent_id in self.trades:
            if self.captures.views:  # a capture holds it: keep its row first
                self.captures.keep(trade)
            trade.quantity = (trade.quantity or 0.0) + notional / _SCALE / price
            self.priced.setdefault(trade.symbol, {})[trade.intent_id] = trade
            self.revalue(trade)

    def revalue(self, trade: Trade) -> None:
        """Put ``trade``'s unrealized P&L at its symbol's last mark (before any mark: 0, the
        position at its own entry), moving the difference through its buckets."""
        price = self.marks.get(trade.symbol)
        new = 0 if price is None else trade.pnl_at(price)
        delta = new - trade.unrealized
        if delta:
            if self.captures.views:  # a capture holds it: keep its row first
                self.captures.keep(trade)
            trade.unrealized = new
            for b in self.buckets(trade):
                b.mark(delta)

    def unmark(self, trade: Trade, buckets: tuple[Bucket, ...]) -> None:
        """Take ``trade``'s unrealized P&L out of its buckets (a close or partial close;
        control.marks puts a remaining position's back at the symbol's mark)."""
        if trade.unrealized:
            if self.captures.views:  # a capture holds it: keep its row first
                self.captures.keep(trade)
            for b in buckets:
                b.mark(-trade.unrealized)
            trade.unrealized = 0

    def realize(self, trade: Trade, pnl_units: int) -> None:
        """A close of ``trade`` realized ``pnl_units``: every bucket it counts in takes it."""
        for b in self.buckets(trade):
            b.realize(pnl_units)
        if trade.intent_id not in self.trades:  # closed: a break-even may leave them fresh
            self.tidy(trade)
        self.state.version += 1

    def live(self) -> Iterator[Trade]:
        """Live trades in reservation order."""
        return iter(sorted(self.trades.values(), key=lambda t: t.seq))


__all__ = ["ENDED_MEMORY", "ENDED_RETENTION", "SEEN_MEMORY", "Book", "Ended", "Trade"]

"""The book of trades: every approved intent from reservation to close, and the event clock.

:class:`Trade` is one approved intent: its reservation, its fills, its position.
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
from typing import Any

from ..engine.contracts import RISK_SCALE
from .state import Bucket, PortfolioState, move_all

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
# and the event time it ended (None: restored from a snapshot that did not say)
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
]


class Trade:
    """One approved intent from reservation to close: its reservation and its position."""

    __slots__ = (
        "approved_units",
        "bucket",
        "cohort",
        "created",
        "expires",
        "filled_units",
        "fills",
        "intent_id",
        "keys",
        "late",
        "released",
        "reserved_units",
        "scopes",
        "seq",
        "side",
        "strategy",
        "symbol",
    )

    def __init__(
        self,
        intent_id: str,
        strategy: str,
        symbol: str,
        cohort: str,
        units: int,
        seq: int,
        created: datetime,
        expires: datetime | None,
        bucket: str | None = None,
        side: str = "long",
    ) -> None:
        self.intent_id = intent_id
        self.strategy = strategy
        self.symbol = symbol
        self.cohort = cohort
        self.approved_units = units
        self.reserved_units = units  # the unfilled remainder still held
        self.filled_units = 0
        self.seq = seq
        self.created = created
        self.expires = expires
        self.fills: set[str] | None = None
        self.released: str | None = None  # "cancelled" / "expired": remainder released
        self.bucket = bucket  # the intent's correlation_bucket: the cohort is re-derived on reload
        self.late: str | None = None  # an orphan: filled after it "cancelled"/"expired"/"closed"
        self.side = side  # "long" or "short": a risk-reducing intent takes no trade
        # The scopes it counts in (scope name -> key value), and the intent's other string
        # fields a scope may be keyed by (so that a reload can re-derive them).
        self.scopes: dict[str, str] | None = None
        self.keys: dict[str, str] | None = None

    def field(self, name: str) -> str | None:
        """The value of the intent's string field ``name`` this trade was reserved with."""
        if name == "strategy":
            return self.strategy
        if name == "symbol":
            return self.symbol
        if name == "correlation_bucket":
            return self.bucket
        if name == "side":
            return self.side
        return None if self.keys is None else self.keys.get(name)

    @property
    def long(self) -> bool:
        return self.side == "long"

    @property
    def is_open(self) -> bool:
        """Has at least one fill: it is a position, not only a reservation."""
        return self.filled_units > 0 or bool(self.fills)

    def as_dict(self) -> dict[str, Any]:
        return {
            "intent_id": self.intent_id,
            "strategy": self.strategy,
            "symbol": self.symbol,
            "cohort": self.cohort,
            "side": self.side,
            "approved_risk_abs": self.approved_units / _SCALE,
            "filled_risk_abs": self.filled_units / _SCALE,
            "reserved_risk_abs": self.reserved_units / _SCALE,
            "fills": len(self.fills or ()),
            "status": f"open/orphan after {self.late}"
            if self.late
            else ("open" if self.is_open else "reserved")
            + (f"/{self.released}" if self.released else ""),
            "created": self.created.isoformat(),
            "expires": None if self.expires is None or self.released else self.expires.isoformat(),
            "seq": self.seq,
        }


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
        # Buckets `tidy` dropped (each equal to a fresh one: every counter zero, no window
        # count), handed out again by `buckets` instead of building new ones: a trade that
        # ends as the last in its strategy, symbol and cohort would otherwise cost three
        # Bucket() for the next one. Never read: only object identity differs.
        self.spare: list[Bucket] = []

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

    def _end(self, trade: Trade, reason: str) -> None:
        del self.trades[trade.intent_id]
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
    ) -> Trade:
        """A late fill for an ended trade: real exposure at the venue, so an orphan position
        (active risk, one live trade, one open position) that counts against every cap
        until it is closed. The caller has checked the trade is remembered in ``ended``."""
        why, strategy, symbol, cohort, bucket, side, scopes, keys, fills, _at = self.ended.pop(
            intent_id
        )
        trade = Trade(intent_id, strategy, symbol, cohort, 0, seq, created, None, bucket, side)
        trade.scopes, trade.keys = scopes, keys
        trade.late = why
        trade.released = why  # no reservation: nothing left to cancel or expire
        trade.filled_units = units
        trade.fills = {*fills, fill_id}  # the ended trade's fills stay duplicates
        long = trade.long
        move_all(self.buckets(trade), units, 0, 1, 1, long)
        self.trades[intent_id] = trade
        self.state.version += 1
        return trade

    def reserve(self, trade: Trade) -> None:
        """Hold ``trade.approved_units`` as reserved risk and count one live trade."""
        move_all(self.buckets(trade), 0, trade.approved_units, 0, 1, trade.side == "long")
        self.trades[trade.intent_id] = trade
        if trade.expires is not None:
            heapq.heappush(self.deadlines, (trade.expires, trade.seq, trade.intent_id))
        self.state.version += 1

    def fill(self, trade: Trade, fill_id: str, units: int) -> tuple[int, int]:
        """Commit a fill: move ``units`` from reserved to active (reserved never below zero).

        Returns ``(released_from_reservation, overfill)``; the caller has checked
        that the fill id is new.
        """
        from_reserved = min(units, trade.reserved_units)
        overfill = units - from_reserved
        opens = not trade.is_open
        trade.reserved_units -= from_reserved
        trade.filled_units += units
        if trade.fills is None:
            trade.fills = set()
        trade.fills.add(fill_id)
        long = trade.long
        move_all(self.buckets(trade), units, -from_reserved, 1 if opens else 0, 0, long)
        self.state.version += 1
        return from_reserved, overfill

    def release(self, trade: Trade, reason: str) -> int:
        """Release the unfilled remainder (cancel or expiry); returns the units released.

        A trade with no fill ends here (its trade slot is freed); a partly filled
        one stays open as a position until closed.
        """
        units = trade.reserved_units
        trade.reserved_units = 0
        trade.released = reason
        ends = not (trade.filled_units > 0 or trade.fills)  # not trade.is_open
        move_all(self.buckets(trade), 0, -units, 0, -1 if ends else 0, trade.side == "long")
        if ends:
            self._end(trade, reason)
        self.state.version += 1
        return units

    def close(self, trade: Trade) -> tuple[int, int]:
        """End a trade: release its active and reserved risk and its trade slot.

        Returns ``(active_released, reserved_released)``.
        """
        active, reserved = trade.filled_units, trade.reserved_units
        was_open = trade.is_open
        long = trade.long
        move_all(self.buckets(trade), -active, -reserved, -1 if was_open else 0, -1, long)
        trade.reserved_units = 0
        self._end(trade, "closed")
        self.state.version += 1
        return active, reserved

    def reduce(self, trade: Trade, units: int) -> None:
        """A partial close: take ``units`` (less than the position) off the trade's active
        risk; the trade stays open with the rest, its slot and any reservation kept."""
        trade.filled_units -= units
        long = trade.long
        move_all(self.buckets(trade), -units, 0, 0, 0, long)
        self.state.version += 1

    def realize(self, trade: Trade, pnl_units: int) -> None:
        """A close of ``trade`` realized ``pnl_units``: every bucket it counts in takes it."""
        for b in self.buckets(trade):
            b.realize(pnl_units)
        if trade.intent_id not in self.trades:  # closed: a break-even may leave them fresh
            self.tidy(trade)
        self.state.version += 1

    def move_cohort(self, trade: Trade, cohort: str) -> None:
        """Count ``trade`` in ``cohort`` from now on: its exposure, reservation, slot and
        position leave its old cohort's bucket and join the new one's, exactly."""
        cohorts = self.state.cohorts
        before = trade.cohort
        old = cohorts[before]
        trade.cohort = cohort
        new = cohorts.get(cohort)
        if new is None:
            new = cohorts[cohort] = Bucket()
        self._shift(trade, [old], [new])
        self.state.drop_if_fresh(cohorts, before)

    def move_scopes(self, trade: Trade, scopes: dict[str, str] | None) -> None:
        """Count ``trade`` in these scopes from now on (a reload changed them), exactly."""
        before = trade.scopes or {}
        old = [self.scope_bucket(k, v) for k, v in before.items()]
        trade.scopes = scopes
        self._shift(trade, old, [self.scope_bucket(k, v) for k, v in (scopes or {}).items()])
        for scope, value in before.items():
            self.state.drop_if_fresh(self.state.scopes[scope], value)

    def _shift(self, trade: Trade, out: list[Bucket], into: list[Bucket]) -> None:
        opens = 1 if trade.is_open else 0
        for buckets, sign in ((out, -1), (into, 1)):
            for bucket in buckets:
                bucket.move(
                    sign * trade.filled_units,
                    sign * trade.reserved_units,
                    sign * opens,
                    sign,
                    trade.long,
                )
        self.state.version += 1

    def live(self) -> Iterator[Trade]:
        """Live trades in reservation order."""
        return iter(sorted(self.trades.values(), key=lambda t: t.seq))


__all__ = ["ENDED_MEMORY", "ENDED_RETENTION", "SEEN_MEMORY", "Book", "Ended", "Trade"]

"""The live portfolio state: exact integer aggregates, the book of trades, the logical clock.

Every risk aggregate is an exact integer of micro-units (``RISK_SCALE`` per
unit of account currency): per portfolio, per strategy, per symbol and per
cohort, the active (filled) and reserved (approved, not yet filled) risk, the
number of open positions and the number of live trades. Integers cannot
drift: after any sequence of reserve / fill / cancel / expire / close that
returns to flat, every counter is exactly zero.

The compiled rule chain reads the state by duck typing, so every bucket also
carries float *mirrors* (``active_risk``, ``reserved_risk``, ``heat``) as plain
attributes. They are recomputed from the integers on every mutation (a float
is never accumulated), so reading them is as cheap as reading a slot and they
are always the exact float nearest to the integer they mirror.

:class:`Book` holds the trades, their deadlines and the logical clock, with one
method per lifecycle step (reserve, fill, release, close). Nothing here reads
a clock, a file or a random number; :mod:`.snapshot` turns it into plain data
and back, exactly.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ..engine.contracts import RISK_SCALE

_SCALE = float(RISK_SCALE)

# How many ended trades are remembered with their strategy, symbol and cohort, so that a
# late fill for one of them can still be absorbed as an orphan position (it is real exposure
# at the venue). A fill for a trade ended longer ago than that cannot be attributed. Sized so
# that both windows full of UUID ids (16 bytes of entropy each) still carry across a Temporal
# continue-as-new in under 1 MB compressed (Temporal refuses payloads over 2 MB).
ENDED_MEMORY = 16_384
# How many decided intent ids are remembered, so that a reused id is refused. A live trade's
# id and a remembered ended trade's id are always refused (a reused id could pick up a late
# fill of the trade it named); beyond that window a retry is implausible, and remembering
# every id for the journal's life would grow every checkpoint and every continue-as-new
# payload without bound (Temporal refuses payloads over 2 MB).
SEEN_MEMORY = 16_384


class Bucket:
    """Live counters of one strategy, symbol or cohort (or of the whole portfolio).

    ``active_units`` / ``reserved_units`` are the exact integers; ``active_risk``,
    ``reserved_risk`` and ``heat`` are their float mirrors for the evaluator.
    """

    __slots__ = (
        "active_risk",
        "active_trades",
        "active_units",
        "heat",
        "open_positions",
        "reserved_risk",
        "reserved_units",
    )

    def __init__(self) -> None:
        self.active_units = 0
        self.reserved_units = 0
        self.open_positions = 0
        self.active_trades = 0
        self.active_risk = 0.0
        self.reserved_risk = 0.0
        self.heat = 0.0

    def sync(self) -> None:
        """Recompute the float mirrors from the integers."""
        a, r = self.active_units, self.reserved_units
        self.active_risk = a / _SCALE
        self.reserved_risk = r / _SCALE
        self.heat = (a + r) / _SCALE

    def counters(self) -> tuple[int, int, int, int]:
        """(active units, reserved units, open positions, active trades)."""
        return self.active_units, self.reserved_units, self.open_positions, self.active_trades

    def set_counters(self, counters: tuple[int, int, int, int] | list[int]) -> None:
        self.active_units, self.reserved_units, self.open_positions, self.active_trades = (
            int(c) for c in counters
        )
        self.sync()

    def totals(self) -> dict[str, Any]:
        """JSON-ready counters (floats from the exact integers)."""
        return {
            "active_risk": self.active_units / _SCALE,
            "reserved_risk": self.reserved_units / _SCALE,
            "heat": (self.active_units + self.reserved_units) / _SCALE,
            "open_positions": self.open_positions,
            "active_trades": self.active_trades,
        }

    def is_zero(self) -> bool:
        return not (
            self.active_units or self.reserved_units or self.open_positions or self.active_trades
        )


class PortfolioState(Bucket):
    """The whole portfolio: the snapshot the compiled chain reads (same attributes as
    :class:`~policy_engine.engine.contracts.PortfolioSnapshot`, as plain attributes)."""

    __slots__ = (
        "cohorts",
        "drawdown",
        "equity",
        "mode_override",
        "mode_override_reason",
        "peak_equity",
        "strategies",
        "symbols",
        "version",
    )

    def __init__(self, equity: float = 0.0, peak_equity: float | None = None) -> None:
        super().__init__()
        self.equity = 0.0
        self.peak_equity = 0.0
        self.drawdown = 0.0
        self.mode_override: str | None = None
        self.mode_override_reason: str | None = None
        self.strategies: dict[str, Bucket] = {}
        self.symbols: dict[str, Bucket] = {}
        self.cohorts: dict[str, Bucket] = {}
        self.version = 0  # bumped on every mutation (a cache key for derived values)
        self.set_equity(equity, peak_equity)

    def set_equity(self, equity: float, peak_equity: float | None = None) -> None:
        peak = max(self.peak_equity, equity) if peak_equity is None else max(peak_equity, equity)
        self.equity = float(equity)
        self.peak_equity = float(peak)
        self.drawdown = (peak - equity) / peak if peak > 0 else 0.0
        self.version += 1

    def set_override(self, mode: str | None, reason: str | None) -> None:
        self.mode_override = mode
        self.mode_override_reason = reason if mode is not None else None
        self.version += 1


Ended = tuple[str, str, str, str, str | None]  # why, strategy, symbol, cohort, bucket


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
        "late",
        "released",
        "reserved_units",
        "seq",
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

    # --- the lifecycle -------------------------------------------------------------------
    def buckets(self, trade: Trade) -> tuple[Bucket, Bucket, Bucket, Bucket]:
        """The portfolio, strategy, symbol and cohort buckets ``trade`` counts in."""
        s = self.state
        strat = s.strategies.get(trade.strategy)
        if strat is None:
            strat = s.strategies[trade.strategy] = Bucket()
        sym = s.symbols.get(trade.symbol)
        if sym is None:
            sym = s.symbols[trade.symbol] = Bucket()
        coh = s.cohorts.get(trade.cohort)
        if coh is None:
            coh = s.cohorts[trade.cohort] = Bucket()
        return s, strat, sym, coh

    def advance(self, now: datetime) -> list[Trade]:
        """Move the clock to ``now`` if later; release and return every reservation due.

        A reservation with deadline ``D`` is due once the clock reads ``D`` or later.
        Due reservations come back in (deadline, reservation order). A fully filled
        trade has nothing left to expire and is skipped.
        """
        clock = self.clock
        if clock is None or now > clock:
            self.clock = clock = now
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

    def get(self, intent_id: str) -> Trade | None:
        return self.trades.get(intent_id)

    def decided(self, intent_id: str) -> None:
        """Remember that ``intent_id`` was decided (forgetting the oldest beyond the window)."""
        self.seen.add(intent_id)
        order = self.seen_order
        order.append(intent_id)
        if len(order) > SEEN_MEMORY:
            self.seen.discard(order.popleft())

    def ended_reason(self, intent_id: str) -> str | None:
        """Why a recently ended trade ended (expired / cancelled / closed), if remembered."""
        ended = self.ended.get(intent_id)
        return None if ended is None else ended[0]

    def _end(self, trade: Trade, reason: str) -> None:
        del self.trades[trade.intent_id]
        ended = self.ended
        ended[trade.intent_id] = (reason, trade.strategy, trade.symbol, trade.cohort, trade.bucket)
        ended.move_to_end(trade.intent_id)
        if len(ended) > ENDED_MEMORY:
            ended.popitem(last=False)

    def absorb(
        self, intent_id: str, fill_id: str, units: int, seq: int, created: datetime
    ) -> Trade:
        """A late fill for an ended trade: real exposure at the venue, so an orphan position
        (active risk, one live trade, one open position) that counts against every cap
        until it is closed. The caller has checked the trade is remembered in ``ended``."""
        why, strategy, symbol, cohort, bucket = self.ended.pop(intent_id)
        trade = Trade(intent_id, strategy, symbol, cohort, 0, seq, created, None, bucket)
        trade.late = why
        trade.released = why  # no reservation: nothing left to cancel or expire
        trade.filled_units = units
        trade.fills = {fill_id}
        for b in self.buckets(trade):
            b.active_units += units
            b.active_trades += 1
            b.open_positions += 1
            b.sync()
        self.trades[intent_id] = trade
        self.state.version += 1
        return trade

    def reserve(self, trade: Trade) -> None:
        """Hold ``trade.approved_units`` as reserved risk and count one live trade."""
        u = trade.approved_units
        for b in self.buckets(trade):
            b.reserved_units += u
            b.active_trades += 1
            r = b.reserved_units
            b.reserved_risk = r / _SCALE
            b.heat = (b.active_units + r) / _SCALE
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
        for b in self.buckets(trade):
            b.reserved_units -= from_reserved
            b.active_units += units
            if opens:
                b.open_positions += 1
            b.sync()
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
        ends = not trade.is_open
        for b in self.buckets(trade):
            b.reserved_units -= units
            if ends:
                b.active_trades -= 1
            b.sync()
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
        for b in self.buckets(trade):
            b.active_units -= active
            b.reserved_units -= reserved
            b.active_trades -= 1
            if was_open:
                b.open_positions -= 1
            b.sync()
        trade.reserved_units = 0
        self._end(trade, "closed")
        self.state.version += 1
        return active, reserved

    def move_cohort(self, trade: Trade, cohort: str) -> None:
        """Count ``trade`` in ``cohort`` from now on: its exposure, reservation, slot and
        position leave its old cohort's bucket and join the new one's, exactly."""
        old = self.state.cohorts[trade.cohort]
        trade.cohort = cohort
        new = self.state.cohorts.get(cohort)
        if new is None:
            new = self.state.cohorts[cohort] = Bucket()
        opens = 1 if trade.is_open else 0
        for bucket, sign in ((old, -1), (new, 1)):
            bucket.active_units += sign * trade.filled_units
            bucket.reserved_units += sign * trade.reserved_units
            bucket.open_positions += sign * opens
            bucket.active_trades += sign
            bucket.sync()
        self.state.version += 1

    def live(self) -> Iterator[Trade]:
        """Live trades in reservation order."""
        return iter(sorted(self.trades.values(), key=lambda t: t.seq))


__all__ = ["ENDED_MEMORY", "SEEN_MEMORY", "Book", "Bucket", "Ended", "PortfolioState", "Trade"]

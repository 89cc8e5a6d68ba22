"""The live portfolio state behind a narrow store interface.

Every risk aggregate is an exact integer of micro-units (``contracts.RISK_SCALE``
per unit of account currency): per portfolio, per strategy, per symbol and per
cohort, the active (filled) and reserved (approved, not yet filled) risk, the
number of open positions and the number of live trades. Integers cannot drift:
after any sequence of reserve / fill / cancel / expire / close that returns to
flat, every counter is exactly zero.

The compiled rule chain reads the state by duck typing, so every bucket also
carries float *mirrors* (``active_risk``, ``reserved_risk``, ``heat``) as plain
attributes. They are recomputed from the integers on every mutation (a float is
never accumulated), so reading them is as cheap as reading a slot and they are
always the exact float nearest to the integer they mirror.

:class:`PortfolioStore` is the interface the controller talks to. It is kept
narrow on purpose: one call per lifecycle step (reserve, fill, release, close),
a logical clock with deterministic expiry, equity and override setters, and a
``lock()``. :class:`MemoryStore` implements it for one process.

A store shared by several processes (for example on Redis) implements the same
protocol: ``state`` becomes a read-through view loaded at the start of each
transaction (one ``HGETALL`` of the portfolio hash plus the three buckets the
intent touches), ``lock()`` becomes a lease lock (``SET key token NX PX ttl``)
or an optimistic ``WATCH``/``MULTI`` transaction on a version counter that is
retried when another process moved the state, and each mutation becomes one
``MULTI`` block (or one Lua script) applying the same integer ``HINCRBY``
deltas, so the exactness argument carries over unchanged. The reservation
deadlines live in a sorted set keyed by deadline (``ZRANGEBYSCORE`` gives
:meth:`PortfolioStore.advance` its due reservations in the same deterministic
order as the in-memory heap). Nothing in the controller depends on the state
being in this process.
"""

from __future__ import annotations

import heapq
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from .engine.contracts import RISK_SCALE

_SCALE = float(RISK_SCALE)

# How many ended trades are remembered, so that a late fill for one of them is
# reported as "expired" / "cancelled" / "closed" rather than "unknown".
ENDED_MEMORY = 65_536


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

    def _sync(self) -> None:
        a, r = self.active_units, self.reserved_units
        self.active_risk = a / _SCALE
        self.reserved_risk = r / _SCALE
        self.heat = (a + r) / _SCALE

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
    :class:`~policy_engine.contracts.PortfolioSnapshot`, as plain attributes)."""

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
        self.version = 0  # bumped on every mutation (cache key for derived values)
        self.set_equity(equity, peak_equity)

    def set_equity(self, equity: float, peak_equity: float | None = None) -> None:
        peak = max(self.peak_equity, equity) if peak_equity is None else max(peak_equity, equity)
        self.equity = float(equity)
        self.peak_equity = float(peak)
        self.drawdown = (peak - equity) / peak if peak > 0 else 0.0
        self.version += 1


class Trade:
    """One approved intent from reservation to close: its reservation and its position."""

    __slots__ = (
        "approved_units",
        "cohort",
        "created",
        "expires",
        "filled_units",
        "fills",
        "intent_id",
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
            "status": ("open" if self.is_open else "reserved")
            + (f"/{self.released}" if self.released else ""),
            "created": self.created.isoformat(),
            "expires": None if self.expires is None or self.released else self.expires.isoformat(),
            "seq": self.seq,
        }


class PortfolioStore(Protocol):
    """What the controller needs from wherever the live state lives.

    All amounts are integer micro-units. Callers hold ``lock()`` around a
    read-evaluate-mutate sequence; the methods themselves do not lock.
    """

    @property
    def state(self) -> PortfolioState:
        """The read view the evaluator sees (duck-typed snapshot)."""
        ...

    @property
    def clock(self) -> datetime | None:
        """The logical clock: the latest event timestamp seen (never moves back)."""
        ...

    def lock(self) -> AbstractContextManager[Any]: ...

    def advance(self, now: datetime) -> list[Trade]:
        """Move the clock to ``now`` if later; release and return every reservation due.

        A reservation with deadline ``D`` is due once the clock reads ``D`` or later.
        Due reservations come back in (deadline, reservation order). A fully filled
        trade has nothing left to expire and is skipped.
        """
        ...

    def get(self, intent_id: str) -> Trade | None: ...

    def ended(self, intent_id: str) -> str | None:
        """Why a recently ended trade ended (expired / cancelled / closed), if remembered."""
        ...

    def reserve(self, trade: Trade) -> None:
        """Hold ``trade.approved_units`` as reserved risk and count one live trade."""
        ...

    def fill(self, trade: Trade, fill_id: str, units: int) -> tuple[int, int]:
        """Commit a fill: move ``units`` from reserved to active (reserved never below zero).

        Returns ``(released_from_reservation, overfill)``; the caller has checked
        that the fill id is new.
        """
        ...

    def release(self, trade: Trade, reason: str) -> int:
        """Release the unfilled remainder (cancel or expiry); returns the units released.

        A trade with no fill ends here (its trade slot is freed); a partly filled
        one stays open as a position until closed.
        """
        ...

    def close(self, trade: Trade) -> tuple[int, int]:
        """End a trade: release its active and reserved risk and its trade slot.

        Returns ``(active_released, reserved_released)``.
        """
        ...

    def set_equity(self, equity: float, peak_equity: float | None = None) -> None: ...

    def set_override(self, mode: str | None, reason: str | None) -> None: ...

    def trades(self) -> Iterator[Trade]:
        """Live trades in reservation order."""
        ...


class MemoryStore:
    """The in-process :class:`PortfolioStore`: plain objects and a re-entrant lock."""

    def __init__(self, equity: float = 0.0, peak_equity: float | None = None) -> None:
        self._state = PortfolioState(equity, peak_equity)
        self._lock = threading.RLock()
        self._clock: datetime | None = None
        self._trades: dict[str, Trade] = {}
        self._heap: list[tuple[datetime, int, str]] = []
        self._ended: OrderedDict[str, str] = OrderedDict()

    @property
    def state(self) -> PortfolioState:
        return self._state

    @property
    def clock(self) -> datetime | None:
        return self._clock

    def lock(self) -> AbstractContextManager[Any]:
        return self._lock

    # --- the lifecycle -------------------------------------------------------------------
    def _buckets(self, trade: Trade) -> tuple[Bucket, Bucket, Bucket, Bucket]:
        s = self._state
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
        clock = self._clock
        if clock is None or now > clock:
            self._clock = clock = now
        heap = self._heap
        if not heap or heap[0][0] > clock:
            return []
        due: list[Trade] = []
        while heap and heap[0][0] <= clock:
            _deadline, seq, intent_id = heapq.heappop(heap)
            trade = self._trades.get(intent_id)
            if trade is None or trade.seq != seq or trade.released is not None:
                continue  # already closed, cancelled or replaced
            if trade.reserved_units == 0 and trade.is_open:
                continue  # fully filled: no reservation left to expire
            self.release(trade, "expired")
            due.append(trade)
        return due

    def get(self, intent_id: str) -> Trade | None:
        return self._trades.get(intent_id)

    def ended(self, intent_id: str) -> str | None:
        return self._ended.get(intent_id)

    def _end(self, trade: Trade, reason: str) -> None:
        del self._trades[trade.intent_id]
        ended = self._ended
        ended[trade.intent_id] = reason
        ended.move_to_end(trade.intent_id)
        if len(ended) > ENDED_MEMORY:
            ended.popitem(last=False)

    def reserve(self, trade: Trade) -> None:
        u = trade.approved_units
        for b in self._buckets(trade):
            b.reserved_units += u
            b.active_trades += 1
            r = b.reserved_units
            b.reserved_risk = r / _SCALE
            b.heat = (b.active_units + r) / _SCALE
        self._trades[trade.intent_id] = trade
        self._ended.pop(trade.intent_id, None)
        if trade.expires is not None:
            heapq.heappush(self._heap, (trade.expires, trade.seq, trade.intent_id))
        self._state.version += 1

    def fill(self, trade: Trade, fill_id: str, units: int) -> tuple[int, int]:
        from_reserved = min(units, trade.reserved_units)
        overfill = units - from_reserved
        opens = not trade.is_open
        trade.reserved_units -= from_reserved
        trade.filled_units += units
        if trade.fills is None:
            trade.fills = set()
        trade.fills.add(fill_id)
        for b in self._buckets(trade):
            b.reserved_units -= from_reserved
            b.active_units += units
            if opens:
                b.open_positions += 1
            b._sync()
        self._state.version += 1
        return from_reserved, overfill

    def release(self, trade: Trade, reason: str) -> int:
        units = trade.reserved_units
        trade.reserved_units = 0
        trade.released = reason
        ends = not trade.is_open
        for b in self._buckets(trade):
            b.reserved_units -= units
            if ends:
                b.active_trades -= 1
            b._sync()
        if ends:
            self._end(trade, reason)
        self._state.version += 1
        return units

    def close(self, trade: Trade) -> tuple[int, int]:
        active, reserved = trade.filled_units, trade.reserved_units
        was_open = trade.is_open
        for b in self._buckets(trade):
            b.active_units -= active
            b.reserved_units -= reserved
            b.active_trades -= 1
            if was_open:
                b.open_positions -= 1
            b._sync()
        trade.reserved_units = 0
        self._end(trade, "closed")
        self._state.version += 1
        return active, reserved

    # --- equity, override, listing -------------------------------------------------------
    def set_equity(self, equity: float, peak_equity: float | None = None) -> None:
        self._state.set_equity(equity, peak_equity)

    def set_override(self, mode: str | None, reason: str | None) -> None:
        s = self._state
        s.mode_override = mode
        s.mode_override_reason = reason if mode is not None else None
        s.version += 1

    def trades(self) -> Iterator[Trade]:
        return iter(sorted(self._trades.values(), key=lambda t: t.seq))


def deadline(created: datetime, ttl_sec: int | None) -> datetime | None:
    """The moment a reservation made at ``created`` expires (``None``: never)."""
    return None if ttl_sec is None else created + timedelta(seconds=ttl_sec)


__all__ = [
    "ENDED_MEMORY",
    "Bucket",
    "MemoryStore",
    "PortfolioState",
    "PortfolioStore",
    "Trade",
    "deadline",
]

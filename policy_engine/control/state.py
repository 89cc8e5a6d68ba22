"""The live portfolio state: exact integer aggregates in buckets the rule chain reads.

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

The trades themselves and the lifecycle steps that move these integers live in
:mod:`.book`. Nothing here reads a clock, a file or a random number;
:mod:`.snapshot` turns it into plain data and back, exactly.
"""

from __future__ import annotations

from typing import Any

from ..engine.contracts import RISK_SCALE
from .balances import Balances

_SCALE = float(RISK_SCALE)

# Buckets held before the first sweep for ones left fresh where no trade ended.
SWEEP_FLOOR = 4_096

# A bucket's exact integers, in the order snapshots store them.
COUNTERS = (
    "active_units",
    "reserved_units",
    "open_positions",
    "active_trades",
    "long_units",
    "short_units",
    # notional (size x price, micro-units of the account currency) filled / reserved / by
    # side, and the filled positions' unrealized P&L at the symbols' last marks: sums over
    # live trades like the risk (control.marks keeps the P&L)
    "active_notional_units",
    "reserved_notional_units",
    "long_notional_units",
    "short_notional_units",
    "unrealized_units",
)
# The risk counters (the first six): what a format-10 snapshot row held.
RISK_COUNTERS = 6


class Bucket:
    """Live counters of one strategy, symbol or cohort (or of the whole portfolio).

    ``active_units`` / ``reserved_units`` are the exact integers; ``active_risk``,
    ``reserved_risk`` and ``heat`` are their float mirrors for the evaluator. The heat
    is split by side too: ``long_units`` / ``short_units`` (active + reserved risk of
    long and of short trades), read as ``long_risk``, ``short_risk`` and
    ``net_risk`` (long minus short: properties, computed from the integers). Notional is kept the same way in ``*_notional_units``
    (mirrored as ``active_notional``, ``reserved_notional``, ``gross_notional``,
    ``long_notional``, ``short_notional``, ``net_notional``), and the filled positions'
    unrealized P&L at the last marks in ``unrealized_units`` (``unrealized_pnl``) with its
    peak since the bucket last held no position (``peak_unrealized_units``) and the
    drawdown from that peak as a fraction of the filled notional (``unrealized_drawdown``).
    The trading day's realized P&L is exact too
    (``day_pnl_units``, mirrored as ``day_realized_pnl``), with the ``loss_streak``: the
    losing closes since the last winning one (both start again at the rollover).
    """

    __slots__ = (
        "active_notional",
        "active_notional_units",
        "active_risk",
        "active_trades",
        "active_units",
        "day_pnl_units",
        "day_realized_pnl",
        "gross_notional",
        "heat",
        "long_notional",
        "long_notional_units",
        "long_units",
        "loss_streak",
        "net_notional",
        "open_positions",
        "peak_unrealized_units",
        "reserved_notional",
        "reserved_notional_units",
        "reserved_risk",
        "reserved_units",
        "short_notional",
        "short_notional_units",
        "short_units",
        "unrealized_drawdown",
        "unrealized_pnl",
        "unrealized_units",
        "windows",
    )

    def __init__(self) -> None:
        self.active_units = 0
        self.reserved_units = 0
        self.open_positions = 0
        self.active_trades = 0
        self.long_units = 0
        self.short_units = 0
        self.active_risk = 0.0
        self.reserved_risk = 0.0
        self.heat = 0.0
        self.day_pnl_units = 0
        self.day_realized_pnl = 0.0
        self.loss_streak = 0
        self.active_notional_units = 0
        self.reserved_notional_units = 0
        self.long_notional_units = 0
        self.short_notional_units = 0
        self.unrealized_units = 0
        self.peak_unrealized_units = 0
        self.sync_notional()
        # rolling counts by window name (control.windows); an aggregate window's float mirror
        self.windows: dict[str, int | float] = {}

    def sync(self) -> None:
        """Recompute the float mirrors from the integers."""
        a, r = self.active_units, self.reserved_units
        self.active_risk = a / _SCALE
        self.reserved_risk = r / _SCALE
        self.heat = (a + r) / _SCALE
        self.sync_notional()

    def sync_notional(self) -> None:
        """Recompute the notional and unrealized P&L mirrors from their integers."""
        a, r = self.active_notional_units, self.reserved_notional_units
        self.active_notional = a / _SCALE
        self.reserved_notional = r / _SCALE
        self.gross_notional = (a + r) / _SCALE
        lo, sh = self.long_notional_units, self.short_notional_units
        self.long_notional = lo / _SCALE
        self.short_notional = sh / _SCALE
        self.net_notional = (lo - sh) / _SCALE
        u = self.unrealized_units
        self.unrealized_pnl = u / _SCALE
        # the drawdown from the peak, over the filled notional (0 with nothing filled)
        self.unrealized_drawdown = (self.peak_unrealized_units - u) / a if a > 0 else 0.0

    def move_notional(self, active: int, reserved: int, long: bool) -> None:
        """Add these notional amounts (negative: remove them) for a trade on one side."""
        move_notional((self,), active, reserved, long)

    # The side split's mirrors are computed when read, not kept: few policies read them, and
    # keeping them cost two stores and two divisions per bucket on every reserve and release.
    @property
    def long_risk(self) -> float:
        return self.long_units / _SCALE

    @property
    def short_risk(self) -> float:
        return self.short_units / _SCALE

    @property
    def net_risk(self) -> float:
        return (self.long_units - self.short_units) / _SCALE

    def move(self, active: int, reserved: int, positions: int, trades: int, long: bool) -> None:
        """Add these amounts (negative: remove them) for a trade on one side, and resync."""
        move_all((self,), active, reserved, positions, trades, long)

    def counters(self) -> tuple[int, ...]:
        """The exact integers, in the order of :data:`COUNTERS`."""
        return tuple(getattr(self, name) for name in COUNTERS)

    def set_counters(self, counters: tuple[int, ...] | list[int]) -> None:
        for name, value in zip(COUNTERS, counters, strict=True):
            setattr(self, name, int(value))
        self.sync()

    def totals(self) -> dict[str, Any]:
        """JSON-ready counters (floats from the exact integers); the notional and unrealized
        P&L only when any is not zero (a book without either reads as it always did)."""
        out = {
            "active_risk": self.active_units / _SCALE,
            "reserved_risk": self.reserved_units / _SCALE,
            "heat": (self.active_units + self.reserved_units) / _SCALE,
            "open_positions": self.open_positions,
            "active_trades": self.active_trades,
            "long_risk": self.long_units / _SCALE,
            "short_risk": self.short_units / _SCALE,
            "net_risk": (self.long_units - self.short_units) / _SCALE,
        }
        if any(self.counters()[RISK_COUNTERS:]) or self.peak_unrealized_units:
            out.update(self.notional_totals())
        return out

    def notional_totals(self) -> dict[str, Any]:
        """The notional and unrealized P&L mirrors, JSON-ready."""
        return {
            "active_notional": self.active_notional,
            "reserved_notional": self.reserved_notional,
            "gross_notional": self.gross_notional,
            "long_notional": self.long_notional,
            "short_notional": self.short_notional,
            "net_notional": self.net_notional,
            "unrealized_pnl": self.unrealized_pnl,
            "unrealized_drawdown": self.unrealized_drawdown,
        }

    def is_zero(self) -> bool:
        return not any(self.counters())

    def is_fresh(self) -> bool:
        """Equal to a new ``Bucket()`` in everything a rule, a snapshot or a scrape reads: no
        live trade (every counter is a sum over live trades, so all are zero), nothing
        realized today, no loss streak and no rolling-window count (a window deletes a count
        that drops to zero). Such a bucket can be dropped: reading a missing bucket reads a
        fresh one."""
        # The COUNTERS read one by one: a tuple of them cost more than the rest of a close.
        return not (
            self.active_trades
            or self.day_pnl_units
            or self.loss_streak
            or self.windows
            or self.active_units
            or self.reserved_units
            or self.open_positions
            or self.long_units
            or self.short_units
            or self.active_notional_units
            or self.reserved_notional_units
            or self.long_notional_units
            or self.short_notional_units
            or self.unrealized_units
            or self.peak_unrealized_units
        )

    def realize(self, pnl_units: int) -> None:
        """A close realized ``pnl_units``: the day's P&L moves; a loss lengthens the streak,
        a win ends it (a break-even close leaves it)."""
        self.day_pnl_units += pnl_units
        self.day_realized_pnl = self.day_pnl_units / _SCALE
        if pnl_units < 0:
            self.loss_streak += 1
        elif pnl_units > 0:
            self.loss_streak = 0

    def day_values(self) -> tuple[int, int]:
        """(the day's realized P&L in units, the loss streak)."""
        return self.day_pnl_units, self.loss_streak

    def mark(self, delta_units: int) -> None:
        """The filled positions' unrealized P&L moved by ``delta_units``: the peak follows it
        up; with no filled notional left the peak starts again from zero."""
        u = self.unrealized_units = self.unrealized_units + delta_units
        a = self.active_notional_units
        if not a:
            self.peak_unrealized_units = 0
        elif u > self.peak_unrealized_units:
            self.peak_unrealized_units = u
        # only the P&L mirrors move (the notional ones are as they were)
        self.unrealized_pnl = u / _SCALE
        self.unrealized_drawdown = (self.peak_unrealized_units - u) / a if a > 0 else 0.0

    def set_day_values(self, pnl_units: int, streak: int) -> None:
        self.day_pnl_units, self.loss_streak = int(pnl_units), int(streak)
        self.day_realized_pnl = self.day_pnl_units / _SCALE


def move_notional(buckets: tuple[Bucket, ...], active: int, reserved: int, long: bool) -> None:
    """Move notional through ``buckets`` as :func:`move_all` moves risk (its own call: an
    intent without a notional moves none, and pays nothing for it)."""
    gross = active + reserved
    for b in buckets:
        b.active_notional_units += active
        b.reserved_notional_units += reserved
        if long:
            b.long_notional_units += gross
        else:
            b.short_notional_units += gross
        if not b.active_notional_units:
            b.peak_unrealized_units = 0  # no position left: the next one starts from zero
        b.sync_notional()


def move_all(
    buckets: tuple[Bucket, ...],
    active: int,
    reserved: int,
    positions: int,
    trades: int,
    long: bool,
) -> None:
    """:meth:`Bucket.move` on each of ``buckets`` (a trade's portfolio, strategy, symbol,
    cohort and scope buckets): one call per lifecycle step, the loop inline, since a call per
    bucket cost a tenth of a request or a cancel."""
    heat = active + reserved
    for b in buckets:
        # A mirror is recomputed only when its integer moved (a reservation or a cancel moves
        # no active risk): it is the same float either way, since it is always int / scale.
        if active:
            a = b.active_units = b.active_units + active
            b.active_risk = a / _SCALE
        else:
            a = b.active_units
        if reserved:
            r = b.reserved_units = b.reserved_units + reserved
            b.reserved_risk = r / _SCALE
        else:
            r = b.reserved_units
        if positions:
            b.open_positions += positions
        if trades:
            b.active_trades += trades
        if heat:  # only the side that moved (a fill within its reservation moves none)
            b.heat = (a + r) / _SCALE
            if long:
                b.long_units += heat
            else:
                b.short_units += heat


class PortfolioState(Bucket):
    """The whole portfolio: the snapshot the compiled chain reads (same attributes as
    :class:`~policy_engine.engine.contracts.PortfolioSnapshot`, as plain attributes).

    ``day_start_equity`` is the equity in force at the last trading-day rollover (before
    any rollover, the first positive equity seen); ``day_pnl`` mirrors
    ``equity - day_start_equity``.
    """

    __slots__ = (
        "balances",
        "cohorts",
        "day_pnl",
        "day_start_equity",
        "drawdown",
        "equity",
        "equity_seen",
        "latch_info",
        "latches",
        "mode_override",
        "mode_override_reason",
        "peak_equity",
        "positions",
        "scopes",
        "strategies",
        "swept",
        "symbols",
        "version",
    )

    def __init__(self, equity: float | None = None, peak_equity: float | None = None) -> None:
        super().__init__()
        self.equity = 0.0
        self.peak_equity = 0.0
        self.drawdown = 0.0
        self.day_start_equity = 0.0
        self.day_pnl = 0.0
        self.equity_seen = False  # the first equity starts the first day
        self.mode_override: str | None = None
        self.mode_override_reason: str | None = None
        self.strategies: dict[str, Bucket] = {}
        self.symbols: dict[str, Bucket] = {}
        self.cohorts: dict[str, Bucket] = {}
        self.scopes: dict[str, dict[str, Bucket]] = {}  # scope -> key value -> bucket
        self.latches: dict[str, bool] = {}  # the latches that are set (the chain reads this)
        self.latch_info: dict[str, dict[str, Any]] = {}  # when and why each was set
        # the open positions by id (`position.*`): the book's own table of live trades
        self.positions: dict[str, Any] = {}
        self.version = 0  # bumped on every mutation (a cache key for derived values)
        self.swept = 0  # how many buckets the last sweep left (see sweep_if_grown)
        self.balances = Balances()  # per currency: reported, and what reservations lock
        if equity is not None:
            self.set_equity(equity, peak_equity)

    def balance(self, currency: str | None, field: str) -> float | None:
        """``balance.<currency>.<field>`` (``free`` or ``locked``; None: never reported)."""
        return self.balances.read(currency, field)

    def set_equity(self, equity: float, peak_equity: float | None = None) -> None:
        peak = max(self.peak_equity, equity) if peak_equity is None else max(peak_equity, equity)
        self.equity = float(equity)
        self.peak_equity = float(peak)
        self.drawdown = (peak - equity) / peak if peak > 0 else 0.0
        if not self.equity_seen and equity > 0:  # a placeholder 0 does not start the day
            self.equity_seen = True
            self.day_start_equity = self.equity
        self.day_pnl = self.equity - self.day_start_equity
        self.version += 1

    def set_override(self, mode: str | None, reason: str | None) -> None:
        self.mode_override = mode
        self.mode_override_reason = reason if mode is not None else None
        self.version += 1

    def clear_latch(self, name: str) -> None:
        self.latches.pop(name, None)
        self.latch_info.pop(name, None)
        self.version += 1

    def buckets(self) -> list[Bucket]:
        """Every bucket: the portfolio's own, then each strategy's, symbol's, cohort's and
        scope's."""
        return [self, *(b for table in self.tables() for b in table.values())]

    def start_day(self) -> None:
        """A new trading day: the equity in force is its starting equity, and every bucket's
        realized P&L and loss streak start again from zero."""
        self.day_start_equity = self.equity
        self.day_pnl = 0.0
        for bucket in self.buckets():
            bucket.set_day_values(0, 0)
        self.evict()
        self.version += 1

    def tables(self) -> list[dict[str, Bucket]]:
        """The strategy, symbol, cohort and scope tables of buckets."""
        return [self.strategies, self.symbols, self.cohorts, *self.scopes.values()]

    def evict(self) -> None:
        """Drop every bucket equal to a fresh one (see :meth:`Bucket.is_fresh`): the
        rollover's sweep, for what a trade's end did not drop (a bucket that only kept a
        day's P&L or a window count)."""
        for table in self.tables():
            for name in [n for n, b in table.items() if b.is_fresh()]:
                del table[name]

    def sweep_if_grown(self) -> None:
        """:meth:`evict` once the tables hold twice what the last sweep left (and at least
        ``SWEEP_FLOOR``): a bucket left fresh where no trade ended (a rolling-window count
        that ran out) is dropped within a bounded growth, at an amortized constant cost."""
        # (the three tables summed by hand: this runs whenever a trade ends)
        size = len(self.strategies) + len(self.symbols) + len(self.cohorts)
        if self.scopes:
            size += sum(map(len, self.scopes.values()))
        if size >= SWEEP_FLOOR and size >= 2 * self.swept:
            self.evict()
            self.swept = sum(len(table) for table in self.tables())

    def drop_if_fresh(self, table: dict[str, Bucket], name: str) -> None:
        """Drop ``table[name]`` if it is equal to a fresh bucket (or already gone)."""
        bucket = table.get(name)
        if bucket is not None and bucket.is_fresh():
            del table[name]


__all__ = ["COUNTERS", "Bucket", "PortfolioState"]

"""Marks: a symbol's last price revalues its priced positions (issue 23 item 4).

A ``mark`` event (symbol, price, event time) moves the clock like any event and puts every
position in that symbol whose fills carried a price at the new price: its unrealized P&L is
quantity x mark less its filled notional (negated for a short), and the difference moves
through the buckets it counts in (:func:`revalue_symbol`): O(priced positions in that
symbol), nothing else is looked at. Each bucket's peak of unrealized P&L follows
(``unrealized_drawdown``: LEAN's MaximumDrawdownPercentPerSecurity reads it per symbol).
Latches and the mode follow the step (a `when` may read ``portfolio.unrealized_pnl``). A
mark is never refused except when stamped too far ahead of a live shell's clock.
"""

from __future__ import annotations

from typing import Any

from .book import Book
from .events import MarkEvent, Record
from .kernel import ACCEPT, Kernel, Options, Outputs, Ruling, admitted
from .state import Bucket


class Marks:
    """Applying marks (a part of the core, over its :class:`~.kernel.Kernel`)."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    def refusal(self, event: MarkEvent, ahead: str | None, teach: bool) -> Ruling:
        """A mark is refused only when stamped too far ahead (EventError)."""
        if ahead is not None:
            admitted(ahead)
        return ACCEPT

    def step(self, event: MarkEvent, ruling: Ruling | None, opts: Options) -> Outputs:
        """Revalue the symbol's priced positions; the record says how many (``positions``)."""
        k = self.k
        step = k.begin(event.timestamp, opts.teach)
        moved = revalue_symbol(k.book, event.symbol, event.price)
        if opts.records:
            rec: Record = {
                "kind": "mark",
                "seq": step.seq,
                "ts": k.iso_of(event.timestamp),
                "symbol": event.symbol,
                "price": event.price,
                "positions": moved,
            }
            step.records.append(rec)
        if not moved:  # nothing was revalued: no latch or mode can have moved
            return k.finish(step)
        env, push = k.after_mode_change(False)  # a mode may read the unrealized P&L
        return k.finish(step, env if push else None)


def revalue_symbol(book: Book, symbol: str, price: float) -> int:
    """``book``'s ``symbol`` last price is ``price``: revalue its priced positions; returns how
    many (no other symbol's trade is looked at)."""
    book.marks[symbol] = price
    trades = book.priced.get(symbol)
    if not trades:
        return 0
    # A bucket takes the sum of its positions' moves once (its peak after the whole mark:
    # one instant). Positions are grouped by what their buckets depend on, so the
    # buckets are looked up once per group (usually one), not once per position.
    groups: dict[tuple[str, str, int], list[Any]] = {}
    for trade in trades.values():
        new = trade.pnl_at(price)
        delta = new - trade.unrealized
        if delta:
            if book.captures.views:  # a capture holds it: keep its row first
                book.captures.keep(trade)
            trade.unrealized = new
            key = (trade.strategy, trade.cohort, id(trade.scopes))
            group = groups.get(key)
            if group is None:
                groups[key] = [trade, delta]
            else:
                group[1] += delta
    if not groups:  # no position moved: nothing a rule reads changed
        return len(trades)
    moves: dict[int, tuple[Bucket, int]] = {}
    for trade, delta in groups.values():
        for b in book.buckets(trade):
            held = moves.get(id(b))
            moves[id(b)] = (b, delta if held is None else held[1] + delta)
    for b, delta in moves.values():
        b.mark(delta)
    book.state.version += 1
    return len(trades)


__all__ = ["Marks", "revalue_symbol"]

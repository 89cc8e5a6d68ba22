"""Marks: a symbol's last price revalues its priced positions (issue 23 item 4).

A ``mark`` event (symbol, price, event time) moves the clock like any event and puts every
position in that symbol whose fills carried a price at the new price: its unrealized P&L is
quantity x mark less its filled notional (negated for a short), and the difference moves
through the buckets it counts in (:meth:`~.book.Book.mark`): O(priced positions in that
symbol), nothing else is looked at. Each bucket's peak of unrealized P&L follows
(``unrealized_drawdown``: LEAN's MaximumDrawdownPercentPerSecurity reads it per symbol).
Latches and the mode follow the step (a `when` may read ``portfolio.unrealized_pnl``). A
mark is never refused except when stamped too far ahead of a live shell's clock.
"""

from __future__ import annotations

from .events import MarkEvent, Record
from .kernel import ACCEPT, Kernel, Options, Outputs, Ruling, admitted


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
        moved = k.book.mark(event.symbol, event.price)
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


__all__ = ["Marks"]

"""A reload re-buckets a live trade: its cohort or scopes changed under the new policy.

Everything a trade counts in its buckets (risk, reservation, slot, position, notional and
unrealized P&L) leaves the old ones and joins the new ones exactly (the book's own
bookkeeping, kept apart so that :mod:`.book` stays within its size). Pure, like the book.
"""

from __future__ import annotations

from .book import Book
from .state import Bucket
from .trade import Trade


def move_cohort(book: Book, trade: Trade, cohort: str) -> None:
    """Count ``trade`` in ``cohort`` from now on: its exposure, reservation, slot and
    position leave its old cohort's bucket and join the new one's, exactly."""
    if book.captures.views:  # a capture holds it: keep its row first
        book.captures.keep(trade)
    cohorts = book.state.cohorts
    before = trade.cohort
    old = cohorts[before]
    trade.cohort = cohort
    new = cohorts.get(cohort)
    if new is None:
        new = cohorts[cohort] = Bucket()
    _shift(book, trade, [old], [new])
    book.state.drop_if_fresh(cohorts, before)


def move_scopes(book: Book, trade: Trade, scopes: dict[str, str] | None) -> None:
    """Count ``trade`` in these scopes from now on (a reload changed them), exactly."""
    if book.captures.views:  # a capture holds it: keep its row first
        book.captures.keep(trade)
    before = trade.scopes or {}
    old = [book.scope_bucket(k, v) for k, v in before.items()]
    trade.scopes = scopes
    _shift(book, trade, old, [book.scope_bucket(k, v) for k, v in (scopes or {}).items()])
    for scope, value in before.items():
        book.state.drop_if_fresh(book.state.scopes[scope], value)


def _shift(book: Book, trade: Trade, out: list[Bucket], into: list[Bucket]) -> None:
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
            if sign < 0:
                bucket.mark(-trade.unrealized)  # before its notional leaves (the peak)
            bucket.move_notional(
                sign * trade.filled_notional, sign * trade.reserved_notional, trade.long
            )
            if sign > 0:
                bucket.mark(trade.unrealized)
    book.state.version += 1


__all__ = ["move_cohort", "move_scopes"]

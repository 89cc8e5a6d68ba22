"""The live trades at one instant, taken in O(1) copies under the caller's lock, read later.

A checkpoint's snapshot is taken under the controller's lock; building a row per live trade
there held every decision for tens of milliseconds on a book of 60,000 trades (each row a
new tuple: the allocations alone woke the garbage collector). :class:`Captured` takes only a
shallow copy of the book's dict of trades (pointer copies in C, about a millisecond) and
leaves the rows to whoever encodes the checkpoint, on its own thread, while decisions go on.

The trades stay the book's own objects, changed in place. So before the book changes a
trade it calls :meth:`Captured.keep` (copy on write): a capture still alive that holds that
very trade keeps its row as it was, once. The reader (:meth:`Captured.rows`) reads a trade's
row and THEN looks for a kept row: the book keeps one before it changes anything, so a
trade found without one had not started to change when it was read; a trade found with one
is given its kept row. Each row is read in a handful of C calls under the interpreter's lock
and the kept rows are plain dict entries, so the two threads need no lock of their own.
Nothing here reads a clock, a file, or anything but the trades.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from .trade import Trade

# A trade's fields in its snapshot row, read as one tuple in one C call. The one list of
# them: a plain snapshot and a checkpoint both build their rows from it.
ROW = attrgetter(
    "intent_id",
    "strategy",
    "symbol",
    "cohort",
    "approved_units",
    "reserved_units",
    "filled_units",
    "seq",
    "created",
    "expires",
    "fills",
    "released",
    "bucket",
    "late",
    "side",
    "scopes",
    "keys",
    "reserved_notional",
    "filled_notional",
    "quantity",
    "unrealized",
    "group",
    "currency",
    "notional_units",
)
CREATED = 8  # the row's datetimes: created, then expires
FILLS = 10  # the row's one member the book changes in place (a set): sorted into a new list


def trade_row(trade: Trade) -> tuple[Any, ...]:
    """``trade``'s row as it is now, sharing nothing the book changes in place afterwards
    (its fill ids sorted into a new list; its strings, numbers, datetimes and key dicts are
    never changed in place, only replaced)."""
    row: tuple[Any, ...] = ROW(trade)
    fills = row[FILLS]
    if fills is None:
        return row
    return (*row[:FILLS], sorted(fills), *row[FILLS + 1 :])


class Captured:
    """The live trades as they were when the book's :meth:`~.book.Book.capture` was called."""

    __slots__ = ("__weakref__", "kept", "trades")

    def __init__(self, trades: dict[str, Trade]) -> None:
        self.trades = trades  # a shallow copy of the book's: nobody changes this dict
        self.kept: dict[str, tuple[Any, ...]] = {}  # id -> row, for trades changed since

    def keep(self, trade: Trade) -> None:
        """``trade`` is about to change: keep its row as captured (if captured, once)."""
        iid = trade.intent_id
        if self.trades.get(iid) is trade and iid not in self.kept:
            self.kept[iid] = trade_row(trade)

    def row(self, iid: str, trade: Trade) -> tuple[Any, ...]:
        """``trade``'s row as captured; safe on another thread while the book goes on (it
        reads the row and THEN looks for a kept one: see the module's docstring)."""
        try:
            row: tuple[Any, ...] | None = trade_row(trade)
        except RuntimeError:  # its fill ids changed while sorted: it was kept first
            row = None
        before = self.kept.get(iid)
        if before is not None:
            return before
        if row is None:  # cannot happen: the book keeps a row before any change
            raise RuntimeError(f"trade {iid} changed while captured and was not kept")
        return row

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """Every captured trade's row as it was at the capture, in the book's order."""
        for iid, trade in self.trades.items():
            yield self.row(iid, trade)

    def chunks(self, size: int) -> Iterator[bytes]:
        """The JSON text of :meth:`rows` (as :func:`orjson.dumps` writes a list of them),
        ``size`` rows at a time, in a few C calls per chunk: each trade's attributes read
        in C and written by orjson (its fill ids sorted when written), THEN the chunk's ids
        looked up among the kept rows; a chunk with a trade changed meanwhile is written
        again row by row. (Raises orjson's TypeError for an integer beyond 64 bits.)"""
        ids, trades, kept = list(self.trades), list(self.trades.values()), self.kept
        for start in range(0, len(ids), size):
            part = trades[start : start + size]
            try:
                text: bytes | None = orjson.dumps(list(map(ROW, part)), default=_sorted)
            except orjson.JSONEncodeError:  # a fill set changed while written (kept first)
                text = None
            chunk_ids = ids[start : start + size]
            if text is None or (kept and not kept.keys().isdisjoint(chunk_ids)):
                text = orjson.dumps([self.row(i, t) for i, t in zip(chunk_ids, part, strict=True)])
            yield text

    def __len__(self) -> int:
        return len(self.trades)


class Captures:
    """The captures of one book still alive: :meth:`take` makes one, :meth:`keep` hands each
    a trade about to change (``views`` is empty but while a checkpoint is encoded, so the
    book's check before a change costs one attribute read)."""

    __slots__ = ("views",)

    def __init__(self) -> None:
        self.views: list[weakref.ref[Captured]] = []

    def take(self, trades: dict[str, Trade]) -> Captured:
        view = Captured(dict(trades))
        self.views = [ref for ref in self.views if ref() is not None]
        self.views.append(weakref.ref(view))
        return view

    def keep(self, trade: Trade) -> None:
        """``trade`` is about to change: every capture still alive keeps its row."""
        alive = []
        for ref in self.views:
            view = ref()
            if view is not None:
                view.keep(trade)
                alive.append(ref)
        self.views = alive


class Rows:
    """Rows of a snapshot built only when read: a checkpoint's snapshot is captured under the
    controller's lock and leaves its rows to the thread that encodes its line
    (:func:`~.lines.checkpoint_body`). Iterated, the rows as data; :meth:`chunks`, their
    JSON text ``size`` rows at a time (each chunk a JSON array), faster."""

    __slots__ = ("_chunks", "_rows")

    def __init__(
        self,
        rows: Callable[[], Iterable[Sequence[Any]]],
        chunks: Callable[[int], Iterable[bytes]] | None = None,
    ) -> None:
        self._rows = rows
        self._chunks = chunks

    def chunks(self, size: int) -> Iterable[bytes]:
        if self._chunks is not None:
            return self._chunks(size)
        return self._dumped(size)

    def _dumped(self, size: int) -> Iterator[bytes]:
        chunk: list[Sequence[Any]] = []
        for row in self._rows():
            chunk.append(row)
            if len(chunk) == size:
                yield orjson.dumps(chunk)
                chunk = []
        if chunk:
            yield orjson.dumps(chunk)

    def __iter__(self) -> Iterator[Sequence[Any]]:
        return iter(self._rows())

    def plain(self) -> list[Sequence[Any]]:
        return list(self._rows())


def _sorted(value: Any) -> list[Any]:
    """orjson's ``default``: a trade's fill ids (a set) as a sorted list."""
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} in a trade's row")


__all__ = ["CREATED", "FILLS", "ROW", "Captured", "Captures", "Rows", "trade_row"]

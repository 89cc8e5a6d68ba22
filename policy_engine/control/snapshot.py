"""The core's exact snapshot: plain JSON data, restorable bit for bit.

A snapshot holds everything the core's future behaviour depends on: the
policy in force (its text and hash), the event counter, the logical clock,
equity and peak, the trading day and its starting equity, the override, the
last broadcast mode, every bucket's exact integer counters and the day's
realized P&L and loss streak (sorted by name; a bucket equal to a fresh one is left out,
so a snapshot does not depend on when such buckets were dropped), the events inside every
rolling window (the counts are rebuilt from them) and each daily window's counts, the
latches that are set, every live trade with its fills and deadline, the memory of recently
ended trades (to absorb late fills, and to know a re-sent fill id as a duplicate: their
fill ids and when they ended), the timed locks that hold (only when the policy declares any)
and the window of intent ids decided last, in order (a reused id is refused). Floats are only
the equity and its peak, which JSON round-trips exactly.

``restore(snapshot(core))`` behaves exactly as ``core`` from then on, and
``snapshot(restore(s)) == s``. Every earlier format from :data:`OLDEST_FORMAT` on stays
readable: ``MIGRATIONS[n]`` turns a format-``n`` snapshot into format ``n + 1`` (a
snapshot carried across a Temporal continue-as-new by the previous release, or a
journal checkpoint, restores after an upgrade; tests/fixtures/snapshots/ holds one of
each format). A snapshot whose buckets disagree with its
trades, or whose policy text does not match its hash, is refused.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ..diagnostics import PolicyError
from ..engine.policy import load_policy_text
from .book import Trade
from .captured import CREATED, Rows, trade_row
from .days import Days
from .events import EventError
from .notional_format import from_10
from .state import COUNTERS, Bucket, PortfolioState
from .window_migration import windows_from_10

if TYPE_CHECKING:
    from .kernel import Kernel

FORMAT_PREFIX = "policy-engine/core-snapshot/"
FORMAT_VERSION = 13
FORMAT = f"{FORMAT_PREFIX}{FORMAT_VERSION}"
OLDEST_FORMAT = 1  # the oldest format a migration chain reads (the first ever written)

Snapshot = dict[str, Any]


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _buckets(table: dict[str, Bucket]) -> list[list[Any]]:
    """The rows of the buckets not equal to a fresh one, by name (a bucket whose only
    content is a window count is kept as a row of zeros: the windows rebuild the count)."""
    return [_row(table[name], [name]) for name in _kept(table)]


def _row(bucket: Bucket, head: list[Any]) -> list[Any]:
    """A bucket's row: its counters, the day's realized P&L and loss streak, the peak of its
    unrealized P&L."""
    return [*head, *bucket.counters(), *bucket.day_values(), bucket.peak_unrealized_units]


def _kept(table: dict[str, Bucket]) -> list[str]:
    return sorted(name for name, bucket in table.items() if not bucket.is_fresh())


def _bucket(row: list[Any]) -> Bucket:
    """A bucket from its row (counters, then the day's realized P&L and loss streak)."""
    bucket = Bucket()
    _set_row(bucket, row)
    return bucket


def _set_row(bucket: Bucket, row: list[Any]) -> None:
    n = len(COUNTERS)
    bucket.peak_unrealized_units = int(row[n + 2])
    bucket.set_counters(row[:n])
    bucket.set_day_values(*row[n : n + 2])


def _trade_row(t: Trade) -> list[Any]:
    """A trade's row as plain JSON data: its :data:`~.captured.ROW` with its times as ISO
    8601 text and its fill ids sorted (one list of a trade's fields, for both kinds of
    snapshot)."""
    row = list(trade_row(t))
    row[CREATED] = row[CREATED].isoformat()
    row[CREATED + 1] = _iso(row[CREATED + 1])
    return row


def take(core: Kernel) -> Snapshot:
    """The exact snapshot of ``core`` (JSON-serialisable)."""
    return _take(
        core,
        [_trade_row(t) for t in core.book.trades.values()],
        [[k, *v[:8], list(v[8]), _iso(v[9]), *v[10:]] for k, v in core.book.ended.items()],
        cheap=False,
    )


def capture(core: Kernel) -> Snapshot:
    """:func:`take` for a checkpoint line, in O(1) work per live trade under the caller's
    lock: the trades are captured by the book (:mod:`.captured`: a shallow copy, their rows
    kept on write) and the ended trades' immutable records copied by reference; their rows
    are built when the line is encoded (:class:`~.captured.Rows`, by the checkpoint's own
    thread), with their datetimes left to orjson (it writes one exactly as ``isoformat``
    does). Not plain JSON data: only for :func:`~.lines.checkpoint_body`."""
    trades = core.book.capture()
    ids, ended = list(core.book.ended), list(core.book.ended.values())

    def ended_rows() -> Iterator[list[Any]]:
        for k, v in zip(ids, ended, strict=True):
            yield [k, *v[:8], list(v[8]), v[9], *v[10:]]

    return _take(core, Rows(trades.rows, trades.chunks), Rows(ended_rows), cheap=True)


def _take(core: Kernel, trades: Any, ended: Any, cheap: bool) -> Snapshot:
    """The snapshot with these trade and ended rows; ``cheap``: the windows' log times left
    as datetimes for orjson, which writes them as ``isoformat`` does."""
    policy, state, book = core.policy, core.state, core.book
    if policy.source is None:
        raise EventError(f"policy {policy.name} v{policy.version} has no text to snapshot")
    return {
        "format": FORMAT,
        "seq": core.seq,
        "policy": {
            "name": policy.name,
            "version": policy.version,
            "hash": policy.content_hash,
            "path": policy.path,
            "source": policy.source,
        },
        "clock": _iso(book.clock),
        "equity": state.equity,
        "peak_equity": state.peak_equity,
        "override": state.mode_override,
        "override_reason": state.mode_override_reason,
        "last_mode": core.last_mode,
        "day": None if core.days.day is None else core.days.day.isoformat(),
        "day_start_equity": state.day_start_equity,
        "equity_seen": state.equity_seen,
        "portfolio": _row(state, []),
        "strategies": _buckets(state.strategies),
        "symbols": _buckets(state.symbols),
        "cohorts": _buckets(state.cohorts),
        "scopes": {
            name: _buckets(table) for name, table in sorted(state.scopes.items()) if _kept(table)
        },
        "windows": core.windows.entries(cheap),
        # (only when the policy declares locks: other snapshots are as before)
        **({"locks": core.locks.entries()} if core.locks.specs else {}),
        "latches": {name: dict(state.latch_info[name]) for name in state.latches},
        "trades": trades,
        "balances": state.balances.rows(),  # as reported (the locks are the trades')
        "ended": ended,
        "seen": list(book.seen_order),
        "marks": dict(sorted(book.marks.items())),
    }


def restore(data: Snapshot, factory: Callable[..., Kernel]) -> Kernel:
    """The core ``data`` was taken from, built with ``factory(policy, seq=...)``.
    Raises :class:`EventError` if it is inconsistent."""
    data = migrate(data)
    ref = data["policy"]
    try:
        policy = load_policy_text(str(ref["source"]), str(ref["path"]))
    except PolicyError as exc:  # a forged or damaged checkpoint: refused like any other
        raise EventError(f"the snapshot's policy does not load: {exc}") from None
    if policy.content_hash != ref["hash"]:
        raise EventError("snapshot policy text does not match its hash")
    core = factory(policy, seq=int(data["seq"]))
    state: PortfolioState = core.state
    state.set_equity(float(data["equity"]), float(data["peak_equity"]))
    state.equity_seen = bool(data["equity_seen"])
    state.day_start_equity = float(data["day_start_equity"])
    state.day_pnl = state.equity - state.day_start_equity
    state.set_override(data["override"], data["override_reason"])
    _set_row(state, data["portfolio"])
    for key, table in (
        ("strategies", state.strategies),
        ("symbols", state.symbols),
        ("cohorts", state.cohorts),
    ):
        for name, *row in data[key]:
            table[str(name)] = _bucket(row)
    for scope, rows in data["scopes"].items():
        state.scopes[str(scope)] = {str(name): _bucket(row) for name, *row in rows}
    day = data["day"]
    core.days = Days(policy.calendar, None if day is None else date.fromisoformat(day))
    core.windows.load(data["windows"])
    core.locks.load(data.get("locks", []))
    for currency, (free, locked) in data["balances"].items():
        state.balances.reported[str(currency)] = (int(free), int(locked))
    for name, info in data["latches"].items():
        state.latches[str(name)] = True
        state.latch_info[str(name)] = dict(info)
    book = core.book
    book.clock = _ts(data["clock"])
    for row in data["trades"]:
        (iid, strategy, symbol, cohort, approved, reserved, filled, seq, created, expires) = row[
            :10
        ]
        fills, released, bucket, late, side, scopes, keys = row[10:17]
        reserved_notional, filled_notional, quantity, unrealized = row[17:21]
        trade = Trade(
            iid,
            strategy,
            symbol,
            cohort,
            int(approved),
            int(seq),
            datetime.fromisoformat(created),
            _ts(expires),
            bucket,
            side,
        )
        trade.reserved_units = int(reserved)
        trade.filled_units = int(filled)
        trade.fills = None if fills is None else set(fills)
        trade.released = released
        trade.late = late
        trade.scopes, trade.keys = scopes, keys
        trade.reserved_notional, trade.filled_notional = (
            int(reserved_notional),
            int(filled_notional),
        )
        trade.quantity = None if quantity is None else float(quantity)
        trade.unrealized = int(unrealized)
        if trade.quantity is not None:
            book.priced.setdefault(symbol, {})[iid] = trade
        trade.group, trade.currency, trade.notional_units = row[21], row[22], int(row[23])
        book.trades[iid] = trade
        if trade.currency is not None:  # the locks are derived: what the trades lock
            book.lock(trade, 0)
        if trade.expires is not None and trade.released is None:
            book.deadlines.append((trade.expires, trade.seq, iid))
    heapq.heapify(book.deadlines)
    for iid, why, strategy, symbol, cohort, bucket, side, scopes, keys, fills, at, *n in data[
        "ended"
    ]:
        ended = (why, strategy, symbol, cohort, bucket, side, scopes, keys, tuple(fills), _ts(at))
        book.ended[iid] = (*ended, int(n[0]), int(n[1]))
    book.seen_order.extend(data["seen"])
    book.seen.update(book.seen_order)
    book.marks.update((str(k), float(v)) for k, v in data["marks"].items())
    core.last_mode = str(data["last_mode"])
    _verify(core)
    return core


def _verify(core: Kernel) -> None:
    """Every bucket equals the sum of the live trades counted in it."""
    want: dict[tuple[str, str], list[int]] = {}
    for t in core.book.trades.values():
        keys = [("portfolio", ""), ("strategies", t.strategy), ("symbols", t.symbol)]
        keys.append(("cohorts", t.cohort))
        keys += [(f"scopes.{k}", v) for k, v in (t.scopes or {}).items()]
        for key in keys:
            c = want.setdefault(key, [0] * len(COUNTERS))
            c[0] += t.filled_units
            c[1] += t.reserved_units
            c[2] += 1 if t.is_open else 0
            c[3] += 1
            c[4 if t.long else 5] += t.filled_units + t.reserved_units
            c[6] += t.filled_notional
            c[7] += t.reserved_notional
            c[8 if t.long else 9] += t.filled_notional + t.reserved_notional
            c[10] += t.unrealized
    state = core.state
    got: dict[tuple[str, str], list[int]] = {("portfolio", ""): list(state.counters())}
    for section, table in (
        ("strategies", state.strategies),
        ("symbols", state.symbols),
        ("cohorts", state.cohorts),
    ):
        for name, bucket in table.items():
            got[(section, name)] = list(bucket.counters())
    for scope, buckets in state.scopes.items():
        for name, bucket in buckets.items():
            got[(f"scopes.{scope}", name)] = list(bucket.counters())
    for key in sorted(set(want) | set(got)):
        zero = [0] * len(COUNTERS)
        if want.get(key, zero) != got.get(key, zero):
            where = key[0] if not key[1] else f"{key[0]}.{key[1]}"
            raise EventError(f"snapshot is inconsistent: {where} does not match its trades")


def format_number(data: Any) -> int | None:
    """The format number ``data`` names (None: not a core snapshot)."""
    name = data.get("format") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name.startswith(FORMAT_PREFIX):
        return None
    number = name.removeprefix(FORMAT_PREFIX)
    return int(number) if number.isdigit() else None


def _step(data: Snapshot, number: int, **changes: Any) -> Snapshot:
    """``data`` relabelled as format ``number`` with ``changes`` applied."""
    return {**data, **changes, "format": f"{FORMAT_PREFIX}{number}"}


def _from_1(data: Snapshot) -> Snapshot:
    """Format 1 kept no correlation bucket or orphan mark on a trade, remembered of an ended
    trade only why it ended, and no decided ids. A trade's bucket becomes ``None`` (its cohort
    stays the recorded one until a reload re-derives it from the symbol) and it is no orphan
    (format 1 had none). An ended trade's strategy, symbol and cohort are unknown, so it is
    not remembered: a later fill for it is ``unknown`` (reported, never absorbed as invented
    exposure in a made-up bucket), as format 1 also absorbed none. The decided ids are the
    live and ended ids the snapshot names, so none of them can be reused."""
    trades = [[*row[:12], None, None] for row in data["trades"]]
    seen = sorted({str(row[0]) for row in data["trades"]} | {str(k) for k, _ in data["ended"]})
    return _step(data, 2, trades=trades, ended=[], seen=seen)


def _from_2(data: Snapshot) -> Snapshot:
    """Format 2 kept the decided ids as a sorted set, format 3 in decision order: the order
    is unknown, so the sorted order stands (it only decides which id leaves the bounded
    window first; none is forgotten by the migration)."""
    return _step(data, 3)


def _sided(rows: list[list[Any]]) -> list[list[Any]]:
    """Format-3 bucket rows with long and short risk (all long) and an empty day."""
    return [[name, *c, c[0] + c[1], 0, 0, 0] for name, *c in rows]


def _day_of(data: Snapshot) -> str | None:
    """The trading day of the snapshot's clock by its policy's calendar (None before any
    timestamped event)."""
    clock = _ts(data["clock"])
    if clock is None:
        return None
    ref = data["policy"]
    try:
        calendar = load_policy_text(str(ref["source"]), str(ref["path"])).calendar
    except PolicyError as exc:
        raise EventError(f"the snapshot's policy does not load: {exc}") from None
    return calendar.day_of(clock).isoformat()


def _from_3(data: Snapshot) -> Snapshot:
    """Format 3 had no sides, no trading day and no realized P&L. Every trade and ended trade
    is ``long`` (its risk counts in long and net risk, the largest either can read, as it
    counted in the gross before; the side format 3 never saw cannot be recovered, so a later
    policy's short cap does not see it). The trading day is the one the clock is in (by the
    policy's calendar); where it started is unknown, so it started at the peak equity (fail
    closed: the day's loss reads at least as large as it was, never smaller). Realized P&L
    and loss streaks start at 0 (format 3 recorded none)."""
    trades = [[*row[:14], "long"] for row in data["trades"]]
    ended = [[*row, "long"] for row in data["ended"]]
    equity = float(data["equity"])
    tables = {key: _sided(data[key]) for key in ("strategies", "symbols", "cohorts")}
    (portfolio,) = _sided([["", *data["portfolio"]]])
    return _step(
        data,
        4,
        **tables,
        portfolio=portfolio[1:],
        day=_day_of(data),
        day_start_equity=float(data["peak_equity"]),
        equity_seen=equity > 0,
        trades=trades,
        ended=ended,
    )


def _from_4(data: Snapshot) -> Snapshot:
    """Scopes came with format 5: a format-4 policy declares none, so there are no scope
    buckets and no trade or ended trade counts in one."""
    trades = [[*row, None, None] for row in data["trades"]]
    ended = [[*row, None, None] for row in data["ended"]]
    return _step(data, 5, scopes={}, trades=trades, ended=ended)


def _from_5(data: Snapshot) -> Snapshot:
    """Rolling windows came with format 6: a format-5 policy declares none."""
    return _step(data, 6, windows={})


def _from_6(data: Snapshot) -> Snapshot:
    """Latches came with format 7: a format-6 policy declares none, so none is set."""
    return _step(data, 7, latches={})


def _from_7(data: Snapshot) -> Snapshot:
    """Format 7 kept the decided ids as a sorted set, format 8 in decision order (as
    :func:`_from_2`): the sorted order stands."""
    return _step(data, 8)


def _from_8(data: Snapshot) -> Snapshot:
    """Format 8 kept no fill ids for ended trades (a re-sent fill became a late orphan) and no
    time they ended: they keep none (as before) and count as ended at the snapshot's clock,
    so the event-time retention starts from there."""
    ended = [[*row, [], data["clock"]] for row in data["ended"]]
    return _step(data, 9, ended=ended)


def _from_9(data: Snapshot) -> Snapshot:
    """Format 9 kept every bucket ever seen, in order of first use; 10 keeps only those not
    equal to a fresh one, sorted by name. A row of zeros is dropped: if a window still
    counts its key, restoring the windows makes the bucket again, with its counts."""

    def rows(table: list[list[Any]]) -> list[list[Any]]:
        return sorted((r for r in table if any(r[1:])), key=lambda r: str(r[0]))

    scopes = {name: rows(table) for name, table in sorted(data["scopes"].items())}
    return _step(
        data,
        10,
        **{key: rows(data[key]) for key in ("strategies", "symbols", "cohorts")},
        scopes={name: table for name, table in scopes.items() if table},
    )


def _from_11(data: Snapshot) -> Snapshot:
    """Format 11 had no order groups and no balances: every trade was decided alone (its
    group is none) and locks no currency (none, a notional of 0); no balance was reported."""
    trades = [[*row, None, None, 0] for row in data["trades"]]
    return _step(data, 12, trades=trades, balances={})


def _from_12(data: Snapshot) -> Snapshot:
    """Format 13 keeps one log of events per kind shared by the windows (window_migration;
    the windows' section was the same from format 10 to 12)."""
    return _step(data, 13, windows=windows_from_10(data))


# format n -> the step that turns a format-n snapshot into format n + 1
MIGRATIONS: dict[int, Callable[[Snapshot], Snapshot]] = {
    1: _from_1,
    2: _from_2,
    3: _from_3,
    4: _from_4,
    5: _from_5,
    6: _from_6,
    7: _from_7,
    8: _from_8,
    9: _from_9,
    10: from_10,
    11: _from_11,
    12: _from_12,
}


def migrate(data: Any) -> Snapshot:
    """``data`` in the current format (each older format through its migrations in turn);
    raises :class:`EventError` when it is no snapshot this version reads."""
    number = format_number(data)
    if number is None or number > FORMAT_VERSION:
        raise EventError(
            f"not a core snapshot (expected format {FORMAT_PREFIX}{OLDEST_FORMAT} "
            f"to {FORMAT_VERSION})"
        )
    if number < OLDEST_FORMAT:  # refused, never skipped: it could hide a forged checkpoint
        raise EventError(
            f"snapshot format {FORMAT_PREFIX}{number} is older than this version restores "
            f"({FORMAT_PREFIX}{OLDEST_FORMAT} to {FORMAT_VERSION}) and has no migration"
        )
    while number < FORMAT_VERSION:
        data = MIGRATIONS[number](data)
        number += 1
    snapshot: Snapshot = data
    return snapshot


def older_format(data: Any) -> bool:
    """Whether ``data`` names a snapshot format an older version wrote that this version no
    longer restores (before :data:`OLDEST_FORMAT`; its events, not its snapshot, are then the
    record)."""
    number = format_number(data)
    return number is not None and number < OLDEST_FORMAT


__all__ = [
    "FORMAT",
    "FORMAT_PREFIX",
    "FORMAT_VERSION",
    "MIGRATIONS",
    "OLDEST_FORMAT",
    "Snapshot",
    "format_number",
    "migrate",
    "older_format",
    "restore",
    "take",
]

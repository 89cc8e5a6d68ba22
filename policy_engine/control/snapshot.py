"""The core's exact snapshot: plain JSON data, restorable bit for bit.

A snapshot holds everything the core's future behaviour depends on: the
policy in force (its text and hash), the event counter, the logical clock,
equity and peak, the trading day and its starting equity, the override, the
last broadcast mode, every bucket's exact integer counters and the day's
realized P&L and loss streak (in their order of first use), the events inside every
rolling window (the counts are rebuilt from them), the latches that are set, every live trade with its
fills and deadline, the memory of recently ended trades (to absorb late fills)
and the window of intent ids decided last, in order (a reused id is refused). Floats are only
the equity and its peak, which JSON round-trips exactly.

``restore(snapshot(core))`` behaves exactly as ``core`` from then on, and
``snapshot(restore(s)) == s``. A snapshot whose buckets disagree with its
trades, or whose policy text does not match its hash, is refused.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import date, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ..diagnostics import PolicyError
from ..engine.policy import load_policy_text
from .book import Trade
from .days import Days
from .events import EventError
from .state import COUNTERS, Bucket, PortfolioState

if TYPE_CHECKING:
    from .kernel import Kernel

FORMAT_PREFIX = "policy-engine/core-snapshot/"
FORMAT_VERSION = 8
FORMAT = f"{FORMAT_PREFIX}{FORMAT_VERSION}"

Snapshot = dict[str, Any]


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _buckets(table: dict[str, Bucket]) -> list[list[Any]]:
    return [[name, *b.counters(), *b.day_values()] for name, b in table.items()]


def _bucket(row: list[Any]) -> Bucket:
    """A bucket from its row (counters, then the day's realized P&L and loss streak)."""
    bucket = Bucket()
    bucket.set_counters(row[: len(COUNTERS)])
    bucket.set_day_values(*row[len(COUNTERS) :])
    return bucket


# A trade's row, as a tuple of its attributes, read in one C call (see capture).
_ROW = attrgetter(
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
)
_FILLS = 10  # the row's one mutable member (a set), copied in capture


def _trade_row(t: Trade) -> list[Any]:
    return [
        t.intent_id,
        t.strategy,
        t.symbol,
        t.cohort,
        t.approved_units,
        t.reserved_units,
        t.filled_units,
        t.seq,
        t.created.isoformat(),
        _iso(t.expires),
        None if t.fills is None else sorted(t.fills),
        t.released,
        t.bucket,
        t.late,
        t.side,
        t.scopes,
        t.keys,
    ]


def take(core: Kernel) -> Snapshot:
    """The exact snapshot of ``core`` (JSON-serialisable)."""
    return _take(core, [_trade_row(t) for t in core.book.trades.values()])


def capture(core: Kernel) -> Snapshot:
    """:func:`take` for a checkpoint line, at a fraction of the cost to the caller's lock:
    the trades are rows of their attributes as they are (datetimes, not their ISO text),
    read in C, for orjson to serialise later (it writes a datetime exactly as
    ``isoformat`` does); they share nothing the core changes afterwards (a trade's fills
    are copied; its strings, numbers, datetimes and key dicts are never changed in place).
    Not plain JSON data: only for serialising."""
    rows = list(map(_ROW, core.book.trades.values()))
    for i, row in enumerate(rows):
        fills = row[_FILLS]
        if fills is not None:
            rows[i] = (*row[:_FILLS], sorted(fills), *row[_FILLS + 1 :])
    return _take(core, rows)


def _take(core: Kernel, trades: list[Any]) -> Snapshot:
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
        "portfolio": [*state.counters(), *state.day_values()],
        "strategies": _buckets(state.strategies),
        "symbols": _buckets(state.symbols),
        "cohorts": _buckets(state.cohorts),
        "scopes": {name: _buckets(table) for name, table in state.scopes.items()},
        "windows": core.windows.entries(),
        "latches": {name: dict(state.latch_info[name]) for name in state.latches},
        "trades": trades,
        "ended": [[k, *v] for k, v in book.ended.items()],
        "seen": list(book.seen_order),
    }


# MIGRATIONS[n] turns a format-n snapshot into format n+1 (each a small function of its own,
# so that migrations written apart merge as separate entries). A format without a path to
# FORMAT is refused, never skipped: a checkpoint that cannot be restored cannot be verified.
MIGRATIONS: dict[int, Callable[[Snapshot], Snapshot]] = {}


def upgrade(data: Snapshot) -> Snapshot:
    """``data`` in the current format, migrated step by step from an older one; unchanged
    when it is not an older format. Raises :class:`EventError` without a migration."""
    if not older_format(data):
        return data
    version = int(str(data["format"]).removeprefix(FORMAT_PREFIX))
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise EventError(
                f"snapshot format {FORMAT_PREFIX}{version} is older than this version restores "
                f"({FORMAT}) and has no migration"
            )
        data = step(data)
        version += 1
    return data


def restore(data: Snapshot, factory: Callable[..., Kernel]) -> Kernel:
    """The core ``data`` was taken from (migrated first when it is an older format), built
    with ``factory(policy, seq=...)``. Raises :class:`EventError` if it is inconsistent."""
    data = upgrade(data)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise EventError(f"not a core snapshot (expected format {FORMAT})")
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
    counters = data["portfolio"]
    state.set_counters(counters[: len(COUNTERS)])
    state.set_day_values(*counters[len(COUNTERS) :])
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
        book.trades[iid] = trade
        if trade.expires is not None and trade.released is None:
            book.deadlines.append((trade.expires, trade.seq, iid))
    heapq.heapify(book.deadlines)
    for iid, why, strategy, symbol, cohort, bucket, side, scopes, keys in data["ended"]:
        book.ended[iid] = (why, strategy, symbol, cohort, bucket, side, scopes, keys)
    book.seen_order.extend(data["seen"])
    book.seen.update(book.seen_order)
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
            c = want.setdefault(key, [0] * 6)
            c[0] += t.filled_units
            c[1] += t.reserved_units
            c[2] += 1 if t.is_open else 0
            c[3] += 1
            c[4 if t.long else 5] += t.filled_units + t.reserved_units
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
        if want.get(key, [0] * 6) != got.get(key, [0] * 6):
            where = key[0] if not key[1] else f"{key[0]}.{key[1]}"
            raise EventError(f"snapshot is inconsistent: {where} does not match its trades")


def older_format(data: Any) -> bool:
    """Whether ``data`` names a snapshot format an older version wrote (one this version no
    longer restores; its events, not its snapshot, are then the record)."""
    name = data.get("format") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name.startswith(FORMAT_PREFIX):
        return False
    number = name.removeprefix(FORMAT_PREFIX)
    return number.isdigit() and int(number) < FORMAT_VERSION


__all__ = [
    "FORMAT",
    "FORMAT_PREFIX",
    "FORMAT_VERSION",
    "MIGRATIONS",
    "Snapshot",
    "older_format",
    "restore",
    "take",
    "upgrade",
]

"""The snapshot migration from format 10 to 11: notional, prices and marks.

One self-contained step of :data:`.snapshot.MIGRATIONS` (kept apart so that the snapshot
module stays within its size and another change's step merges beside it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .state import COUNTERS, RISK_COUNTERS

FORMAT_PREFIX = "policy-engine/core-snapshot/"
Snapshot = dict[str, Any]


def from_10(data: Snapshot) -> Snapshot:
    """Notional, prices and marks came with format 11: a format-10 book kept none, so every
    bucket's notional and unrealized P&L (and its peak) are 0, no trade has a notional or a
    priced fill (a notional cap reads what it reserves from now on; no mark revalues an older
    position), no symbol is marked, and an ended trade's notional is unknown (a late fill of
    one is absorbed with risk and no notional, as before)."""

    def row(r: list[Any]) -> list[Any]:
        return [*r[: RISK_COUNTERS + 1], 0, 0, 0, 0, 0, *r[RISK_COUNTERS + 1 :], 0]

    def rows(table: list[list[Any]]) -> list[list[Any]]:
        return [row(r) for r in table]

    return {
        **data,
        "format": f"{FORMAT_PREFIX}11",
        **{key: rows(data[key]) for key in ("strategies", "symbols", "cohorts")},
        "scopes": {name: rows(table) for name, table in data["scopes"].items()},
        "portfolio": row(["", *data["portfolio"]])[1:],
        "trades": [[*r, 0, 0, None, 0] for r in data["trades"]],
        "ended": [[*r, 0, 0] for r in data["ended"]],
        "marks": {},
    }


def forget_10(data: Snapshot) -> Snapshot:
    """A current snapshot with what a format-10 snapshot could not hold set as :func:`from_10`
    sets it: the notional and unrealized counters of every bucket, the notional, quantity and
    unrealized P&L of every trade, the notional of every ended one, and the marks. Verifying
    a format-10 checkpoint compares the two states through this (an intent of that time may
    carry a notional the replay now counts, which its checkpoint never recorded)."""
    n = len(COUNTERS)

    def row(r: list[Any], head: int) -> list[Any]:
        at = head + RISK_COUNTERS
        return [*r[:at], *[0] * (n - RISK_COUNTERS), *r[head + n : head + n + 2], 0]

    def rows(table: list[list[Any]]) -> list[list[Any]]:
        return [row(r, 1) for r in table]

    return {
        **data,
        **{key: rows(data[key]) for key in ("strategies", "symbols", "cohorts")},
        "scopes": {name: rows(table) for name, table in data["scopes"].items()},
        "portfolio": row(data["portfolio"], 0),
        "trades": [[*r[:_NOTIONAL], 0, 0, None, 0, *r[_NOTIONAL + 4 :]] for r in data["trades"]],
        "ended": [[*r[:_ENDED_NOTIONAL], 0, 0, *r[_ENDED_NOTIONAL + 2 :]] for r in data["ended"]],
        "marks": {},
    }


# Where format 11 put the notional columns: a trade row's 17th to 20th field (reserved and
# filled notional, quantity, unrealized P&L), an ended trade row's 12th and 13th.
_NOTIONAL = 17
_ENDED_NOTIONAL = 11

# A lossy migration's "forget" (format n -> what format n could not hold, blanked in a
# current snapshot): verification compares a format-n checkpoint with its replay through it.
FORGETS: dict[int, Callable[[Snapshot], Snapshot]] = {10: forget_10}

__all__ = ["FORGETS", "forget_10", "from_10"]

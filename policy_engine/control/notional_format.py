"""The snapshot migration from format 10 to 11: notional, prices and marks.

One self-contained step of :data:`.snapshot.MIGRATIONS` (kept apart so that the snapshot
module stays within its size and another change's step merges beside it).
"""

from __future__ import annotations

from typing import Any

from .state import RISK_COUNTERS

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


__all__ = ["from_10"]

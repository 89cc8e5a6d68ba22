"""One approved intent from reservation to close: :class:`Trade`, what the book holds.

Its reservation (approved, reserved and filled risk in micro-units), its fills, its
deadline, the buckets it counts in (strategy, symbol, cohort, scopes), the string fields it
was keyed by, its order group, and the notional and currency its reservation locks. The
lifecycle steps that move it are :class:`~.book.Book`'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..engine.contracts import RISK_SCALE

_SCALE = float(RISK_SCALE)


class Trade:
    """One approved intent from reservation to close: its reservation and its position."""

    __slots__ = (
        "approved_units",
        "bucket",
        "cohort",
        "created",
        "currency",
        "expires",
        "filled_units",
        "fills",
        "group",
        "intent_id",
        "keys",
        "late",
        "notional_units",
        "released",
        "reserved_units",
        "scopes",
        "seq",
        "side",
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
        bucket: str | None = None,
        side: str = "long",
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
        self.bucket = bucket  # the intent's correlation_bucket: the cohort is re-derived on reload
        self.late: str | None = None  # an orphan: filled after it "cancelled"/"expired"/"closed"
        self.side = side  # "long" or "short": a risk-reducing intent takes no trade
        # The scopes it counts in (scope name -> key value), and the intent's other string
        # fields a scope may be keyed by (so that a reload can re-derive them).
        self.scopes: dict[str, str] | None = None
        self.keys: dict[str, str] | None = None
        self.group: str | None = None  # the order group it was decided in (cancel_group)
        # the intent's quote currency and the notional of its approved risk: the unfilled
        # remainder's share of it locks that currency's balance (control/balances.py)
        self.currency: str | None = None
        self.notional_units = 0

    def field(self, name: str) -> str | None:
        """The value of the intent's string field ``name`` this trade was reserved with."""
        if name == "strategy":
            return self.strategy
        if name == "symbol":
            return self.symbol
        if name == "correlation_bucket":
            return self.bucket
        if name == "side":
            return self.side
        return None if self.keys is None else self.keys.get(name)

    @property
    def long(self) -> bool:
        return self.side == "long"

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
            "side": self.side,
            "approved_risk_abs": self.approved_units / _SCALE,
            "filled_risk_abs": self.filled_units / _SCALE,
            "reserved_risk_abs": self.reserved_units / _SCALE,
            "fills": len(self.fills or ()),
            "status": f"open/orphan after {self.late}"
            if self.late
            else ("open" if self.is_open else "reserved")
            + (f"/{self.released}" if self.released else ""),
            "created": self.created.isoformat(),
            "expires": None if self.expires is None or self.released else self.expires.isoformat(),
            "seq": self.seq,
        }


__all__ = ["Trade"]

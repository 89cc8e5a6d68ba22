"""One approved intent from reservation to close: :class:`Trade`, what the book holds.

Its reservation and position in exact integer micro-units (risk and notional), its fills,
its deadline, the buckets it counts in (strategy, symbol, cohort, scopes), the string fields
it was keyed by, its order group and the currency its reservation locks, the quantity its
priced fills bought and its unrealized P&L at the last mark. The book (:mod:`.book`) moves
these through the buckets; nothing here changes a bucket.
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
        "filled_notional",
        "filled_units",
        "fills",
        "group",
        "intent_id",
        "keys",
        "late",
        "notional_units",
        "quantity",
        "released",
        "reserved_notional",
        "reserved_units",
        "scopes",
        "seq",
        "side",
        "strategy",
        "symbol",
        "unrealized",
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
        # Notional (micro-units) still reserved and filled, the filled quantity (the filled
        # notional over the fills' prices; None until a fill with a price) and the position's
        # unrealized P&L at its symbol's last mark (control.marks).
        self.reserved_notional = 0
        self.filled_notional = 0
        self.quantity: float | None = None
        self.unrealized = 0
        self.group: str | None = None  # the order group it was decided in (cancel_group)
        # the intent's quote currency and the notional of its approved risk: the unfilled
        # remainder's share of it locks that currency's balance (control/balances.py)
        self.currency: str | None = None
        self.notional_units = 0

    # --- what `position.*` reads (engine/runtime.position_value) -----------------------
    @property
    def size(self) -> float:
        """The filled risk."""
        return self.filled_units / _SCALE

    @property
    def notional(self) -> float:
        """The filled notional."""
        return self.filled_notional / _SCALE

    @property
    def entry_time(self) -> datetime:
        """When its intent was approved (the clock then)."""
        return self.created

    @property
    def unrealized_pnl(self) -> float:
        return self.unrealized / _SCALE

    def pnl_at(self, price: float) -> int:
        """The unrealized P&L (micro-units) of the priced position at ``price``: quantity x
        price less the filled notional, negated for a short (0 without a priced fill)."""
        q = self.quantity
        if q is None:
            return 0
        pnl = round(q * price * RISK_SCALE) - self.filled_notional
        return pnl if self.side == "long" else -pnl

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
            "reserved_notional": self.reserved_notional / _SCALE,
            "filled_notional": self.filled_notional / _SCALE,
            "unrealized_pnl": self.unrealized / _SCALE,
            "status": f"open/orphan after {self.late}"
            if self.late
            else ("open" if self.is_open else "reserved")
            + (f"/{self.released}" if self.released else ""),
            "created": self.created.isoformat(),
            "expires": None if self.expires is None or self.released else self.expires.isoformat(),
            "seq": self.seq,
        }


def approved_notional(notional: float | None, requested: int, approved: int) -> int:
    """The notional (micro-units) an approval of ``approved`` of ``requested`` risk units
    reserves: the intent's notional, scaled down with a clip (an order clipped to half its
    risk is half the size); 0 for an intent without one."""
    if not notional:
        return 0
    units = round(notional * RISK_SCALE)
    return units if approved >= requested or not requested else units * approved // requested


__all__ = ["Trade", "approved_notional"]

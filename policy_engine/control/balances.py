"""Balances per currency: what the account reported, what this portfolio's reservations lock.

A ``balance`` event reports one currency's ``free`` and ``locked`` amounts (the account's, at
its event time, *before* this portfolio's live reservations: see below)::

    {"type": "balance", "currency": "USD", "free": 1000000, "locked": 0, "timestamp": "..."}

The engine tracks the locks of its own reservations itself, between balance events: a
reservation of an intent with a ``quote_currency`` and a ``requested_notional_abs`` locks the
notional of its unfilled remainder (the approved share of the notional, times the part of
the reservation not yet filled, rounded down to the 1e-6 grid) from its approval until it
is filled, cancelled, expired or closed. A policy reads ``balance.<CCY>.free`` (reported free
minus those locks) and ``balance.<CCY>.locked`` (reported locked plus them), and
``balance.quote.*`` for the intent's own quote currency; a currency never reported reads
null. A fill releases its share of the lock: the account's next balance event reports what
the fill cost. Every amount is an exact integer of micro-units.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from ..engine.contracts import MAX_AMOUNT, RISK_SCALE, to_units
from .fields import EventError, Record, parse_timestamp

_SCALE = float(RISK_SCALE)
CURRENCY = re.compile(r"[A-Z][A-Z0-9]{1,15}")


class Balances:
    """The reported balances and this portfolio's locks, per currency (micro-units)."""

    __slots__ = ("locks", "reported")

    def __init__(self) -> None:
        self.reported: dict[str, tuple[int, int]] = {}  # currency -> (free, locked)
        self.locks: dict[str, int] = {}  # currency -> what live reservations lock

    def lock(self, currency: str, units: int) -> None:
        """This portfolio's reservations lock ``units`` more of ``currency`` (less if < 0)."""
        left = self.locks.get(currency, 0) + units
        if left:
            self.locks[currency] = left
        else:
            self.locks.pop(currency, None)

    def read(self, currency: str | None, field: str) -> float | None:
        """``free`` (reported free less this portfolio's locks) or ``locked`` (reported
        locked plus them) of ``currency``; None when it was never reported (or is None)."""
        reported = None if currency is None else self.reported.get(currency)
        if reported is None:
            return None
        locked = self.locks.get(currency, 0) if currency is not None else 0
        if field == "free":
            return (reported[0] - locked) / _SCALE
        return (reported[1] + locked) / _SCALE

    def rows(self) -> dict[str, list[int]]:
        """The reported balances as a snapshot holds them (sorted by currency)."""
        return {c: list(self.reported[c]) for c in sorted(self.reported)}


def lock_of(notional_units: int, reserved_units: int, approved_units: int) -> int:
    """What a reservation locks: its notional's share for the unfilled remainder."""
    if not approved_units or not notional_units:
        return 0
    return notional_units * reserved_units // approved_units


class BalanceEvent(NamedTuple):
    """One currency's balance as the account reports it (amounts as the caller gave them)."""

    currency: str
    free: float
    locked: float
    timestamp: datetime | None

    def journal(self) -> Record:
        ts = None if self.timestamp is None else self.timestamp.isoformat()
        return {
            "type": "balance",
            "currency": self.currency,
            "free": self.free,
            "locked": self.locked,
            "timestamp": ts,
        }


def check_currency(currency: Any) -> str:
    """A currency code: an upper-case letter then 1 to 15 upper-case letters or digits."""
    if not isinstance(currency, str) or CURRENCY.fullmatch(currency) is None:
        raise EventError(f"currency must be a code such as USD or USDT, got {currency!r}")
    return currency


def _amount(value: Any, what: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0 <= value <= MAX_AMOUNT:  # (false for NaN)
        raise EventError(f"balance {what} must be a number in [0, {MAX_AMOUNT:.0e}], got {value!r}")
    units = to_units(value)
    if units == 0 and value != 0:
        raise EventError(f"balance {what} {value!r} is below the 1e-6 grid")
    checked: float = value  # an int or a float, as given (the journal keeps it so)
    return checked


def parse_balance(event: Mapping[str, Any]) -> BalanceEvent:
    """A balance event from its dict; EventError for a malformed field."""
    currency = check_currency(event.get("currency"))
    free = _amount(event.get("free"), "free")
    locked = _amount(event.get("locked", 0), "locked")
    ts = event.get("timestamp")
    return BalanceEvent(currency, free, locked, None if ts is None else parse_timestamp(ts))


def units_of(event: BalanceEvent) -> tuple[int, int]:
    """The event's free and locked amounts in micro-units."""
    return to_units(event.free), to_units(event.locked)


__all__ = [
    "CURRENCY",
    "BalanceEvent",
    "Balances",
    "check_currency",
    "lock_of",
    "parse_balance",
    "units_of",
]

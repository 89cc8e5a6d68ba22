"""The events the control plane consumes, and their exact JSON form.

One JSON object per event, discriminated by ``type``; timestamps are ISO 8601
with a UTC offset (``2026-01-01T00:00:00Z``)::

    {"type": "intent", "intent_id": "i1", "strategy": "SCALPER", "symbol": "BTC-USD",
     "side": "long", "requested_risk_abs": 500, "timestamp": "..."}   # + optional intent fields
    {"type": "fill", "intent_id": "i1", "fill_id": "f1", "filled_risk_abs": 200, "timestamp": "..."}
                                                                      # optional "fee" (signed)
    {"type": "cancel", "intent_id": "i1", "timestamp": "..."}
    {"type": "close", "intent_id": "i1", "timestamp": "..."}
    {"type": "equity", "equity": 95000, "timestamp": "..."}          # optional "peak_equity"
    {"type": "mode", "mode": "risk_off", "reason": "judge", "timestamp": "..."}  # mode null clears
    {"type": "tick", "timestamp": "..."}                              # advance the logical clock
    {"type": "reset_latch", "name": "daily_loss", "reason": "risk desk", "timestamp": "..."}
    {"type": "mark", "symbol": "BTC-USD", "price": 64250.5, "timestamp": "..."}  # a last price
    {"type": "request_cancel", "intent_id": "i1", "timestamp": "..."}   # decided (.orders)
    {"type": "request_modify", "intent_id": "i1", "requested_risk_abs": 80, "timestamp": "..."}
    {"type": "group", "group_id": "b1", "intents": [{...}, {...}]}     # all or none (.groups)
    {"type": "cancel_group", "group_id": "b1", "timestamp": "..."}
    {"type": "balance", "currency": "USD", "free": 1000000, "locked": 0, "timestamp": "..."}
    {"type": "policy", "name": "...", "version": 1, "hash": "sha256:...",
     "path": "policies/portfolio.yaml", "source": "<the YAML text>"}  # a policy load

``timestamp`` may be ``null`` on ``equity`` and ``mode`` events (the clock does
not move). The same form is what a journal holds (``schemas/journal.schema.json``)
and what :meth:`~.core.ControlCore.apply` takes.

Each input is parsed ONCE into a typed event (:data:`Event`: one small immutable
tuple per type); the core, the controller and the Temporal workflow all pass that
event on, and its :meth:`journal` method gives the journal form. An intent or a fill
that fails validation parses to :class:`InvalidIntentEvent` / :class:`InvalidFillEvent`:
a live shell answers it and journals nothing; an older journal that holds one
replays it as the numbered event it was. The checks of single fields live in
:mod:`.fields`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from ..engine.contracts import PortfolioIntent
from ..engine.policy import Policy, load_policy_text
from .balances import BalanceEvent, parse_balance
from .fields import (
    CLOCK_SKEW_CODE,
    DEFAULT_MAX_SKEW,
    Clock,
    EventError,
    FillUpdate,
    Record,
    canonical,
    check_equity,
    check_exit_reason,
    check_intent_id,
    check_mark,
    check_mode,
    check_reason,
    check_time,
    close_amounts,
    field,
    json_default,
    optional_timestamp,
    parse_fill,
    parse_intent,
    parse_timestamp,
    validation_message,
)
from .orders import (
    ORDER_TYPES,
    CancelGroupEvent,
    GroupEvent,
    RequestCancelEvent,
    RequestModifyEvent,
    parse_order_event,
)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


# --- the typed events ---------------------------------------------------------------------
class IntentEvent(NamedTuple):
    """An intent, validated into the policy's intent model."""

    intent: PortfolioIntent

    @property
    def timestamp(self) -> datetime:
        return self.intent.timestamp

    def journal(self) -> Record:
        """The journal form (defaults left out, as a caller writes it)."""
        intent = self.intent
        # The model's serializer itself: model_dump's Python wrapper cost a third more.
        form = type(intent).__pydantic_serializer__.to_python(
            intent, mode="json", exclude_defaults=True
        )
        return {"type": "intent", **form}


class FillEvent(NamedTuple):
    """One execution (incremental risk)."""

    fill: FillUpdate

    @property
    def timestamp(self) -> datetime:
        return self.fill.timestamp

    def journal(self) -> Record:
        """The journal form; a fill without a fee is written as before fees existed."""
        return {"type": "fill", **self.fill.model_dump(mode="json", exclude_none=True)}


class CancelEvent(NamedTuple):
    """Release the unfilled remainder of a reservation."""

    intent_id: str
    timestamp: datetime | None

    def journal(self) -> Record:
        return {"type": "cancel", "intent_id": self.intent_id, "timestamp": _iso(self.timestamp)}


class CloseEvent(NamedTuple):
    """End a trade, or (``risk_units``) take that much off its position; ``risk_abs`` and
    ``realized_pnl`` are the amounts as the caller gave them (the journal keeps those)."""

    intent_id: str
    timestamp: datetime | None
    risk_abs: float | None = None
    realized_pnl: float | None = None
    risk_units: int | None = None
    pnl_units: int | None = None
    reason: str | None = None  # why it closed (`stoploss`): windows and locks filter on it

    @classmethod
    def of(
        cls,
        intent_id: str,
        timestamp: datetime | None,
        risk_abs: float | None = None,
        realized_pnl: float | None = None,
        reason: str | None = None,
    ) -> CloseEvent:
        """A close with its amounts and exit reason checked (EventError), the amounts
        converted to micro-units."""
        risk_units, pnl_units = close_amounts(risk_abs, realized_pnl)
        why = check_exit_reason(reason)
        return cls(intent_id, timestamp, risk_abs, realized_pnl, risk_units, pnl_units, why)

    def journal(self) -> Record:
        event: Record = {"type": "close", "intent_id": self.intent_id}
        event["timestamp"] = _iso(self.timestamp)
        if self.risk_abs is not None:
            event["risk_abs"] = self.risk_abs
        if self.realized_pnl is not None:
            event["realized_pnl"] = self.realized_pnl
        if self.reason is not None:
            event["reason"] = self.reason
        return event


class EquityEvent(NamedTuple):
    """The portfolio's equity (and optionally its peak), checked by :meth:`of`."""

    equity: float
    peak_equity: float | None
    timestamp: datetime | None

    @classmethod
    def of(cls, equity: Any, peak_equity: Any, timestamp: datetime | None) -> EquityEvent:
        check_equity(equity, peak_equity)
        return cls(equity, peak_equity, timestamp)

    def journal(self) -> Record:
        event: Record = {"type": "equity", "equity": self.equity}
        event["timestamp"] = _iso(self.timestamp)
        if self.peak_equity is not None:
            event["peak_equity"] = self.peak_equity
        return event


class ModeEvent(NamedTuple):
    """Set (or with ``None`` clear) the mode override."""

    mode: str | None
    reason: str
    timestamp: datetime | None

    def journal(self) -> Record:
        return {
            "type": "mode",
            "mode": self.mode,
            "reason": self.reason,
            "timestamp": _iso(self.timestamp),
        }


class TickEvent(NamedTuple):
    """Move the logical clock."""

    timestamp: datetime

    def journal(self) -> Record:
        return {"type": "tick", "timestamp": self.timestamp.isoformat()}


class PolicyEvent(NamedTuple):
    """Put a policy in force (its text travels with it, so replay needs no file)."""

    policy: Policy

    @property
    def timestamp(self) -> None:
        return None

    def journal(self) -> Record:
        policy = self.policy
        return {
            "type": "policy",
            "name": policy.name,
            "version": policy.version,
            "hash": policy.content_hash,
            "path": policy.path,
            "source": policy.source,
        }


class ResetLatchEvent(NamedTuple):
    """Clear a latch, with the operator's reason."""

    name: str
    reason: str
    timestamp: datetime | None

    def journal(self) -> Record:
        return {
            "type": "reset_latch",
            "name": self.name,
            "reason": self.reason,
            "timestamp": _iso(self.timestamp),
        }


class MarkEvent(NamedTuple):
    """A symbol's last price at an event time (revalues its priced positions)."""

    symbol: str
    price: float
    timestamp: datetime

    @classmethod
    def of(cls, symbol: Any, price: Any, timestamp: datetime) -> MarkEvent:
        return cls(*check_mark(symbol, price), timestamp)

    def journal(self) -> Record:
        return {
            "type": "mark",
            "symbol": self.symbol,
            "price": self.price,
            "timestamp": self.timestamp.isoformat(),
        }


class InvalidIntentEvent(NamedTuple):
    """An intent that failed validation (``raw``: what the caller sent)."""

    raw: Any
    message: str

    @property
    def timestamp(self) -> None:
        return None

    def journal(self) -> Record:
        return {"type": "intent", **(self.raw if isinstance(self.raw, Mapping) else {})}


class InvalidFillEvent(NamedTuple):
    """A fill that failed validation (``raw``: what the caller sent)."""

    raw: Any
    message: str

    @property
    def timestamp(self) -> None:
        return None

    def journal(self) -> Record:
        return {"type": "fill", **(self.raw if isinstance(self.raw, Mapping) else {})}


Event = (
    IntentEvent
    | FillEvent
    | CancelEvent
    | CloseEvent
    | EquityEvent
    | ModeEvent
    | TickEvent
    | PolicyEvent
    | ResetLatchEvent
    | MarkEvent
    | RequestCancelEvent
    | RequestModifyEvent
    | GroupEvent
    | CancelGroupEvent
    | BalanceEvent
    | InvalidIntentEvent
    | InvalidFillEvent
)


def parse_event(
    event: Mapping[str, Any],
    intent_model: type[PortfolioIntent] = PortfolioIntent,
    read: Callable[[str], bytes] | None = None,
) -> Event:
    """The typed event of one event dict (a journal line, an events file's line), checked
    as the core has always checked it (what an older journal holds still parses).
    ``intent_model`` is the policy's; ``read`` resolves a policy event without text.
    EventError for an unknown type or a malformed field."""
    kind = event.get("type")
    if kind == "intent":
        try:
            return IntentEvent(parse_intent(event, intent_model))
        except ValueError as exc:
            return InvalidIntentEvent(event, str(exc))
    if kind == "fill":
        try:
            return FillEvent(parse_fill(event))
        except ValueError as exc:
            return InvalidFillEvent(event, str(exc))
    if kind == "cancel":
        intent_id = field(event, "intent_id")
        return CancelEvent(intent_id, optional_timestamp(event.get("timestamp")))
    if kind == "close":
        intent_id = field(event, "intent_id")
        ts = optional_timestamp(event.get("timestamp"))
        risk, pnl, why = event.get("risk_abs"), event.get("realized_pnl"), event.get("reason")
        return CloseEvent.of(intent_id, ts, risk, pnl, why)
    if kind == "equity":
        equity = field(event, "equity", (int, float))
        ts = optional_timestamp(event.get("timestamp"))
        return EquityEvent.of(equity, event.get("peak_equity"), ts)
    if kind == "mode":
        mode = event.get("mode")
        check_mode(mode)
        return ModeEvent(
            mode, event.get("reason") or "", optional_timestamp(event.get("timestamp"))
        )
    if kind == "tick":
        return TickEvent(parse_timestamp(field(event, "timestamp", (str, datetime))))
    if kind == "policy":
        return PolicyEvent(policy_from_event(event, read))
    if kind == "reset_latch":
        name = field(event, "name")
        reason = check_reason(event.get("reason") or "")
        return ResetLatchEvent(name, reason, optional_timestamp(event.get("timestamp")))
    if kind == "mark":
        ts = parse_timestamp(field(event, "timestamp", (str, datetime)))
        return MarkEvent.of(event.get("symbol"), event.get("price"), ts)
    if kind == "balance":  # a currency's balance (control/balances.py)
        return parse_balance(event)
    if kind in ORDER_TYPES:  # decided requests, order groups (control/orders.py)
        return parse_order_event(event, intent_model)
    raise EventError(f"unknown event type {kind!r}")


def policy_from_event(
    event: Mapping[str, Any], read: Callable[[str], bytes] | None = None
) -> Policy:
    """Rebuild the policy a ``policy`` event names, verifying its content hash.

    The event's ``source`` is used when present. Without it, ``read(path)`` (an
    injected file reader; the pure core passes none) supplies the bytes.
    """
    source, path, expected = (
        event.get("source"),
        str(event.get("path") or "<policy>"),
        event.get("hash"),
    )
    raw = source.encode("utf-8") if isinstance(source, str) else None
    if raw is None:
        if read is None:
            raise EventError(
                f"policy event for {path} has no source; pass the policy to replay (policy=...)"
            )
        try:
            raw = read(path)
        except OSError as exc:
            raise EventError(
                f"policy event has no source and {path} cannot be read ({exc}); "
                "pass the policy to replay (policy=...)"
            ) from exc
    policy = load_policy_text(raw, path)
    if policy.content_hash != expected:
        raise EventError(
            f"policy {event.get('name')} v{event.get('version')}: content hash {policy.content_hash} "
            f"does not match the journal's {expected}"
        )
    return policy


__all__ = [
    "CLOCK_SKEW_CODE",
    "DEFAULT_MAX_SKEW",
    "BalanceEvent",
    "CancelEvent",
    "CancelGroupEvent",
    "Clock",
    "CloseEvent",
    "EquityEvent",
    "Event",
    "EventError",
    "FillEvent",
    "FillUpdate",
    "GroupEvent",
    "IntentEvent",
    "InvalidFillEvent",
    "InvalidIntentEvent",
    "MarkEvent",
    "ModeEvent",
    "PolicyEvent",
    "Record",
    "RequestCancelEvent",
    "RequestModifyEvent",
    "ResetLatchEvent",
    "TickEvent",
    "canonical",
    "check_equity",
    "check_exit_reason",
    "check_intent_id",
    "check_mark",
    "check_mode",
    "check_reason",
    "check_time",
    "close_amounts",
    "field",
    "json_default",
    "optional_timestamp",
    "parse_event",
    "parse_fill",
    "parse_intent",
    "parse_timestamp",
    "policy_from_event",
    "validation_message",
]

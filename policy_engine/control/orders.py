"""The events of decided order requests: a cancel and a modify of a live order.

``request_cancel`` and ``request_modify`` name a live trade (its ``intent_id``) and are
decided by the policy's rules of their kind (``applies_to: [cancel]`` / ``[modify]``)
before anything changes; the plain ``cancel`` event (the ledger's release) is not decided.
Both carry a timestamp (they move the clock and windows count them) and may carry the
intent's amount fields the rules read (``requested_notional_abs``, the policy's declared
inputs); a modify carries the order's new total risk, ``requested_risk_abs``::

    {"type": "request_cancel", "intent_id": "i1", "timestamp": "..."}
    {"type": "request_modify", "intent_id": "i1", "requested_risk_abs": 80,
     "timestamp": "...", "price": 1.00011}               # + any declared input

Pure, like :mod:`.events` (which lists them in its ``Event`` union).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from ..engine.contracts import PortfolioIntent
from .fields import EventError, Record, check_intent_id, close_amounts, parse_timestamp

# The fields of an intent a request may not restate: the order's identity is the book's.
_IDENTITY = frozenset(
    {
        "intent_id",
        "strategy",
        "symbol",
        "side",
        "timestamp",
        "requested_risk_abs",
        "template_id",
        "playbook_id",
        "regime_state",
        "correlation_bucket",
        "reduce_only",
    }
)
_HEAD = frozenset({"type", "intent_id", "timestamp", "requested_risk_abs"})

Fields = tuple[tuple[str, Any], ...]  # (name, value), sorted by name


class RequestCancelEvent(NamedTuple):
    """Ask to cancel a live order's unfilled remainder: decided by the cancel rules."""

    intent_id: str
    timestamp: datetime
    fields: Fields = ()

    def journal(self) -> Record:
        event: Record = {"type": "request_cancel", "intent_id": self.intent_id}
        event["timestamp"] = self.timestamp.isoformat()
        event.update(self.fields)
        return event


class RequestModifyEvent(NamedTuple):
    """Ask to change a live order's total risk (``units``, micro-units; ``risk_abs`` as the
    caller gave it) and any amount the rules read: decided by the modify rules (and, when
    it grows the order, the intent rules too)."""

    intent_id: str
    risk_abs: float
    units: int
    timestamp: datetime
    fields: Fields = ()

    def journal(self) -> Record:
        event: Record = {"type": "request_modify", "intent_id": self.intent_id}
        event["requested_risk_abs"] = self.risk_abs
        event["timestamp"] = self.timestamp.isoformat()
        event.update(self.fields)
        return event


def request_fields(
    event: Mapping[str, Any], model: type[PortfolioIntent], what: str, skip: frozenset[str] = _HEAD
) -> Fields:
    """The amount fields a request restates, sorted; EventError for a field the intent model
    does not have or one of the order's identity (which the book keeps). Their values are
    validated with the order's when the request is decided (:mod:`.requests`)."""
    out = []
    for name in sorted(k for k in event if k not in skip):
        if name in _IDENTITY or name not in model.model_fields:
            known = sorted(set(model.model_fields) - _IDENTITY)
            raise EventError(
                f"{what}: `{name}` cannot be restated (a request may carry "
                f"{', '.join(f'`{k}`' for k in known) or 'no other field'})"
            )
        out.append((name, event[name]))
    return tuple(out)


def parse_request(
    event: Mapping[str, Any], model: type[PortfolioIntent] = PortfolioIntent
) -> RequestCancelEvent | RequestModifyEvent:
    """The typed request of an event dict (``type`` ``request_cancel`` or
    ``request_modify``); EventError for a malformed one."""
    kind = event.get("type")
    intent_id = check_intent_id(event.get("intent_id"))
    ts = parse_timestamp(event.get("timestamp"), f"{kind} timestamp")
    fields = request_fields(event, model, str(kind))
    if kind == "request_cancel":
        if "requested_risk_abs" in event:
            raise EventError("request_cancel: a cancel releases the remainder; it has no amount")
        return RequestCancelEvent(intent_id, ts, fields)
    risk = event.get("requested_risk_abs")
    if risk is None:
        raise EventError("request_modify: `requested_risk_abs` (the order's new risk) is missing")
    try:  # (a close's `risk_abs` has the same checks, but for zero)
        units, _ = close_amounts(risk, None) if risk != 0 else (0, None)
    except EventError as exc:
        raise EventError(f"request_modify: requested_{exc}") from None
    assert units is not None
    return RequestModifyEvent(intent_id, risk, units, ts, fields)


REQUEST_TYPES = frozenset({"request_cancel", "request_modify"})

__all__ = [
    "REQUEST_TYPES",
    "Fields",
    "RequestCancelEvent",
    "RequestModifyEvent",
    "parse_request",
    "request_fields",
]

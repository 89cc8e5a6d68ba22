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

An order group (NautilusTrader's order lists and brackets) is decided all or none: ``group``
carries its id and its member intents, and ``cancel_group`` releases the remainder of every
live member (not decided, like ``cancel``)::

    {"type": "group", "group_id": "b1", "intents": [{...intent...}, {...}, {...}]}
    {"type": "cancel_group", "group_id": "b1", "timestamp": "..."}

Pure, like :mod:`.events` (which lists them in its ``Event`` union).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from ..engine.contracts import PortfolioIntent
from .fields import (
    EventError,
    Record,
    check_intent_id,
    close_amounts,
    parse_intent,
    parse_timestamp,
)

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


# How many intents a group may hold (a bracket is 3; an order list of Nautilus is any length,
# but every member is decided in one step under the lock).
MAX_GROUP = 64


class GroupEvent(NamedTuple):
    """An order group: its member intents, decided all or none (:mod:`.groups`)."""

    group_id: str
    intents: tuple[PortfolioIntent, ...]

    @property
    def timestamp(self) -> datetime:
        """The group's event time: its latest member's."""
        return max(i.timestamp for i in self.intents)

    def journal(self) -> Record:
        return {
            "type": "group",
            "group_id": self.group_id,
            "intents": [i.model_dump(mode="json", exclude_defaults=True) for i in self.intents],
        }


class CancelGroupEvent(NamedTuple):
    """Release the unfilled remainder of every live member of a group (not decided)."""

    group_id: str
    timestamp: datetime | None

    def journal(self) -> Record:
        ts = None if self.timestamp is None else self.timestamp.isoformat()
        return {"type": "cancel_group", "group_id": self.group_id, "timestamp": ts}


def parse_group(event: Mapping[str, Any], model: type[PortfolioIntent]) -> GroupEvent:
    """A group from its event dict; EventError naming the member that does not validate
    (a group is refused whole: it is decided whole)."""
    group_id = check_group_id(event.get("group_id"))
    raw = event.get("intents")
    if not isinstance(raw, list | tuple) or not 1 <= len(raw) <= MAX_GROUP:
        raise EventError(f"group {group_id}: `intents` must be a list of 1 to {MAX_GROUP} intents")
    members = []
    for n, item in enumerate(raw):
        try:
            members.append(parse_intent(item, model))
        except ValueError as exc:
            raise EventError(f"group {group_id}: intent {n + 1}: {exc}") from None
    ids = [m.intent_id for m in members]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise EventError(f"group {group_id}: intent id {twice[0]} appears twice")
    return GroupEvent(group_id, tuple(members))


def check_group_id(group_id: Any) -> str:
    """A group id: a string of 1 to 200 characters, as an intent id."""
    if not isinstance(group_id, str) or not 1 <= len(group_id) <= 200:
        raise EventError(f"group_id must be a string of 1 to 200 characters, got {group_id!r}")
    return group_id


def parse_order_event(
    event: Mapping[str, Any], model: type[PortfolioIntent] = PortfolioIntent
) -> RequestCancelEvent | RequestModifyEvent | GroupEvent | CancelGroupEvent:
    """The typed event of an order event dict (a request, a group, a group's cancel)."""
    kind = event.get("type")
    if kind == "group":
        return parse_group(event, model)
    if kind == "cancel_group":
        ts = event.get("timestamp")
        return CancelGroupEvent(
            check_group_id(event.get("group_id")), None if ts is None else parse_timestamp(ts)
        )
    return parse_request(event, model)


REQUEST_TYPES = frozenset({"request_cancel", "request_modify"})
ORDER_TYPES = REQUEST_TYPES | {"group", "cancel_group"}

__all__ = [
    "MAX_GROUP",
    "ORDER_TYPES",
    "REQUEST_TYPES",
    "CancelGroupEvent",
    "Fields",
    "GroupEvent",
    "RequestCancelEvent",
    "RequestModifyEvent",
    "check_group_id",
    "parse_group",
    "parse_order_event",
    "parse_request",
    "request_fields",
]

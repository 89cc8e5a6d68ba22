"""The workflow's input checks: each Update's payload parsed into the event's parts.

Validators and handlers share them, so an input the validator admits is parsed the
same way by the handler, and an input it refuses never enters history. They run in
the workflow sandbox: no I/O, only the pure checks of :mod:`policy_engine.control.events`.
The client builds the same payloads with :func:`request_target` and :func:`plain`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from temporalio.exceptions import ApplicationError

from ..control.events import (
    CloseEvent,
    check_equity,
    check_mark,
    check_mode,
    check_reason,
    json_default,
    optional_timestamp,
)
from ..engine.contracts import PortfolioIntent
from ..engine.policy import Policy, load_policy_text


def policy(text: str, path: str, expected_hash: str) -> Policy:
    try:
        policy = load_policy_text(text, path)
    except Exception as exc:
        raise ApplicationError(
            f"the policy does not load: {exc}", type="PolicyError", non_retryable=True
        ) from None
    if expected_hash and policy.content_hash != expected_hash:
        raise ApplicationError(
            f"policy text hash {policy.content_hash} does not match {expected_hash}",
            type="PolicyError",
            non_retryable=True,
        )
    return policy


def target(request: dict[str, Any]) -> tuple[str, datetime | None]:
    intent_id = request.get("intent_id")
    if not isinstance(intent_id, str) or not intent_id:
        raise ValueError("`intent_id` must be a non-empty string")
    return intent_id, optional_timestamp(request.get("timestamp"))


def close(request: dict[str, Any]) -> CloseEvent:
    """A close request as the core's event (its amounts and exit reason checked), stamped
    with the request's timestamp (None: the handler stamps it)."""
    intent_id, ts = target(request)
    risk, pnl, why = request.get("risk_abs"), request.get("realized_pnl"), request.get("reason")
    return CloseEvent.of(intent_id, ts, risk, pnl, why)


def equity(request: dict[str, Any]) -> tuple[float, float | None, datetime | None]:
    equity: Any = request.get("equity")
    peak: Any = request.get("peak_equity")
    check_equity(equity, peak)  # finite numbers >= 0 (peak optional), or EventError
    return (
        float(equity),
        None if peak is None else float(peak),
        optional_timestamp(request.get("timestamp")),
    )


def latch(request: dict[str, Any]) -> tuple[str, str, datetime | None]:
    name, reason = request.get("name"), request.get("reason") or ""
    if not isinstance(name, str) or not name:
        raise ValueError("`name` must be the name of a latch the policy declares")
    check_reason(reason)
    return name, reason, optional_timestamp(request.get("timestamp"))


def mark(request: dict[str, Any]) -> tuple[str, float, datetime | None]:
    """A mark request's symbol, price (checked as the core checks them) and timestamp."""
    symbol, price = check_mark(request.get("symbol"), request.get("price"))
    return symbol, price, optional_timestamp(request.get("timestamp"))


def mode(request: dict[str, Any]) -> tuple[str | None, str, datetime | None]:
    mode, reason = request.get("mode"), request.get("reason") or ""
    check_mode(mode)
    if not isinstance(reason, str):
        raise ValueError("`reason` must be text")
    return mode, reason, optional_timestamp(request.get("timestamp"))


def request_target(intent_id: str, timestamp: datetime | str | None) -> dict[str, Any]:
    """The payload of a cancel or close (the client side of :func:`target`)."""
    if not isinstance(intent_id, str) or not intent_id:
        raise ValueError("intent_id must be a non-empty string")
    ts = optional_timestamp(timestamp)
    return {"intent_id": intent_id, "timestamp": ts and ts.isoformat()}


BASE_FIELDS = frozenset(PortfolioIntent.model_fields)


def plain(raw: Any) -> Any:
    """``raw`` as JSON data (what a Query can carry): a value JSON cannot hold exactly (a
    NaN, an object) becomes ``None``, which the refusal reads as missing."""
    if not isinstance(raw, Mapping):
        return repr(raw)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[str(key)] = json.loads(json.dumps(value, default=json_default, allow_nan=False))
        except (TypeError, ValueError):
            out[str(key)] = None
    return out


__all__ = [
    "BASE_FIELDS",
    "equity",
    "latch",
    "mark",
    "mode",
    "plain",
    "policy",
    "request_target",
    "target",
]

"""Feeding event dicts (a journal's or an events file's lines) to a controller.

Each event type maps to the controller's public method, so that an event fed
here is admitted, journaled and applied exactly as the same call made in code.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..document.yaml_source import read_policy_bytes
from .events import EventError, Record, field, policy_from_event

if TYPE_CHECKING:
    from .controller import PortfolioController


def _read_file(path: str | Path) -> bytes:
    return read_policy_bytes(path)  # bounded: an events file may name any path


def apply_event(ctl: PortfolioController, event: Mapping[str, Any]) -> Record | None:
    """Apply ``event`` through ``ctl``; the decision record for an intent, else None."""
    kind = event.get("type")
    if kind == "intent":
        return ctl.decide(event)[1]
    if kind == "fill":
        ctl.on_fill_update(event)
    elif kind == "cancel":
        ctl.cancel_reservation(field(event, "intent_id"), event.get("timestamp"))
    elif kind == "close":
        ctl.close_position(
            field(event, "intent_id"),
            event.get("timestamp"),
            risk_abs=event.get("risk_abs"),
            realized_pnl=event.get("realized_pnl"),
        )
    elif kind == "equity":
        peak = event.get("peak_equity")
        ctl.update_equity(
            field(event, "equity", (int, float)), event.get("timestamp"), peak_equity=peak
        )
    elif kind == "mode":
        ctl.set_portfolio_mode(event.get("mode"), event.get("reason") or "", event.get("timestamp"))
    elif kind == "tick":
        ctl.advance_time(field(event, "timestamp", (str, datetime)))
    elif kind == "policy":
        ctl.use_policy(policy_from_event(event, _read_file))
    elif kind == "reset_latch":
        ctl.reset_latch(field(event, "name"), event.get("reason") or "", event.get("timestamp"))
    else:
        raise EventError(f"unknown event type {kind!r}")
    return None


__all__ = ["apply_event"]

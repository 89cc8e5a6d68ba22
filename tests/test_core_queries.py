"""The core's read-only helpers for shells: a refusal without an event, the next deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from policy_engine.control.core import ControlCore
from policy_engine.control.events import (
    CancelEvent,
    EquityEvent,
    FillEvent,
    FillUpdate,
    InvalidIntentEvent,
    TickEvent,
)
from policy_engine.engine.policy import load_policy

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _core() -> ControlCore:
    core = ControlCore(
        load_policy(Path(__file__).resolve().parent.parent / "policies" / "portfolio.yaml")
    )
    core.apply(EquityEvent(100_000, None, None))
    return core


def _intent(iid: str, risk: float = 500) -> dict[str, object]:
    return {
        "type": "intent",
        "intent_id": iid,
        "strategy": "BREAKOUT",
        "symbol": "BTC-USD",
        "side": "long",
        "requested_risk_abs": risk,
        "timestamp": T0.isoformat(),
    }


def test_invalid_decision_is_the_refusal_invalid_intent_makes_without_taking_an_event() -> None:
    core = _core()
    raw = {**_intent("bad"), "side": "up", "requested_risk_abs": float("nan")}
    seq, snap = core.seq, core.snapshot()
    quiet = core.invalid_decision(raw, "side: wrong")
    assert core.seq == seq and core.snapshot() == snap
    applied = core.apply(InvalidIntentEvent(raw, "side: wrong"), decide=True)
    assert core.seq == seq + 1 and applied.records[-1]["seq"] == seq  # numbered (older journals)
    assert quiet == applied.decision
    assert quiet.decision_code == "rejected_invalid_intent" and quiet.requested_risk_abs == 0.0
    assert core.invalid_decision("not a mapping", "x").intent_id == ""


def test_next_deadline_names_the_earliest_reservation_that_can_still_expire() -> None:
    core = _core()
    assert core.book.next_deadline() is None
    core.apply(_intent("a"))
    core.apply({**_intent("b"), "timestamp": (T0 + timedelta(seconds=10)).isoformat()})
    ttl = timedelta(seconds=300)
    assert core.book.next_deadline() == T0 + ttl
    fill = FillUpdate(intent_id="a", fill_id="f", filled_risk_abs=500, timestamp=T0)
    core.apply(FillEvent(fill))  # fully filled: nothing left of "a" to expire
    assert core.book.next_deadline() == T0 + timedelta(seconds=10) + ttl
    core.apply(CancelEvent("b", T0 + timedelta(seconds=11)))
    assert core.book.next_deadline() is None
    assert core.apply(TickEvent(T0 + timedelta(hours=1))).records == []  # and advance agrees

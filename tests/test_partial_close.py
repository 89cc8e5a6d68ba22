"""Partial closes (issue 11): `close_position(intent_id, ..., risk_abs=..., realized_pnl=...)`
and the `close` event take exactly `risk_abs` off the position; the last one ends it; a close
that cannot apply is answered, not journaled; the journal replays it exactly. The freed risk
through `policy run`: tests/limits/partial_close.*; the exact integers: tests/test_exactness.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from policy_engine import PortfolioController
from policy_engine.control.events import EventError, canonical
from policy_engine.control.replay import replay

LIMITS = Path(__file__).resolve().parent / "limits"
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def opened(risk: float = 1000, fill: float | None = 1000) -> tuple[PortfolioController, list[Any]]:
    journal: list[dict[str, Any]] = []
    ctl = PortfolioController(
        LIMITS / "partial_close.yaml", equity=100_000, journal=journal, clock=None
    )
    ctl.request_allocation(
        {
            "intent_id": "a",
            "strategy": "S",
            "symbol": "BTC-USD",
            "side": "short",
            "requested_risk_abs": risk,
            "timestamp": at(0),
        }
    )
    if fill is not None:
        ctl.on_fill_update(
            {"intent_id": "a", "fill_id": "f", "filled_risk_abs": fill, "timestamp": at(1)}
        )
    return ctl, journal


def test_a_partial_close_takes_off_exactly_its_risk_and_keeps_the_trade() -> None:
    ctl, journal = opened(risk=1000, fill=600)  # 600 filled, 400 still reserved
    rec = ctl.close_position("a", at(2), risk_abs=250.5, realized_pnl=-3.25)
    assert rec["status"] == "reduced"
    assert rec["released_active_risk_abs"] == 250.5
    assert rec["released_reserved_risk_abs"] == 0.0
    assert rec["remaining_active_risk_abs"] == 349.5
    assert rec["realized_pnl"] == -3.25
    state = ctl.get_portfolio_state()
    assert state["totals"]["active_risk"] == 349.5
    assert state["totals"]["reserved_risk"] == 400  # the reservation is untouched
    assert state["totals"]["short_risk"] == 749.5 and state["totals"]["net_risk"] == -749.5
    assert state["totals"]["active_trades"] == 1 and state["totals"]["open_positions"] == 1
    assert journal[-1] == {
        "type": "close",
        "intent_id": "a",
        "timestamp": at(2).isoformat(),
        "risk_abs": 250.5,
        "realized_pnl": -3.25,
    }


def test_the_close_that_takes_the_rest_ends_the_trade() -> None:
    ctl, _ = opened(risk=1000, fill=600)
    ctl.close_position("a", at(2), risk_abs=100)
    rec = ctl.close_position("a", at(3), risk_abs=500)
    assert rec["status"] == "closed"
    assert rec["released_active_risk_abs"] == 500 and rec["released_reserved_risk_abs"] == 400
    assert ctl.get_portfolio_state()["trades"] == []


@pytest.mark.parametrize(
    ("fill", "risk", "message"),
    [
        (600, 600.000001, "close of 600.000001 for a exceeds its position of 600.0"),
        (None, 1, "close of 1.0 for a: no position (no fill yet)"),
    ],
)
def test_a_close_the_position_cannot_give_is_answered_not_journaled(
    fill: float | None, risk: float, message: str
) -> None:
    ctl, journal = opened(fill=fill)
    before = len(journal)
    rec = ctl.close_position("a", at(2), risk_abs=risk)
    assert (rec["status"], rec["seq"], rec["message"]) == ("invalid", None, message)
    assert rec["before"] == rec["after"] and len(journal) == before


@pytest.mark.parametrize(
    ("risk", "pnl", "fragment"),
    [
        (0, None, "risk_abs must be above zero"),
        (-5, None, "risk_abs must be a number in [0, 1e+15]"),
        ("5", None, "risk_abs must be a number"),
        (None, float("nan"), "realized_pnl must be a number"),
        (None, True, "realized_pnl must be a number"),
        (None, 1e-7, "realized_pnl 1e-07 is below the 1e-6 grid"),
    ],
)
def test_malformed_close_amounts_are_refused(risk: Any, pnl: Any, fragment: str) -> None:
    ctl, journal = opened()
    before = len(journal)
    with pytest.raises(EventError, match=fragment.replace("[", r"\[").replace("+", r"\+")):
        ctl.close_position("a", at(2), risk_abs=risk, realized_pnl=pnl)
    assert len(journal) == before


def test_partial_closes_replay_exactly() -> None:
    records: list[dict[str, Any]] = []
    journal: list[dict[str, Any]] = []
    ctl = PortfolioController(
        LIMITS / "partial_close.yaml", equity=100_000, journal=journal, records=records, clock=None
    )
    for event in (LIMITS / "partial_close.jsonl").read_text().splitlines():
        ctl.apply(json.loads(event))
    live = [canonical(r) for r in records if r.get("seq") is not None]
    assert [canonical(r) for r in replay(journal, lifecycle=True)] == live
    assert sum(1 for e in journal if e["type"] == "close") == 3  # the refused one is not there

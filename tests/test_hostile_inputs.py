"""Hostile callers: every live call is all-or-nothing, and what is accepted replays exactly.

A property test drives a journaled controller with random call sequences mixing good
calls with hostile values (Decimals, strings and bytes where numbers and names belong,
booleans, NaN, infinities, 1.7e302, 10**400, timestamps of 0 or 9999, reused and unknown
intent ids, undeclared modes, giant equity). After every call: a refused call changed
neither the journal nor the state; request_allocation and on_fill_update never raised;
the other calls raised only EventError. At the end, replaying the journal reproduces
every record the live controller numbered, and the very same state.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine import PortfolioController, load_policy
from policy_engine.control.core import ControlCore
from policy_engine.control.events import EventError, canonical
from policy_engine.control.replay import replay, start

ROOT = Path(__file__).resolve().parent.parent
POLICY = load_policy(ROOT / "policies" / "strategy_limits.yaml")  # declares no risk_off mode
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)

HOSTILE_NUMBERS = [
    Decimal("1.5"),
    "1.5",
    b"1",
    True,
    math.nan,
    math.inf,
    -1.0,
    1.7e302,
    10**400,
    None,
]
HOSTILE_TIMES: list[Any] = [0, 1.5, "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "garbage"]
HOSTILE_NAMES: list[Any] = [b"SCALPER", None, "", "x" * 201, 7, ["SCALPER"]]


def _ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


@st.composite
def calls(draw: st.DrawFn) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    clock = 0.0
    for n in range(draw(st.integers(1, 40))):
        clock += draw(st.sampled_from([0, 1, 30, 200]))
        hostile = draw(st.booleans())
        kind = draw(
            st.sampled_from(
                ["intent", "intent", "fill", "cancel", "close", "equity", "mode", "tick"]
            )
        )
        iid = draw(st.sampled_from(["a", "b", "c", f"n{n}"]))
        if kind == "intent":
            intent: dict[str, Any] = {
                "intent_id": iid,
                "strategy": draw(st.sampled_from(["SCALPER", "MOMENTUM"])),
                "symbol": "BTC-USD",
                "side": draw(st.sampled_from(["long", "flat"])),
                "requested_risk_abs": draw(st.sampled_from([10, 250.5])),
                "timestamp": _ts(clock),
            }
            if hostile:
                key = draw(
                    st.sampled_from(["requested_risk_abs", "timestamp", "strategy", "reduce_only"])
                )
                intent[key] = draw(
                    st.sampled_from(
                        {
                            "requested_risk_abs": HOSTILE_NUMBERS,
                            "timestamp": HOSTILE_TIMES,
                            "strategy": HOSTILE_NAMES,
                            "reduce_only": ["yes", 1, "true", None],
                        }[key]
                    )
                )
            out.append(("intent", intent))
        elif kind == "fill":
            fill: dict[str, Any] = {
                "intent_id": iid,
                "fill_id": draw(st.sampled_from(["f1", "f2"])),
                "filled_risk_abs": draw(st.sampled_from([5, 10, 300])),
                "timestamp": _ts(clock),
            }
            if hostile:
                fill["filled_risk_abs"] = draw(st.sampled_from(HOSTILE_NUMBERS))
            out.append(("fill", fill))
        elif kind in ("cancel", "close"):
            target = draw(st.sampled_from(HOSTILE_NAMES)) if hostile else iid
            when = (
                draw(st.sampled_from(HOSTILE_TIMES))
                if hostile and draw(st.booleans())
                else _ts(clock)
            )
            out.append((kind, (target, when)))
        elif kind == "equity":
            value = (
                draw(st.sampled_from([*HOSTILE_NUMBERS, 1e16]))
                if hostile
                else draw(st.sampled_from([100_000, 94_000]))
            )
            out.append(("equity", (value, _ts(clock))))
        elif kind == "mode":
            mode = (
                draw(st.sampled_from(["risk_off", "panic", 3]))
                if hostile
                else draw(st.sampled_from([None, "normal"]))
            )
            out.append(("mode", (mode, _ts(clock))))
        else:
            out.append(("tick", draw(st.sampled_from(HOSTILE_TIMES)) if hostile else _ts(clock)))
    return out


def _call(ctl: PortfolioController, kind: str, payload: Any) -> None:
    if kind == "intent":
        ctl.request_allocation(payload)  # never raises
        return
    if kind == "fill":
        ctl.on_fill_update(payload)  # never raises
        return
    try:
        if kind == "cancel":
            ctl.cancel_reservation(*payload)
        elif kind == "close":
            ctl.close_position(*payload)
        elif kind == "equity":
            ctl.update_equity(*payload)
        elif kind == "mode":
            ctl.set_portfolio_mode(payload[0], "judge", payload[1])
        else:
            ctl.advance_time(payload)
    except EventError:
        pass  # a clear refusal; the checks below prove it changed nothing


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=calls())
def test_hostile_calls_are_all_or_nothing_and_the_journal_replays_exactly(
    sequence: list[tuple[str, Any]],
) -> None:
    journal: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    ctl = PortfolioController(POLICY, equity=100_000, journal=journal, records=records, clock=None)
    for kind, payload in sequence:
        lines, state = len(journal), json.dumps(ctl.core.snapshot(), sort_keys=True)
        _call(ctl, kind, payload)
        if len(journal) == lines:  # refused (or a no-op): nothing may have changed
            assert json.dumps(ctl.core.snapshot(), sort_keys=True) == state, (kind, payload)
    numbered = [canonical(r) for r in records if r.get("seq") is not None]
    assert [canonical(r) for r in replay(journal, lifecycle=True)] == numbered
    core, pending = start(iter(journal), None)
    assert not pending
    for event in journal[1:]:
        core.apply(event)
    assert core.snapshot() == ctl.core.snapshot()


def test_each_hostile_value_is_refused_with_a_clear_message_and_leaves_no_trace() -> None:
    journal: list[dict[str, Any]] = []
    ctl = PortfolioController(POLICY, equity=100_000, journal=journal, clock=None)
    good = {
        "intent_id": "g",
        "strategy": "SCALPER",
        "symbol": "BTC-USD",
        "side": "long",
        "requested_risk_abs": 10,
        "timestamp": _ts(0),
    }
    lines = len(journal)
    for key, value, fragment in [
        ("requested_risk_abs", Decimal("1.5"), "not a Decimal"),
        ("requested_risk_abs", 1.7e302, "less than or equal to"),
        ("requested_risk_abs", 10**400, "at most"),
        ("timestamp", 0, "not an integer"),
        ("timestamp", "9999-12-31T23:59:59Z", "[2000-01-01, 2200-01-01)"),
        ("strategy", b"SCALPER", "valid string"),
        ("reduce_only", "yes", "valid boolean"),
    ]:
        decision = ctl.request_allocation({**good, key: value})
        assert decision.decision_code == "rejected_invalid_intent"
        assert fragment in decision.reasons[0], decision.reasons
    with pytest.raises(EventError, match="intent_id must be a string"):
        ctl.close_position(None)  # type: ignore[arg-type]
    with pytest.raises(EventError, match=r"equity must be a number in \[0, 1e\+15\]"):
        ctl.update_equity(10**400)
    with pytest.raises(EventError, match="equity must be a number"):
        ctl.update_equity(Decimal("100000"))  # type: ignore[arg-type]
    with pytest.raises(EventError, match="outside"):
        ctl.advance_time("9999-12-31T23:59:59Z")
    # strategy_limits.yaml declares no risk_off: an override to it would broadcast risk_off
    # while the chain went on approving new risk.
    with pytest.raises(EventError, match="'risk_off' is not declared by policy strategy-limits"):
        ctl.set_portfolio_mode("risk_off", "judge", _ts(0))
    assert len(journal) == lines
    assert ctl.request_allocation(good).approved


def test_an_intent_stamped_far_ahead_of_the_clock_is_refused_and_cannot_expire_the_book() -> None:
    now = T0 + timedelta(seconds=10)
    ctl = PortfolioController(
        ROOT / "policies" / "portfolio.yaml", equity=100_000, clock=lambda: now
    )
    live = ctl.request_allocation(
        {
            "intent_id": "live",
            "strategy": "BREAKOUT",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": 500,
            "timestamp": _ts(0),
        }
    )
    assert live.approved
    future = ctl.request_allocation(
        {
            "intent_id": "rogue",
            "strategy": "BREAKOUT",
            "symbol": "ETH-USD",
            "side": "long",
            "requested_risk_abs": 5,
            "timestamp": "2099-01-01T00:00:00Z",
        }
    )
    assert future.decision_code == "rejected_clock_skew"
    assert "ahead of the clock" in future.reasons[0]
    state = ctl.get_portfolio_state()
    assert state["clock"] == _ts(0)  # the clock did not move
    assert state["totals"]["reserved_risk"] == 500.0  # nothing expired
    with pytest.raises(EventError, match="ahead of the clock"):
        ctl.advance_time("2099-01-01T00:00:00Z")


def test_a_replay_of_an_old_journal_still_decides_its_journaled_garbage() -> None:
    """Journals written before refusals stopped being journaled hold invalid intents and
    duplicates: replay still decides them, deterministically, in their place."""
    head: list[dict[str, Any]] = []
    PortfolioController(POLICY, equity=100_000, journal=head, clock=None)
    events = [
        *head,
        {"type": "intent", "intent_id": "x", "strategy": "SCALPER"},  # invalid
        {
            "type": "intent",
            "intent_id": "d",
            "strategy": "SCALPER",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": 10,
            "timestamp": _ts(0),
        },
        {
            "type": "intent",
            "intent_id": "d",
            "strategy": "SCALPER",
            "symbol": "BTC-USD",
            "side": "long",
            "requested_risk_abs": 10,
            "timestamp": _ts(1),
        },
    ]
    decided = list(replay(events))
    assert [(r["seq"], r["decision_code"]) for r in decided] == [
        (2, "rejected_invalid_intent"),
        (3, "approved_full"),
        (4, "rejected_duplicate_intent"),
    ]
    assert isinstance(ControlCore(POLICY), ControlCore)

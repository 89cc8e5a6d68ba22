"""Notional exposure and marks on the shared authority (issue 23 items 6 and 4): the same
events through PortfolioClient and the control workflow, across a continue-as-new, decide
as the in-process controller does, and the in-process core replaying the workflow's journal
reaches the workflow's snapshot exactly."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from policy_engine import PortfolioController
from policy_engine.control.events import canonical

from support.control import control_plane, eventually, replay_journal

COOKBOOK = Path(__file__).resolve().parent.parent / "docs" / "cookbook"


def _intent(iid: str, at: str, notional: float | None, **extra: Any) -> dict[str, Any]:
    return {
        "intent_id": iid,
        "strategy": "TREND",
        "symbol": extra.pop("symbol", "BTC-USDT-PERP"),
        "side": extra.pop("side", "long"),
        "requested_risk_abs": 500,
        "requested_notional_abs": notional,
        "timestamp": f"2026-01-05T09:00:{at}Z",
        **extra,
    }


NOTIONAL_STEPS: list[tuple[str, Any]] = [
    ("intent", _intent("t1", "01", 120_000)),
    (
        "fill",
        {
            "intent_id": "t1",
            "fill_id": "f1",
            "filled_risk_abs": 500,
            "timestamp": "2026-01-05T09:00:02Z",
        },
    ),
    ("intent", _intent("c1", "03", 100_000, side="short", symbol="ETH-USDT-PERP")),
    ("intent", _intent("t2", "04", 80_001)),
    ("intent", _intent("t3", "05", 80_000)),
    ("intent", _intent("none", "06", None)),
    ("cancel", ("c1", "2026-01-05T09:00:07Z")),
    ("intent", _intent("t4", "08", 150_000, template_id="resize")),
]


Steps = list[tuple[str, Any]]


def _local(recipe: str, steps: Steps) -> tuple[dict[str, str], list[Any], dict[str, Any]]:
    """The steps through an in-process controller: the decision codes by intent id, the
    other calls' answers (a mark's positions, a fill's or a cancel's status), the state."""
    ctl = PortfolioController(COOKBOOK / recipe, equity=100_000, clock=None)
    codes: dict[str, str] = {}
    answers: list[Any] = []
    for kind, payload in steps:
        if kind == "intent":
            codes[payload["intent_id"]] = ctl.request_allocation(payload).decision_code
        elif kind == "fill":
            answers.append(ctl.on_fill_update(payload)["status"])
        elif kind == "cancel":
            answers.append(ctl.cancel_reservation(*payload)["status"])
        else:
            answers.append(ctl.mark(*payload)["positions"])
    return codes, answers, ctl.get_portfolio_state()


async def _remote(caller: Any, steps: Steps) -> tuple[dict[str, str], list[Any]]:
    """The same steps through PortfolioClient; then waits for a continue-as-new."""
    codes: dict[str, str] = {}
    answers: list[Any] = []
    for kind, payload in steps:
        if kind == "intent":
            decision = await caller.request_allocation(payload)
            codes[payload["intent_id"]] = decision.decision_code
        elif kind == "fill":
            answers.append((await caller.on_fill_update(payload))["status"])
        elif kind == "cancel":
            answers.append((await caller.cancel_reservation(*payload))["status"])
        else:
            answers.append((await caller.mark(*payload))["positions"])

    async def continued() -> bool:
        return int((await caller.journal())["run"]) >= 2

    await eventually(continued, "a continue-as-new")
    return codes, answers


def _same_as_replayed(codes: dict[str, str], journal: Any, snapshot: Any) -> None:
    """The in-process core replaying the last run's journal reaches the workflow's
    snapshot and makes the decisions the callers got."""
    core, decisions = replay_journal(journal["events"], journal["origin"])
    assert canonical(core.snapshot()) == canonical(snapshot)
    assert all(codes[iid] == d["decision_code"] for iid, d in decisions.items())


def test_a_notional_cap_decides_on_the_workflow_as_in_process(temporal_address: str) -> None:
    policy = (COOKBOOK / "gross_exposure.yaml").read_text()

    async def scenario() -> tuple[Any, ...]:
        async with control_plane(
            temporal_address, "book-notional", policy=policy, events_per_run=4
        ) as caller:
            codes, answers = await _remote(caller, NOTIONAL_STEPS)
            state = await caller.get_portfolio_state()
            return codes, answers, state, await caller.journal(), await caller.snapshot()

    codes, answers, state, journal, snapshot = asyncio.run(scenario())
    assert (codes, answers) == _local("gross_exposure.yaml", NOTIONAL_STEPS)[:2]
    assert state["totals"] == _local("gross_exposure.yaml", NOTIONAL_STEPS)[2]["totals"]
    assert codes["t2"] == "rejected_gross_exposure" and codes["t3"] == "approved_full"
    assert codes["none"] == "rejected_eval_error"  # no notional: the cap cannot be checked
    assert codes["t4"] == "approved_clipped"
    # 120,000 filled + 80,000 pending + the clipped order's share of 150,000 (its risk
    # rounded down to the grid: 333.333333 of 500) stays within 3 x equity
    assert state["totals"]["gross_notional"] == 299_999.9999
    _same_as_replayed(codes, journal, snapshot)


DRAWDOWN_STEPS: list[tuple[str, Any]] = [
    ("intent", {**_intent("buy", "01", 1_000, symbol="AAPL"), "requested_risk_abs": 100}),
    (
        "fill",
        {
            "intent_id": "buy",
            "fill_id": "f1",
            "filled_risk_abs": 100,
            "price": 100,
            "timestamp": "2026-01-05T09:00:02Z",
        },
    ),
    ("mark", ("AAPL", 90, "2026-01-05T09:00:03Z")),
    ("intent", _intent("at-minus-100", "04", 500, symbol="AAPL")),
    ("mark", ("AAPL", 85, "2026-01-05T09:00:05Z")),
    ("mark", ("MSFT", 85, "2026-01-05T09:00:06Z")),
    ("intent", _intent("at-minus-150", "07", 500, symbol="AAPL")),
    ("intent", _intent("other", "08", 500, symbol="MSFT")),
]


def test_marks_decide_on_the_workflow_as_in_process(temporal_address: str) -> None:
    policy = (COOKBOOK / "security_drawdown.yaml").read_text()

    async def scenario() -> tuple[Any, ...]:
        async with control_plane(
            temporal_address, "book-marks", policy=policy, events_per_run=3
        ) as caller:
            codes, moved = await _remote(caller, DRAWDOWN_STEPS)
            # the same mark again (same content, same idempotency key): answered with its
            # first outcome, not applied twice (no event numbered for it)
            seq = (await caller.snapshot())["seq"]
            again = await caller.mark("AAPL", 85, "2026-01-05T09:00:05Z")
            assert again["positions"] == 1 and (await caller.snapshot())["seq"] == seq
            try:
                await caller.mark("AAPL", -1, "2026-01-05T09:00:09Z")
            except ValueError as exc:
                assert "price must be a number" in str(exc)
            else:
                raise AssertionError("a negative price must be refused")
            state = await caller.get_portfolio_state()
            return codes, moved, state, await caller.journal(), await caller.snapshot()

    codes, moved, state, journal, snapshot = asyncio.run(scenario())
    local_codes, local_moved, local_state = _local("security_drawdown.yaml", DRAWDOWN_STEPS)
    assert codes == local_codes and moved == local_moved == ["committed", 1, 1, 0]
    assert codes["at-minus-100"] == "approved_full"
    assert codes["at-minus-150"] == "rejected_security_drawdown"
    assert codes["other"] == "approved_full"
    assert state["totals"] == local_state["totals"]
    assert state["symbols"]["AAPL"]["unrealized_pnl"] == -150
    assert snapshot["marks"] == {"AAPL": 85.0, "MSFT": 85.0}
    _same_as_replayed(codes, journal, snapshot)


def _position(iid: str, at: str, **extra: Any) -> dict[str, Any]:
    return {**_intent(iid, at, None, symbol="AUD-USD"), "requested_risk_abs": 100_000, **extra}


REDUCE = {"side": "short", "reduce_only": True}
POSITION_STEPS: Steps = [
    ("intent", _position("custom", "01", position_id="CUSTOM-001", **REDUCE)),
    ("intent", _position("P-1", "02", requested_notional_abs=65_000)),  # 100,000 at 0.65
    (
        "fill",
        {
            "intent_id": "P-1",
            "fill_id": "f1",
            "filled_risk_abs": 100_000,
            "price": 0.65,
            "timestamp": "2026-01-05T09:00:03Z",
        },
    ),
    (
        "intent",
        _position("exceeds", "04", position_id="P-1", requested_risk_abs=100_000.01, **REDUCE),
    ),
    ("intent", _position("adds", "05", position_id="P-1", side="long", reduce_only=True)),
    ("mark", ("AUD-USD", 0.6, "2026-01-05T09:00:06Z")),
    ("intent", _position("to-a-loser", "07", position_id="P-1")),
    ("intent", _position("closes-all", "08", position_id="P-1", **REDUCE)),
]


def test_positions_by_id_decide_on_the_workflow_as_in_process(temporal_address: str) -> None:
    policy = (COOKBOOK / "positions_by_id.yaml").read_text()

    async def scenario() -> tuple[Any, ...]:
        async with control_plane(
            temporal_address, "book-positions", policy=policy, events_per_run=3
        ) as caller:
            codes, answers = await _remote(caller, POSITION_STEPS)
            state = await caller.get_portfolio_state()
            return codes, answers, state, await caller.journal(), await caller.snapshot()

    codes, answers, state, journal, snapshot = asyncio.run(scenario())
    local_codes, local_answers, local_state = _local("positions_by_id.yaml", POSITION_STEPS)
    assert (codes, answers) == (local_codes, local_answers)
    assert codes == {
        "custom": "rejected_unknown_position",
        "P-1": "approved_full",
        "exceeds": "rejected_reduce_only_position",
        "adds": "rejected_reduce_only_position",
        "to-a-loser": "rejected_add_to_position",  # 5 s in, and losing
        "closes-all": "approved_full",
    }
    assert state["totals"] == local_state["totals"]
    # marked at 0.60: 100,000 x 0.60 - 65,000; closed by nothing yet (a reduce-only intent
    # is a decision; the close event ends the position)
    assert state["symbols"]["AUD-USD"]["unrealized_pnl"] == -5_000
    _same_as_replayed(codes, journal, snapshot)

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


def _in_process() -> tuple[dict[str, str], dict[str, Any]]:
    ctl = PortfolioController(COOKBOOK / "gross_exposure.yaml", equity=100_000, clock=None)
    codes: dict[str, str] = {}
    for kind, payload in NOTIONAL_STEPS:
        if kind == "intent":
            codes[payload["intent_id"]] = ctl.request_allocation(payload).decision_code
        elif kind == "fill":
            ctl.on_fill_update(payload)
        else:
            ctl.cancel_reservation(*payload)
    return codes, ctl.get_portfolio_state()


def test_a_notional_cap_decides_on_the_workflow_as_in_process(temporal_address: str) -> None:
    policy = (COOKBOOK / "gross_exposure.yaml").read_text()

    async def scenario() -> tuple[dict[str, str], dict[str, Any], dict[str, Any], dict[str, Any]]:
        codes: dict[str, str] = {}
        async with control_plane(
            temporal_address, "book-notional", policy=policy, events_per_run=4
        ) as caller:
            for kind, payload in NOTIONAL_STEPS:
                if kind == "intent":
                    decision = await caller.request_allocation(payload)
                    codes[payload["intent_id"]] = decision.decision_code
                elif kind == "fill":
                    await caller.on_fill_update(payload)
                else:
                    await caller.cancel_reservation(*payload)

            async def continued() -> bool:
                return int((await caller.journal())["run"]) >= 2

            await eventually(continued, "a continue-as-new")
            state = await caller.get_portfolio_state()
            return codes, state, await caller.journal(), await caller.snapshot()

    codes, state, journal, snapshot = asyncio.run(scenario())
    local_codes, local_state = _in_process()
    assert codes == local_codes
    assert state["totals"] == local_state["totals"]
    assert codes["t2"] == "rejected_gross_exposure" and codes["t3"] == "approved_full"
    assert codes["none"] == "rejected_eval_error"  # no notional: the cap cannot be checked
    assert codes["t4"] == "approved_clipped"
    # 120,000 filled + 80,000 pending + the clipped order's share of 150,000 (its risk
    # rounded down to the grid: 333.333333 of 500) stays within 3 x equity
    assert state["totals"]["gross_notional"] == 299_999.9999
    core, decisions = replay_journal(journal["events"], journal["origin"])
    assert canonical(core.snapshot()) == canonical(snapshot)
    assert all(codes[iid] == d["decision_code"] for iid, d in decisions.items())

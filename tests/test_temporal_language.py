"""The language's live state on the shared authority: a zoned trading day, declared inputs,
rolling windows (counts, a sum of fills' fees and notional, a min of closes' P&L, a max of
their notional), daily counters, timed locks, latches, partial closes with realized P&L and
an explicit latch reset, all
through PortfolioClient and the control workflow, across a continue-as-new.

Judged twice: by the decisions each call gets (what the policy says), and by the
in-process core replaying the workflow's journal (the same events, the same decisions).
"""

from __future__ import annotations

import asyncio
from typing import Any

from policy_engine.control.events import canonical
from policy_engine.temporal import RequestRefused

from support.control import control_plane, eventually, replay_journal

# New York time: a session window, a trading day rolling over at 17:00 local (22:00 UTC in
# January), a 2-per-hour rate per strategy, a minimum reward/risk from a declared input,
# and a loss latch that stays set past the rollover until someone resets it.
POLICY = """\
api_version: policy-engine/v1
name: desk
version: 1
timezone: America/New_York
trading_day: {timezone: America/New_York, rollover: "17:00"}
inputs:
  expected_reward_abs: {type: number, default: null}
strategies:
  SCALPER: {max_trades: 10}
windows:
  trades_1h: {count: approvals, per: strategy, over: 1h}
  today: {count: requests, per: strategy, over: trading_day}
  stops_1h: {count: closes, per: strategy, over: 1h, reason: stoploss}
  fees_1h: {count: fills, per: strategy, over: 1h, sum: fee}
  traded_1h: {count: fills, per: strategy, over: 1h, sum: notional}
  unwound_1h: {count: closes, per: strategy, over: 1h, max: notional}
  worst_1h: {count: closes, per: strategy, over: 1h, min: realized_pnl}
locks:
  cooldown: {window: stops_1h, at_least: 1, for: 5m}
latches:
  stop:
    when: portfolio.day_realized_pnl <= -500
    until: reset
rules:
  - id: daily
    category: STRATEGY
    require: strategy.today < 7 and strategy.stops_1h < 5 and strategy.fees_1h < 100
      and strategy.traded_1h < 1e9 and strategy.unwound_1h < 1e9
      and strategy.worst_1h > -1000
    code: rejected_daily_orders
  - id: cooling
    category: STRATEGY
    require: not lock.cooldown
    code: rejected_cooldown
  - id: stopped
    category: PNL
    require: not latch.stop
    code: rejected_daily_loss
  - id: session
    category: CALENDAR
    require: in_window(intent.time, "09:30", "16:00")
    code: rejected_outside_session
  - id: reward-risk
    category: SIZE
    when: has(intent.expected_reward_abs)
    require: intent.expected_reward_abs >= 2 * intent.risk
  - id: rate
    category: STRATEGY
    require: strategy.trades_1h < 2
    on_reject: defer
    code: rejected_trade_rate
"""


def _intent(iid: str, at: str, risk: float = 400, **extra: Any) -> dict[str, Any]:
    return {
        "intent_id": iid,
        "strategy": "SCALPER",
        "symbol": "BTC-USD",
        "side": "long",
        "requested_risk_abs": risk,
        "timestamp": at,
        **extra,
    }


def test_time_inputs_windows_latches_and_partial_closes_on_the_workflow(
    temporal_address: str,
) -> None:
    async def scenario() -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        codes: dict[str, str] = {}
        async with control_plane(
            temporal_address, "language", policy=POLICY, events_per_run=6
        ) as caller:

            async def ask(iid: str, at: str, **extra: Any) -> None:
                decision = await caller.request_allocation(_intent(iid, at, **extra))
                codes[iid] = decision.decision_code

            day1 = "2026-01-06T"  # a Tuesday; 15:00Z is 10:00 in New York
            await ask(
                "a1", day1 + "15:00:00Z", expected_reward_abs=1_000, requested_notional_abs=2e4
            )
            await ask("low-reward", day1 + "15:01:00Z", expected_reward_abs=100)
            await ask("a2", day1 + "15:02:00Z")
            rate = await caller.request_allocation(_intent("rate", day1 + "15:03:00Z"))
            codes["rate"] = rate.decision_code  # a third approval within the hour: not now
            assert rate.context["retry_after"] == 3420, rate
            await ask("late", day1 + "21:30:00Z")  # 16:30 New York: the session is over
            # a declared input of the wrong type is refused by the workflow's policy
            bad = await caller.request_allocation(
                _intent("bad-input", day1 + "15:04:00Z", expected_reward_abs="lots")
            )
            codes["bad-input"] = bad.decision_code

            await caller.on_fill_update(
                {
                    "intent_id": "a1",
                    "fill_id": "f1",
                    "filled_risk_abs": 400,
                    "timestamp": day1 + "15:05:00Z",
                    "fee": 2.5,
                }
            )
            part = await caller.close_position(
                "a1", day1 + "15:10:00Z", risk_abs=100, realized_pnl=-300
            )
            assert part["status"] == "reduced", part
            state = await caller.get_portfolio_state()
            assert state["totals"]["active_risk"] == 300, codes
            assert state["latches"] == {}
            await caller.close_position(
                "a1", day1 + "15:20:00Z", realized_pnl=-250, reason="stoploss"
            )
            state = await caller.get_portfolio_state()
            # the partial close had no reason: only this one counts as a stoploss; the
            # closes' realized P&L and notional and the fill's fee and notional are kept
            # exactly, in micro-units
            logs = (await caller.snapshot())["windows"]["logs"]
            closes = [(r[1]["strategy"], r[2], r[3]) for r in logs["closes"]]
            assert closes == [
                ("SCALPER", None, {"realized_pnl": -300_000_000, "notional": 5_000_000_000}),
                ("SCALPER", "stoploss", {"realized_pnl": -250_000_000, "notional": 15_000_000_000}),
            ], closes
            assert [r[3] for r in logs["fills"]] == [
                {"fee": 2_500_000, "notional": 20_000_000_000}
            ], logs
            # the stoploss locks the strategy for 5 minutes from the event clock (21:30, the
            # latest time seen): retry after 3 of them
            cooling = await caller.request_allocation(_intent("cooling", day1 + "21:32:00Z"))
            codes["cooling"] = cooling.decision_code
            assert cooling.context["retry_after"] == 180, cooling
            assert "stop" in state["latches"]
            assert state["totals"]["active_risk"] == 0

            # the latch decides first (its rule comes first)
            await ask("stopped", day1 + "21:40:00Z")
            await ask("seventh", day1 + "21:42:00Z")  # seven requests decided today
            still = await caller.reset_latch("stop", "too early", day1 + "21:41:00Z")
            assert still["seq"] is None and still["status"] == "still_holds", still
            try:
                await caller.reset_latch("stpo", "typo")
            except RequestRefused as exc:
                assert "no latch 'stpo'" in str(exc)
            else:
                raise AssertionError("a reset of an undeclared latch must be refused")

            day2 = "2026-01-07T"  # past the 17:00 New York rollover: the day's P&L is 0
            await ask("next-day", day2 + "15:00:00Z")  # `until: reset` keeps it set
            done = await caller.reset_latch("stop", "reviewed by risk", day2 + "15:01:00Z")
            assert done["seq"] is not None, done
            await ask("after-reset", day2 + "15:02:00Z")

            async def continued() -> bool:
                return int((await caller.journal())["run"]) >= 2

            await eventually(continued, "a continue-as-new")
            return codes, await caller.journal(), await caller.snapshot()

    codes, journal, snapshot = asyncio.run(scenario())
    assert codes == {
        "a1": "approved_full",
        "low-reward": "rejected_reward_risk",
        "late": "rejected_outside_session",
        "a2": "approved_full",
        "rate": "deferred",  # a1's approval at 15:00 leaves the hour at 16:00
        "bad-input": "rejected_invalid_intent",
        "cooling": "rejected_cooldown",
        "stopped": "rejected_daily_loss",
        "seventh": "rejected_daily_orders",
        "next-day": "rejected_daily_loss",  # a new day: the daily count starts again
        "after-reset": "approved_full",
    }
    # The last run, replayed in this process from the snapshot it started with, ends in
    # the state the workflow holds: windows, latches and day values survived the carry.
    core, decisions = replay_journal(journal["events"], journal["origin"])
    assert canonical(core.snapshot()) == canonical(snapshot)
    assert all(codes[iid] == d["decision_code"] for iid, d in decisions.items())

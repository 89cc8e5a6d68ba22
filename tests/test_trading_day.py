"""The trading day and P&L (issue 11): `trading_day: {timezone, rollover}`, the rollover on
event time before the event that crosses it, `portfolio.day_start_equity`/`day_pnl`/
`day_realized_pnl`, and per-bucket realized P&L and loss streaks, exact and replayable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from policy_engine import load_policy_text
from policy_engine.control.core import ControlCore
from policy_engine.control.events import PolicyEvent, canonical

POLICY = """\
api_version: policy-engine/v1
name: days
version: 1
trading_day: {timezone: America/New_York, rollover: 17:00}
strategies:
  S: {max_trades: 10}
  T: {max_trades: 10}
cohorts:
  L1: [BTC-USD, ETH-USD]
rules:
  - id: pause-after-losses
    require: strategy.loss_streak < 2
"""
T0 = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)  # Friday 10:00 in New York (EST)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def core(text: str = POLICY) -> ControlCore:
    c = ControlCore(load_policy_text(text))
    c.apply({"type": "equity", "equity": 100_000, "timestamp": None})
    return c


def intent(iid: str, hours: float, strategy: str = "S", symbol: str = "BTC-USD") -> dict[str, Any]:
    return {
        "type": "intent",
        "intent_id": iid,
        "strategy": strategy,
        "symbol": symbol,
        "side": "long",
        "requested_risk_abs": 100,
        "timestamp": at(hours),
    }


def open_and_close(c: ControlCore, iid: str, hours: float, pnl: float, **kw: Any) -> None:
    c.apply(intent(iid, hours, **kw))
    c.apply(
        {
            "type": "fill",
            "intent_id": iid,
            "fill_id": "f",
            "filled_risk_abs": 100,
            "timestamp": at(hours),
        }
    )
    c.apply({"type": "close", "intent_id": iid, "realized_pnl": pnl, "timestamp": at(hours)})


def test_the_day_starts_with_the_first_equity_and_tracks_its_pnl() -> None:
    c = core()
    c.apply({"type": "equity", "equity": 98_500, "timestamp": at(1)})
    state = c.state
    assert (state.day_start_equity, state.day_pnl) == (100_000, -1_500)
    assert c.days.day is not None and c.days.day.isoformat() == "2026-03-05"  # before 17:00


def test_realized_pnl_and_loss_streaks_per_bucket_exactly() -> None:
    c = core()
    open_and_close(c, "a", 0, -10.1)
    open_and_close(c, "b", 0.1, -0.2, symbol="ETH-USD")
    open_and_close(c, "c", 0.2, 0, strategy="T")  # break-even: no streak change
    state = c.state
    assert state.day_pnl_units == -10_300_000 and state.day_realized_pnl == -10.3
    assert state.strategies["S"].loss_streak == 2
    assert "T" not in state.strategies  # a break-even close left it fresh: it was dropped
    assert state.symbols["BTC-USD"].loss_streak == 1
    assert state.cohorts["L1"].day_realized_pnl == -10.3
    record = c.apply(intent("d", 0.3)).records[-1]
    assert record["decision_code"] == "rejected_pause_after_losses"
    open_and_close(c, "e", 0.4, 5, strategy="T", symbol="ETH-USD")
    assert state.cohorts["L1"].loss_streak == 0  # a win ends the cohort's streak
    assert state.strategies["S"].loss_streak == 2  # not the strategy's: its own closes count


def test_the_rollover_happens_before_the_event_that_crosses_it() -> None:
    c = core()
    open_and_close(c, "a", 0, -10)
    open_and_close(c, "b", 0, -10)
    c.apply({"type": "equity", "equity": 99_000, "timestamp": at(1)})
    # Friday 17:00 in New York is 22:00 UTC: 7 hours after T0.
    before = c.apply(intent("c", 6.99)).records
    assert before[-1]["decision_code"] == "rejected_pause_after_losses"
    out = c.apply(intent("d", 7)).records
    assert [r["kind"] for r in out] == ["rollover", "decision"]
    assert out[0] == {
        "kind": "rollover",
        "seq": out[1]["seq"],
        "day": "2026-03-06",
        "previous_day": "2026-03-05",
        "previous_realized_pnl": -20.0,
        "day_start_equity": 99_000.0,
    }
    assert out[1]["decision_code"] == "approved_full"  # the streak started again
    assert (c.state.day_pnl, c.state.day_realized_pnl) == (0.0, 0.0)


def test_the_rollover_follows_daylight_saving_time() -> None:
    """New York moves to EDT on 8 March 2026: 17:00 is 21:00 UTC from then on."""
    c = core()
    c.apply({"type": "tick", "timestamp": "2026-03-09T20:59:59+00:00"})
    assert c.days.day is not None and c.days.day.isoformat() == "2026-03-08"
    out = c.apply({"type": "tick", "timestamp": "2026-03-09T21:00:00+00:00"}).records
    assert [r["kind"] for r in out] == ["rollover"]
    assert out[0]["day"] == "2026-03-09"


def test_a_quiet_weekend_rolls_over_once() -> None:
    c = core()
    assert c.apply({"type": "tick", "timestamp": at(0)}).records == []  # the first day: no roll
    out = c.apply({"type": "tick", "timestamp": "2026-03-10T14:00:00+00:00"}).records
    assert [(r["previous_day"], r["day"]) for r in out] == [("2026-03-05", "2026-03-09")]


def test_restored_mid_day_it_rolls_over_exactly_as_the_original() -> None:
    c = core()
    open_and_close(c, "a", 0, -10)
    restored = ControlCore.restore(c.snapshot())
    assert restored.snapshot() == c.snapshot()
    tail = [intent("x", 7), {"type": "close", "intent_id": "x", "timestamp": at(7.5)}]
    assert [canonical(r) for e in tail for r in restored.apply(e).records] == [
        canonical(r) for e in tail for r in c.apply(e).records
    ]


def test_a_reload_with_another_rollover_keeps_the_day_running() -> None:
    c = core()
    open_and_close(c, "a", 0, -10)
    c.apply(
        PolicyEvent(
            load_policy_text(
                POLICY.replace("version: 1", "version: 2").replace(
                    "rollover: 17:00", "rollover: 18:00"
                )
            )
        )
    )
    assert c.state.day_realized_pnl == -10  # no rollover on reload
    assert [r["kind"] for r in c.apply(intent("b", 7.5)).records] == ["decision"]  # 17:30
    assert [r["kind"] for r in c.apply(intent("c", 8)).records] == ["rollover", "decision"]

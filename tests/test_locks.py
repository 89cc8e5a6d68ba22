"""Timed locks (issue 22, item 1): a key locked after a window's count for it reached a
threshold, for a duration (its end rounded up to a candle), or until the rollover or a local
time; read as `lock.NAME`, a rejection by it reports `retry_after`; kept exactly by a
snapshot and a replay. Recipe: docs/cookbook/cooldown_lock*."""

from __future__ import annotations

from typing import Any

from policy_engine import PortfolioController, load_policy_text
from policy_engine.control.core import ControlCore
from policy_engine.control.events import PolicyEvent
from policy_engine.control.replay import replay

from support.events import intent
from support.loading import problems

POLICY = """\
api_version: policy-engine/v1
name: t
version: 1
timezone: Europe/Berlin
trading_day: {timezone: Europe/Berlin, rollover: "22:00"}
strategies:
  S: {max_trades: 10}
scopes:
  pair_side: {key: [intent.symbol, intent.side]}
windows:
  closes_any: {count: closes, per: symbol, over: 1m}
  stops: {count: losing_closes, per: pair_side, over: 1h, reason: stop_loss}
locks:
  cooldown: {window: closes_any, at_least: 1, for: 60m, round_to: 5m}
  guard: {window: stops, at_least: 2, until: rollover}
rules:
  - id: cooldown
    require: not lock.cooldown
  - id: guard
    require: not lock.guard
"""


def test_a_close_locks_its_symbol_until_the_next_candle_after_the_cooldown() -> None:
    """freqtrade's rounding: a close at 11:30 with a 60-minute cooldown on 5-minute candles
    locks until 12:35; the rejection says when (retry_after)."""
    journal: list[dict[str, Any]] = []
    ctl = PortfolioController(load_policy_text(POLICY), equity=1e6, journal=journal, clock=None)
    ctl.request_allocation(intent("a", "2026-01-05T11:00:00+00:00"))
    ctl.close_position("a", "2026-01-05T11:30:00+00:00")
    late = ctl.request_allocation(intent("b", "2026-01-05T12:34:59+00:00"))
    assert late.decision_code == "rejected_cooldown"
    assert late.context["retry_after"] == 1.0
    other = ctl.request_allocation(intent("c", "2026-01-05T12:00:00+00:00", symbol="ETH-USD"))
    assert other.decision_code == "approved_full"  # another symbol: not locked
    assert ctl.request_allocation(intent("d", "2026-01-05T12:35:00+00:00")).approved
    decisions = [r["decision_code"] for r in replay(journal)]
    assert decisions == ["approved_full", "rejected_cooldown", "approved_full", "approved_full"]


def test_two_stoplosses_lock_the_pair_and_side_until_the_rollover_and_a_snapshot_keeps_it() -> None:
    core = ControlCore(load_policy_text(POLICY))

    def ask(iid: str, at: str, **extra: Any) -> str:
        decision = core.apply({"type": "intent", **intent(iid, at, **extra)}, decide=True)
        assert decision.decision is not None
        return decision.decision.decision_code

    for iid in ("x1", "x2", "x3"):
        ask(iid, "2026-01-05T09:00:00+00:00")
    core.apply(
        {
            "type": "close",
            "intent_id": "x1",
            "realized_pnl": -1,
            "reason": "stop_loss",
            "timestamp": "2026-01-05T10:00:00+00:00",
        }
    )
    core.apply(
        {
            "type": "close",
            "intent_id": "x2",
            "realized_pnl": -1,
            "reason": "stop_loss",
            "timestamp": "2026-01-05T10:10:00+00:00",
        }
    )
    assert ask("short", "2026-01-05T11:30:00+00:00", side="short") == "approved_full"
    restored = ControlCore.restore(core.snapshot())
    assert restored.snapshot() == core.snapshot()
    # the cooldown (10:10 + 60m, up to 11:15) has ended; the guard holds until 22:00 Berlin
    assert restored.snapshot()["locks"] == [["guard", "BTC-USD|long", "2026-01-05T21:00:00+00:00"]]
    core = restored
    assert ask("long", "2026-01-05T20:59:59+00:00") == "rejected_guard"
    assert ask("next-day", "2026-01-05T21:00:00+00:00") == "approved_full"


def test_a_lock_names_a_declared_window_and_one_end() -> None:
    assert problems(
        """\
        windows:
          w: {count: closes, per: symbol, over: 1h}
        locks:
          b: {window: w, at_least: 1, for: 5m, until: rollover}
        rules: [{id: r, require: "true"}]
        """
    ) == ["t.yaml:7:3: PT111 lock `b` needs exactly one of `for` and `until`"]
    assert problems(
        """\
        windows:
          w: {count: closes, per: symbol, over: 1h}
        locks:
          a: {window: ww, at_least: 1, for: 5m}
        rules: [{id: r, require: "true"}]
        """
    ) == ["t.yaml:7:15: PT301 unknown window `ww` in lock `a` (did you mean `w`?)"]


def test_a_reload_keeps_a_lock_declared_alike_and_drops_one_that_changed() -> None:
    core = ControlCore(load_policy_text(POLICY))
    core.apply({"type": "intent", **intent("a", "2026-01-05T09:00:00+00:00")})
    core.apply({"type": "close", "intent_id": "a", "timestamp": "2026-01-05T09:10:00+00:00"})
    kept = POLICY.replace("version: 1", "version: 2")
    core.apply(PolicyEvent(load_policy_text(kept)))
    assert core.snapshot()["locks"] == [["cooldown", "BTC-USD", "2026-01-05T10:15:00+00:00"]]
    changed = kept.replace("version: 2", "version: 3").replace("for: 60m", "for: 30m")
    core.apply(PolicyEvent(load_policy_text(changed)))
    assert core.snapshot()["locks"] == []
    assert core.state.symbols["BTC-USD"].windows == {"closes_any": 1}  # no lock end left

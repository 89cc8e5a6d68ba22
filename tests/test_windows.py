"""Rolling windows (issue 11): each kind of count, per each namespace, on event time over
(t - over, t], with memory bounded by the events inside the window; kept across a reload
that does not change them and restored from a snapshot. The hourly limit through `policy run`:
tests/limits/hourly_trades.*."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from policy_engine import load_policy_text
from policy_engine.control.core import ControlCore
from policy_engine.control.events import PolicyEvent

from support.events import intent as make_intent
from support.loading import problems

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
POLICY = """\
api_version: policy-engine/v1
name: windows
version: 1
inputs:
  desk: {type: string, default: null}
strategies:
  S: {max_trades: 100, cap: 1_000}
scopes:
  desk: {key: intent.desk}
cohorts:
  L1: [BTC-USD, ETH-USD]
windows:
  asks: {count: requests, per: portfolio, over: 60s}
  fills_in: {count: approvals, per: strategy, over: 10m}
  refused: {count: rejections, per: cohort, over: 10m}
  closed: {count: closes, per: desk, over: 1h}
  losers: {count: losing_closes, per: symbol, over: 1h}
rules:
  - id: cap
    limit: strategy.cap
"""


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def intent(iid: str, s: float, risk: float = 100, **extra: Any) -> dict[str, Any]:
    return {"type": "intent", **make_intent(iid, at(s), requested_risk_abs=risk, **extra)}


def test_every_kind_is_counted_in_the_bucket_of_its_namespace() -> None:
    core = ControlCore(load_policy_text(POLICY))
    core.apply(intent("a", 0, desk="D1"))
    core.apply(intent("b", 1, risk=5_000))  # rejected by the cap
    core.apply({"type": "close", "intent_id": "a", "realized_pnl": -5, "timestamp": at(2)})
    state = core.state
    assert state.windows == {"asks": 2}
    assert state.strategies["S"].windows == {"fills_in": 1}
    assert state.cohorts["L1"].windows == {"refused": 1}
    assert state.scopes["desk"]["D1"].windows == {"closed": 1}
    assert state.symbols["BTC-USD"].windows == {"losers": 1}


def test_a_count_leaves_its_window_exactly_over_seconds_after_the_event() -> None:
    core = ControlCore(load_policy_text(POLICY))
    core.apply(intent("a", 0))
    core.apply({"type": "tick", "timestamp": at(59.999999)})
    assert core.state.windows == {"asks": 1}
    core.apply({"type": "tick", "timestamp": at(60)})
    assert core.state.windows == {}


def test_memory_is_bounded_by_the_events_inside_the_window() -> None:
    core = ControlCore(load_policy_text(POLICY))
    for n in range(2_000):
        core.apply(intent(f"i{n}", n * 7, risk=5_000))  # one request every 7 seconds
        assert len(core.windows.queues["asks"]) <= 9  # at most 60 / 7 + 1 inside
    assert core.state.windows["asks"] == len(core.windows.queues["asks"]) == 9


def test_a_reload_keeps_what_it_declares_alike_and_drops_the_rest() -> None:
    core = ControlCore(load_policy_text(POLICY))
    core.apply(intent("a", 0))
    changed = (
        POLICY.replace("version: 1", "version: 2")
        .replace("fills_in: {count: approvals, per: strategy, over: 10m}", "")
        .replace("over: 60s}", "over: 90s}")
    )
    core.apply(PolicyEvent(load_policy_text(changed)))
    assert core.state.windows == {}  # `asks` changed its length: it starts empty
    assert core.state.strategies["S"].windows == {}  # `fills_in` is gone
    assert core.state.cohorts["L1"].windows == {}
    core.apply(PolicyEvent(load_policy_text(changed.replace("version: 2", "version: 3"))))
    core.apply(intent("b", 1))
    assert core.state.windows == {"asks": 1}


def test_a_restored_core_counts_on_from_the_same_events() -> None:
    core = ControlCore(load_policy_text(POLICY))
    for n in range(5):
        core.apply(intent(f"i{n}", n * 20))
    snapshot = core.snapshot()
    assert [row[1] for row in snapshot["windows"]["asks"]] == ["", "", ""]  # 40s, 60s, 80s
    restored = ControlCore.restore(snapshot)
    assert restored.state.windows == core.state.windows == {"asks": 3}
    assert restored.state.strategies["S"].windows == {"fills_in": 5}
    assert restored.snapshot() == snapshot


def test_what_a_window_cannot_be_is_refused() -> None:
    head = (
        "scopes:\n  venue: {key: intent.playbook_id}\nwindows:\n"
        "  a: {count: approvals, per: venu, over: 1h}\n"
        "  heat: {count: approvals, per: strategy, over: 1h}\n"
    )
    assert problems(
        head
        + "  b: {count: requests, per: portfolio, over: 8d}\n"
        + "  c: {count: fills, per: portfolio, over: 1h}\n"
        + 'rules: [{id: r, require: "true"}]\n'
    ) == [
        "t.yaml:7:30: PT301 unknown name `venu` in `per` (portfolio, strategy, symbol, cohort "
        "or a scope) (did you mean `venue`?)",
        "t.yaml:8:3: PT309 `strategy.heat` is already a name of `strategy`: the window needs "
        "another name",
        "t.yaml:9:46: PT308 `windows.b.over`: a window of 8d is longer than 7d",
        "t.yaml:10:14: PT111 `windows.c.count` must be one of `approvals`, `requests`, "
        '`rejections`, `closes`, `losing_closes`, not `"fills"`',
    ]
    assert problems(head + "rules: [{id: r, require: venue.a < 3}]\n")[-1] == (
        "t.yaml:9:26: PT301 unknown name `venue.a` (did you mean `venue.name`?)"
    )


DAILY = """\
api_version: policy-engine/v1
name: daily
version: 1
timezone: Asia/Shanghai
trading_day: {rollover: "15:30"}
strategies:
  S: {max_trades: 100}
windows:
  today: {count: approvals, per: strategy, over: trading_day}
rules:
  - id: two-a-day
    require: strategy.today < 2
"""


def test_a_daily_window_counts_the_trading_day_and_starts_again_at_the_rollover() -> None:
    """`over: trading_day`: no expiry one by one; every count drops at the rollover (15:30
    in Shanghai is 07:30 UTC), and a snapshot carries the counts exactly."""
    core = ControlCore(load_policy_text(DAILY))
    t = datetime(2026, 1, 5, 1, tzinfo=UTC)  # 09:00 in Shanghai

    def ask(iid: str, hours: float) -> str:
        ts = (t + timedelta(hours=hours)).isoformat()
        decision = core.apply({"type": "intent", **make_intent(iid, ts)}, decide=True).decision
        assert decision is not None
        return decision.decision_code

    assert [ask("a", 0), ask("b", 1), ask("c", 6.49)] == [
        "approved_full",
        "approved_full",
        "rejected_two_a_day",
    ]
    assert core.windows.entries() == {"today": [[None, "S", 2]]}
    restored = ControlCore.restore(core.snapshot())
    assert restored.snapshot() == core.snapshot()
    assert restored.state.strategies["S"].windows == {"today": 2}
    assert ask("d", 6.5) == "approved_full"  # 15:30 local: a new trading day
    assert core.state.strategies["S"].windows == {"today": 1}
    assert core.windows.queues == {}  # nothing kept per event


def test_a_daily_window_is_declared_with_over_trading_day() -> None:
    assert problems(
        """\
        windows:
          w: {count: approvals, per: portfolio, over: trading_days}
        rules: [{id: r, require: portfolio.w < 3}]
        """
    ) == [
        't.yaml:5:47: PT111 `"trading_days"` is not a valid value for `windows.w.over`',
        "t.yaml:6:26: PT301 unknown name `portfolio.w` (did you mean `portfolio.heat`?)",
    ]


def test_the_boundary_decides_whether_an_event_exactly_over_ago_still_counts() -> None:
    """Open (the default): (t - 1s, t], the 4th order exactly 1 s after the first passes;
    closed: [t - 1s, t], it is refused, and one a microsecond later passes."""
    text = """\
api_version: policy-engine/v1
name: flow
version: 1
strategies:
  S: {max_trades: 100}
windows:
  flow: {count: approvals, per: portfolio, over: 1s%s}
rules:
  - id: three-a-second
    require: portfolio.flow < 3
"""

    def codes(boundary: str) -> list[str]:
        core = ControlCore(load_policy_text(text % boundary))
        out = []
        for iid, s in (("a", 0), ("b", 0.3), ("c", 0.6), ("d", 1), ("e", 1.000001)):
            decision = core.apply(intent(iid, s), decide=True).decision
            assert decision is not None
            out.append(decision.decision_code)
        return out

    ok, no = "approved_full", "rejected_three_a_second"
    assert codes("") == [ok, ok, ok, ok, no]  # d replaced a: b, c, d fill the next second
    assert codes(", boundary: open") == codes("")
    assert codes(", boundary: closed") == [ok, ok, ok, no, ok]

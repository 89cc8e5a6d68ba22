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
from policy_engine.document.budgets import evaluation_cost

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
        # at most 60 / 7 + 1 inside; the approvals of 10 minutes share no log with requests
        assert len(core.windows.logs["requests"]) <= 9
    assert core.state.windows["asks"] == len(core.windows.logs["requests"]) == 9


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
    # the requests log holds what `asks` holds: 40s, 60s, 80s
    assert [row[0] for row in snapshot["windows"]["logs"]["requests"]] == [at(40), at(60), at(80)]
    held = snapshot["windows"]["held"]
    assert held == {"asks": 3, "fills_in": 5, "closed": 0, "losers": 0, "refused": 0}
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
        + "  c: {count: orders, per: portfolio, over: 1h}\n"
        + 'rules: [{id: r, require: "true"}]\n'
    ) == [
        "t.yaml:7:30: PT301 unknown name `venu` in `per` (portfolio, strategy, symbol, cohort "
        "or a scope) (did you mean `venue`?)",
        "t.yaml:8:3: PT309 `strategy.heat` is already a name of `strategy`: the window needs "
        "another name",
        "t.yaml:9:46: PT308 `windows.b.over`: a window of 8d is longer than 7d",
        "t.yaml:10:14: PT111 `windows.c.count` must be one of `approvals`, `requests`, "
        "`rejections`, `fills`, `closes`, `losing_closes`, `cancels`, `cancel_requests`, "
        '`modify_requests`, not `"orders"`',
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
    assert core.windows.entries() == {"logs": {}, "held": {}, "daily": {"today": [["S", 2]]}}
    restored = ControlCore.restore(core.snapshot())
    assert restored.snapshot() == core.snapshot()
    assert restored.state.strategies["S"].windows == {"today": 2}
    assert ask("d", 6.5) == "approved_full"  # 15:30 local: a new trading day
    assert core.state.strategies["S"].windows == {"today": 1}
    assert core.windows.logs == {}  # nothing kept per event


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


AGGREGATES = """\
api_version: policy-engine/v1
name: aggregates
version: 1
strategies:
  S: {max_trades: 100}
windows:
  pnl: {count: closes, per: strategy, over: 1h, sum: realized_pnl}
  worst: {count: closes, per: strategy, over: 1h, min: realized_pnl}
  best: {count: closes, per: strategy, over: 1h, max: realized_pnl}
  fall: {count: closes, per: strategy, over: 1h, drawdown: realized_pnl}
  stops: {count: losing_closes, per: portfolio, over: 1h, sum: realized_pnl, reason: stop_loss}
rules:
  - id: fall
    require: strategy.fall < 25
"""
# Closes 10 s apart, the running total 10.1, -10.1, -5.05, -12.35, 17.65: its highest point
# 10.1, its lowest after it -12.35, a drawdown of 22.45.
PNLS = (10.1, -20.2, 5.05, -7.3, 30)


def aggregated(closes: tuple[float, ...] = PNLS) -> ControlCore:
    core = ControlCore(load_policy_text(AGGREGATES))
    for n in range(len(closes)):
        core.apply(intent(f"i{n}", 0))
    for n, pnl in enumerate(closes):
        reason = "stop_loss" if n < 2 else "roi"
        close = {"intent_id": f"i{n}", "realized_pnl": pnl, "reason": reason}
        core.apply({"type": "close", **close, "timestamp": at(10 * (n + 1))})
    return core


def test_a_window_sums_and_takes_the_least_most_and_drawdown_of_realized_pnl_exactly() -> None:
    core = aggregated()
    windows = core.state.strategies["S"].windows
    # exact: the sum is kept in micro-units (a float total would read 17.650000000000002)
    assert windows == {"pnl": 17.65, "worst": -20.2, "best": 30, "fall": 22.45}
    assert core.state.windows == {"stops": -20.2}  # a's close was a win: only b's counts
    core.apply({"type": "tick", "timestamp": at(3610)})  # a's close (at 10 s) has left
    # -20.2, -15.15, -22.45, 7.55: from the start (0) down to -22.45
    assert windows == {"pnl": 7.55, "worst": -20.2, "best": 30, "fall": 22.45}
    core.apply({"type": "tick", "timestamp": at(3620)})  # and b's
    # 5.05, -2.25, 27.75: down 7.3 from 5.05
    assert windows == {"pnl": 27.75, "worst": -7.3, "best": 30, "fall": 7.3}
    assert core.state.windows == {}
    core.apply({"type": "tick", "timestamp": at(3650)})  # every close has left
    assert windows == {}


def test_a_rule_reads_the_drawdown_and_a_close_without_pnl_adds_nothing() -> None:
    core = aggregated((-10, -20))
    core.apply({"type": "close", "intent_id": "gone", "timestamp": at(25)})  # unknown: no-op
    core.apply(intent("x", 30))
    assert core.state.strategies["S"].windows["fall"] == 30
    decision = core.apply(intent("y", 31), decide=True).decision
    assert decision is not None and decision.rule_id == "fall"
    core.apply({"type": "close", "intent_id": "x", "timestamp": at(32)})  # no realized_pnl
    assert core.state.strategies["S"].windows == {"pnl": -30, "worst": -20, "best": -10, "fall": 30}


def test_an_aggregate_window_is_restored_from_its_entries_with_their_quantities() -> None:
    core = aggregated()
    snapshot = core.snapshot()
    closes = snapshot["windows"]["logs"]["closes"]
    assert closes[0][1:] == [
        {"strategy": "S"},
        "stop_loss",
        {"realized_pnl": 10_100_000},
    ]  # micro-units
    assert closes[1][2] == "stop_loss"  # an exit reason is kept: `stops` filters on it
    assert snapshot["windows"]["logs"]["losing_closes"] == [
        [at(20), {}, "stop_loss", {"realized_pnl": -20_200_000}],
        [at(40), {}, "roi", {"realized_pnl": -7_300_000}],
    ]
    restored = ControlCore.restore(snapshot)
    assert restored.state.strategies["S"].windows == core.state.strategies["S"].windows
    assert restored.snapshot() == snapshot
    for c in (core, restored):
        c.apply({"type": "tick", "timestamp": at(3620)})
    assert restored.state.strategies["S"].windows == core.state.strategies["S"].windows
    assert restored.windows.sums == core.windows.sums == {"pnl": {"S": 27_750_000}, "stops": {}}


def test_what_an_aggregate_window_cannot_be_is_refused() -> None:
    head = "windows:\n"
    assert problems(
        head
        + "  a: {count: approvals, per: portfolio, over: 1h, sum: realized_pnl}\n"
        + "  b: {count: closes, per: portfolio, over: 1h, min: realized_pnl, max: realized_pnl}\n"
        + "  c: {count: closes, per: portfolio, over: trading_day, sum: realized_pnl}\n"  # fine
        + "  d: {count: closes, per: portfolio, over: 1h, drawdown: risk}\n"
        + 'rules: [{id: r, require: "true"}]\n'
    ) == [
        "t.yaml:5:56: PT312 `windows.a.sum`: approvals carry no `realized_pnl` (they carry "
        "`risk`, `notional`)",
        "t.yaml:6:67: PT111 `windows.b.max`: one aggregate per window, not `min` and `max`",
        "t.yaml:8:58: PT312 `windows.d.drawdown`: `risk` is never negative: its running total "
        "never falls, so its drawdown is always 0 (a drawdown reads realized_pnl)",
    ]
    assert problems(
        head
        + "  e: {count: closes, per: portfolio, over: 1h, drawdown: realized_pnl}\n"
        + "locks:\n  l: {window: e, at_least: 1, for: 1h}\n"
        + 'rules: [{id: r, require: "true"}]\n'
    ) == ["t.yaml:7:15: PT111 lock `l` needs a counting window, `e` aggregates"]


def test_the_budget_charges_an_aggregate_for_the_walk_it_makes() -> None:
    _total, parts = evaluation_cost(load_policy_text(AGGREGATES).checked)
    costs = {name: cost for name, cost in parts if name.startswith("windows.")}
    # a sum moves by the quantity too; a min or max keeps a monotonic deque, a drawdown a
    # two-stack queue: amortized constant work per event, none walks the window
    assert costs == {
        "windows.pnl": 3,
        "windows.worst": 4,
        "windows.best": 4,
        "windows.fall": 5,
        "windows.stops": 3,
    }

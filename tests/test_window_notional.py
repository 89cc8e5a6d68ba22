"""Windows over the notional of fills and closes (issue 22 item 2): a fill carries the
notional the book moved from its trade's reserved to its filled notional (the pro-rata
share, an overfill at the trade's notional per unit of risk, a late fill as absorbed), a
close the filled notional it took off; a trade without a notional gives none. Exact sums,
mins and maxes; the same after a snapshot is restored, and in a replay of the journal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from policy_engine import PortfolioController, load_policy_text
from policy_engine.control.core import ControlCore
from policy_engine.control.replay import replay, start

from support.events import intent as make_intent
from support.windowview import shown

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)

POLICY = """\
api_version: policy-engine/v1
name: notional
version: 1
strategies:
  S: {max_trades: 100, cap: 150}
  T: {max_trades: 100, cap: 1000}
windows:
  traded: {count: fills, per: strategy, over: 1h, sum: notional}
  smallest: {count: fills, per: portfolio, over: 1h, min: notional}
  largest: {count: fills, per: symbol, over: 1h, max: notional}
  unwound: {count: closes, per: strategy, over: 1h, sum: notional}
  lost: {count: losing_closes, per: portfolio, over: 1h, max: notional}
rules:
  - id: cap
    limit: strategy.cap - strategy.heat
    on_exceed: clip
  - id: turnover
    require: strategy.traded < 5000
"""


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def intent(iid: str, seconds: float, **fields: Any) -> dict[str, Any]:
    return {"type": "intent", **make_intent(iid, at(seconds), **fields)}


def fill(iid: str, fid: str, seconds: float, risk: float) -> dict[str, Any]:
    event = {"type": "fill", "intent_id": iid, "fill_id": fid, "filled_risk_abs": risk}
    return {**event, "timestamp": at(seconds)}


def close(iid: str, seconds: float, pnl: float, risk: float | None = None) -> dict[str, Any]:
    event = {"type": "close", "intent_id": iid, "realized_pnl": pnl, "timestamp": at(seconds)}
    return event if risk is None else {**event, "risk_abs": risk}


# a: 100 of risk for 3,000 of notional (30 a unit), filled 30 + 50 + 40 (20 over)
# b: 120 for 1,000, clipped to 50: 416.666666 reserved (rounded down), filled 20 + 30
# c: no notional: its fill and close carry none
OPENING = [
    intent("a", 0, requested_notional_abs=3_000),
    intent("b", 1, symbol="ETH-USD", requested_risk_abs=120, requested_notional_abs=1_000),
    intent("c", 2, strategy="T", requested_risk_abs=10),
    fill("a", "f1", 3, 30),  # 3,000 x 30 / 100 = 900
    fill("a", "f2", 4, 50),  # 2,100 x 50 / 70 = 1,500
    fill("a", "f3", 5, 40),  # the last 20 take the 600 left, the 20 over 30 a unit: 600
    fill("b", "g1", 6, 20),  # 416.666666 x 20 / 50, rounded down: 166.666666
    fill("b", "g2", 7, 30),  # the rest: 250
    fill("c", "h1", 8, 10),
]
UNWINDING = [
    close("a", 9, -5, risk=30),  # a partial close: 3,600 x 30 / 120 = 900
    close("a", 10, 10),  # the 2,700 left
    close("b", 11, -1),  # 416.666666
    close("c", 12, 2),
    fill("b", "g3", 13, 10),  # late: an orphan at b's 416.666666 / 50 a unit: 83.333333
    intent("d", 14, requested_risk_abs=10, requested_notional_abs=1_000),
    fill("d", "k1", 15, 10),  # 1,000: the strategy traded 5,099.999999
    intent("e", 16, requested_risk_abs=10, requested_notional_abs=1_000),
]


def test_fills_and_closes_carry_the_notional_the_book_moved() -> None:
    core = ControlCore(load_policy_text(POLICY))
    for event in OPENING:
        core.apply(event)
    s = core.state.strategies["S"]
    assert s.windows == {"traded": 4_016.666666}  # 900 + 1,500 + 1,200 + 416.666666
    assert s.active_notional_units == 4_016_666_666  # exactly what the fills moved
    assert core.state.windows == {"smallest": 166.666666}
    assert core.state.symbols["BTC-USD"].windows == {"largest": 1_500}
    assert core.state.symbols["ETH-USD"].windows == {"largest": 250}
    assert "T" not in core.state.strategies or not core.state.strategies["T"].windows
    codes = []
    for event in UNWINDING:
        decision = core.apply(event, decide=True).decision
        codes.append(None if decision is None else decision.decision_code)
        if event["timestamp"] == at(12):  # everything closed: all that was filled came off
            assert s.windows == {"traded": 4_016.666666, "unwound": 4_016.666666}
            assert s.active_notional_units == 0
            assert core.state.windows == {"smallest": 166.666666, "lost": 900}
    assert codes == [None] * 5 + ["approved_full", None, "rejected_turnover"]
    assert s.windows == {"traded": 5_099.999999, "unwound": 4_016.666666}
    assert core.state.windows == {"smallest": 83.333333, "lost": 900}
    assert core.state.symbols["BTC-USD"].windows == {"largest": 1_500}
    core.apply({"type": "tick", "timestamp": at(3_610.5)})  # a's fills and closes have left
    assert core.state.windows == {"smallest": 83.333333, "lost": 416.666666}
    assert s.windows == {"traded": 1_083.333333, "unwound": 416.666666}


def test_a_restored_snapshot_and_a_replay_show_the_same_notional_windows() -> None:
    journal: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    policy = load_policy_text(POLICY)
    ctl = PortfolioController(policy, equity=100_000, journal=journal, records=records, clock=None)
    twin: ControlCore | None = None
    for n, event in enumerate(OPENING + UNWINDING):
        if n == 5:  # halfway through a's fills
            twin = ControlCore.restore(ctl.core.snapshot())
            assert twin.snapshot() == ctl.core.snapshot()
        ctl.apply(event)
        if twin is not None:
            twin.apply(event)
            assert shown(twin) == shown(ctl.core), event
    assert twin is not None and twin.snapshot() == ctl.core.snapshot()
    replayed, pending = start(iter(journal), None)
    for logged in (*pending, *journal[1:]):
        replayed.apply(logged)
    assert shown(replayed) == shown(ctl.core)
    assert replayed.snapshot() == ctl.core.snapshot()
    decisions = [r["decision_code"] for r in records if r["kind"] == "decision" and r["seq"]]
    assert [r["decision_code"] for r in replay(journal)] == decisions
    assert decisions[-1] == "rejected_turnover"


def test_a_what_if_replay_reads_the_notional_an_old_journal_implies() -> None:
    """A journal written under a policy without notional windows holds the intents' notional
    and the fills: a what-if replay under the turnover rule decides with them."""
    plain = POLICY.replace("  - id: turnover\n    require: strategy.traded < 5000\n", "")
    journal: list[dict[str, Any]] = []
    ctl = PortfolioController(load_policy_text(plain), equity=100_000, journal=journal, clock=None)
    for event in OPENING + UNWINDING:
        ctl.apply(event)
    codes = [r["decision_code"] for r in replay(journal)]
    assert codes[-1] == "approved_full"
    what_if = [r["decision_code"] for r in replay(journal, load_policy_text(POLICY))]
    assert what_if[-1] == "rejected_turnover" and what_if[:-1] == codes[:-1]

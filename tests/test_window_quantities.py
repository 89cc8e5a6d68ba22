"""Windows over any quantity an event carries (issue 22 item 2) and compact windows (issue
19 item 3): sums, mins and maxes of intents' risk and notional, fills' risk and fees,
closes' risk; one shared log per kind of event; monotonic deques and a two-stack drawdown
checked against the plain definition; format 10's per-window queues migrated exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import given
from hypothesis import strategies as st

from policy_engine import PortfolioController, load_policy_text
from policy_engine.control.core import ControlCore
from policy_engine.control.events import PolicyEvent
from policy_engine.control.lines import checkpoint_body
from policy_engine.control.replay import replay
from policy_engine.control.rolling import Drawdown, Extreme

from support.events import intent as make_intent
from support.hostile import week_of_windows
from support.loading import problems
from support.windowview import shown

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "tests" / "fixtures" / "snapshots"
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


QUANTITIES = """\
api_version: policy-engine/v1
name: quantities
version: 1
strategies:
  S: {max_trades: 100, cap: 150}
windows:
  asked: {count: requests, per: strategy, over: 1h, sum: risk}
  asked_notional: {count: requests, per: strategy, over: 1h, max: notional}
  took: {count: approvals, per: strategy, over: 1h, sum: risk}
  took_notional: {count: approvals, per: strategy, over: 1h, sum: notional}
  refused: {count: rejections, per: portfolio, over: 1h, sum: risk}
  filled: {count: fills, per: symbol, over: 1h, sum: risk}
  fees: {count: fills, per: strategy, over: 1h, sum: fee}
  smallest_fill: {count: fills, per: portfolio, over: 1h, min: risk}
  closed: {count: closes, per: strategy, over: 1h, sum: risk}
rules:
  - id: cap
    limit: strategy.cap - strategy.heat
    on_exceed: clip
  - id: fees
    require: strategy.fees < 10
"""


def intent(iid: str, seconds: float, risk: float, **fields: Any) -> dict[str, Any]:
    return {"type": "intent", **make_intent(iid, at(seconds), requested_risk_abs=risk, **fields)}


def fill(iid: str, fid: str, seconds: float, risk: float, **fields: Any) -> dict[str, Any]:
    event = {"type": "fill", "intent_id": iid, "fill_id": fid, "filled_risk_abs": risk}
    return {**event, "timestamp": at(seconds), **fields}


def test_intents_fills_and_closes_are_summed_by_the_quantity_each_carries() -> None:
    core = ControlCore(load_policy_text(QUANTITIES))
    core.apply(intent("a", 0, 100, requested_notional_abs=2_000))
    # clipped to 50 of 120: its approved notional is scaled down (3000 * 50 / 120 = 1250)
    core.apply(intent("b", 1, 120, requested_notional_abs=3_000))
    core.apply(intent("c", 2, 40))  # no headroom: rejected, no notional given
    strategy = core.state.strategies["S"].windows
    assert strategy["asked"] == 260 and strategy["asked_notional"] == 3_000
    assert strategy["took"] == 150 and strategy["took_notional"] == 3_250
    assert core.state.windows["refused"] == 40
    core.apply(fill("a", "f1", 3, 60, fee=1.25))
    core.apply(fill("a", "f2", 4, 40, fee=-0.05))  # a rebate
    core.apply(fill("b", "f3", 5, 50))  # no fee: adds no fee, but its risk
    assert core.state.symbols["BTC-USD"].windows["filled"] == 150
    assert strategy["fees"] == 1.2 and core.state.windows["smallest_fill"] == 40
    core.apply({"type": "close", "intent_id": "a", "risk_abs": 30, "timestamp": at(6)})
    core.apply({"type": "close", "intent_id": "b", "timestamp": at(7)})
    assert strategy["closed"] == 80  # 30 taken off a, then b's 50
    core.apply({"type": "tick", "timestamp": at(3603)})  # f1 and the intents have left
    assert core.state.windows == {"smallest_fill": 40}
    assert strategy == {"fees": -0.05, "closed": 80}


def test_a_fee_is_journaled_only_when_given_fits_both_schemas_and_replays() -> None:
    journal: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    policy = load_policy_text(QUANTITIES)
    ctl = PortfolioController(policy, equity=100_000, journal=journal, records=records, clock=None)
    ctl.request_allocation(make_intent("a", at(0)))
    assert ctl.on_fill_update(fill("a", "f1", 1, 60, fee=9.5))["status"] == "committed"
    assert ctl.on_fill_update(fill("a", "f2", 2, 40))["status"] == "committed"
    assert ctl.on_fill_update(fill("a", "f3", 2, 1, fee="1"))["status"] == "invalid"
    fills = [e for e in journal if e["type"] == "fill"]
    assert [e.get("fee") for e in fills] == [9.5, None]
    assert "fee" not in fills[1]  # a fill without one is written as before fees existed
    for name in ("events", "journal"):
        schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
        for event in fills:
            jsonschema.validate(event, schema)
    assert (
        ctl.request_allocation(make_intent("b", at(3), requested_risk_abs=10)).decision_code
        == "approved_full"
    )
    ctl.on_fill_update(fill("b", "g1", 4, 10, fee=0.5))  # the fees reach 10
    assert (
        ctl.request_allocation(make_intent("c", at(5), requested_risk_abs=10)).decision_code
        == "rejected_fees"
    )
    decisions = [r for r in records if r["kind"] == "decision" and r["seq"]]
    assert [r["decision_code"] for r in replay(journal)] == [r["decision_code"] for r in decisions]


def test_a_quantity_an_event_does_not_carry_is_a_pt312() -> None:
    head = "windows:\n"
    assert problems(
        head
        + "  a: {count: fills, per: portfolio, over: 1h, sum: realized_pnl}\n"
        + "  b: {count: closes, per: portfolio, over: 1h, max: fee}\n"
        + "  c: {count: approvals, per: portfolio, over: 1h, drawdown: notional}\n"
        + 'rules: [{id: r, require: "true"}]\n'
    ) == [
        "t.yaml:5:52: PT312 `windows.a.sum`: fills carry no `realized_pnl` (they carry `risk`, "
        "`fee`, `notional`)",
        "t.yaml:6:53: PT312 `windows.b.max`: closes carry no `fee` (they carry `realized_pnl`, "
        "`risk`, `notional`)",
        "t.yaml:7:61: PT312 `windows.c.drawdown`: `notional` is never negative: its running "
        "total never falls, so its drawdown is always 0 (a drawdown reads realized_pnl)",
    ]


@given(st.lists(st.integers(-1_000, 1_000), min_size=1, max_size=40), st.integers(1, 8))
def test_the_rolling_structures_equal_the_definition_on_every_window(
    values: list[int], width: int
) -> None:
    """Over a sliding window of ``width`` entries: the monotonic deques give the least and
    largest, the two-stack queue the largest fall of the running total from 0."""
    least, most, fall = Extreme(True), Extreme(False), Drawdown()
    for n, units in enumerate(values):
        for s in (least, most):
            s.push(n, units)
        fall.push(units)
        if n >= width:
            for s in (least, most):
                s.leave(n - width)
            fall.leave()
        inside = values[max(0, n - width + 1) : n + 1]
        total = peak = drop = 0
        for u in inside:
            total += u
            peak = max(peak, total)
            drop = max(drop, peak - total)
        assert (least.value(), most.value(), fall.value()) == (min(inside), max(inside), drop)


MANY = "".join(
    f"  w{n}: {{count: approvals, per: {('portfolio', 'strategy', 'symbol')[n % 3]}, over: "
    f"{n + 1}m}}\n"
    for n in range(20)
)


def test_windows_of_one_kind_share_one_log_and_a_reload_starts_a_new_one_empty() -> None:
    text = (
        "api_version: policy-engine/v1\nname: many\nversion: 1\nstrategies:\n  S: {max_trades: "
        "1000}\nwindows:\n" + MANY + 'rules: [{id: r, require: "true"}]\n'
    )
    core = ControlCore(load_policy_text(text))
    for n in range(30):
        core.apply(intent(f"i{n}", 10 * n, 1))
    log = core.windows.logs["approvals"]
    assert len(log) == 30  # one entry per event, not one per window and event
    assert core.state.windows["w0"] == 6 and core.state.windows["w18"] == 30  # 1 and 19 min
    core.apply({"type": "tick", "timestamp": at(20 * 60 + 300)})
    assert len(log) == 0 and core.state.windows == {}  # every window left them: forgotten
    for n in range(3):
        core.apply(intent(f"j{n}", 1600 + n, 1))
    grown = text.replace("version: 1", "version: 2").replace(
        "rules:", "  n: {count: approvals, per: portfolio, over: 1h}\nrules:"
    )
    core.apply(PolicyEvent(load_policy_text(grown)))
    core.apply(intent("k", 1610, 1))
    assert core.state.windows["n"] == 1 and core.state.windows["w18"] == 4
    restored = ControlCore.restore(core.snapshot())
    assert restored.state.windows == core.state.windows
    assert restored.snapshot() == core.snapshot()


def test_format_10s_queues_migrate_to_the_shared_logs_and_leave_when_they_did() -> None:
    """tests/fixtures/snapshots/windows10.py recorded, with the release that wrote format 10,
    a snapshot of several windows of one kind and what they showed after each later event;
    the migrated core shows the same, and holds what a replay of the events holds."""
    old = json.loads((SNAPSHOTS / "windows-10.json").read_text())
    assert old["format"].endswith("/10")
    core = ControlCore.restore(old)
    snap = core.snapshot()
    assert ControlCore.restore(snap).snapshot() == snap
    events = [json.loads(line) for line in (SNAPSHOTS / "windows-10.events.jsonl").open()]
    replayed = ControlCore(core.policy)
    for event in events:
        replayed.apply(event)
    assert core.windows.view() == replayed.windows.view()  # `policy replay --verify` agrees
    for step in json.loads((SNAPSHOTS / "windows-10.after.json").read_text()):
        core.apply(step["event"])
        replayed.apply(step["event"])
        assert shown(core) == step["windows"] == shown(replayed), step["event"]


def test_policy_run_shows_a_fills_fee(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from policy_engine.cli import cli

    (tmp_path / "p.yaml").write_text(QUANTITIES)
    events = [intent("a", 0, 100), fill("a", "f1", 1, 60, fee=1.25), fill("a", "f2", 2, 40)]
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    out = CliRunner().invoke(cli, ["run", str(tmp_path / "p.yaml"), str(tmp_path / "e.jsonl")])
    assert "#2 fill f1 a COMMITTED 60, fee 1.25" in out.output, out.output
    assert "#3 fill f2 a COMMITTED 40\n" in out.output


def test_a_hundred_windows_of_a_week_keep_one_entry_per_event_and_a_small_checkpoint() -> None:
    """Issue 19's hostile volume, scaled down: 100 windows of 7 days over 2,000 intents of a
    week (each approved and closed). One log entry per approval, not one per window and
    approval; the windows take about 100 bytes per event in a checkpoint line (100 queues
    wrote ~4.4 KB per intent: ~8.8 MB here)."""
    text, events = week_of_windows(100, 2_000)
    core = ControlCore(load_policy_text(text))
    for event in events:
        core.apply(event)
    assert len(core.windows.logs["approvals"]) == 2_000  # all still inside every window
    assert core.state.windows["w0"] == 2_000
    line = checkpoint_body({"type": "checkpoint", "snapshot": core.checkpoint()})
    snapshot = json.loads(line)["snapshot"]
    assert snapshot == core.snapshot()
    assert len(json.dumps(snapshot["windows"])) < 250_000


def test_a_what_if_replay_reads_the_fees_an_old_journal_recorded() -> None:
    """A journal written under a policy without fee windows still holds each fill's fee: a
    what-if replay under the fee budget decides with it."""
    journal: list[dict[str, Any]] = []
    plain = load_policy_text(
        QUANTITIES.replace("  - id: fees\n    require: strategy.fees < 10\n", "")
    )
    ctl = PortfolioController(plain, equity=100_000, journal=journal, clock=None)
    ctl.request_allocation(make_intent("a", at(0), requested_risk_abs=10))
    ctl.on_fill_update(fill("a", "f1", 1, 10, fee=12))
    later = ctl.request_allocation(make_intent("b", at(2), requested_risk_abs=10))
    assert later.decision_code == "approved_full"
    codes = [r["decision_code"] for r in replay(journal, load_policy_text(QUANTITIES))]
    assert codes == ["approved_full", "rejected_fees"]


DAILY = """\
api_version: policy-engine/v1
name: daily-aggregates
version: 1
trading_day: {timezone: UTC, rollover: "22:00"}
strategies:
  S: {max_trades: 100}
windows:
  day_fees: {count: fills, per: strategy, over: trading_day, sum: fee}
  day_worst: {count: closes, per: portfolio, over: trading_day, min: realized_pnl}
  day_fall: {count: closes, per: strategy, over: trading_day, drawdown: realized_pnl}
rules:
  - id: fees
    require: strategy.day_fees < 10
"""


def test_a_daily_aggregate_keeps_its_exact_value_until_the_rollover() -> None:
    """`over: trading_day` with `sum`, `min` or `drawdown`: nothing leaves before the
    rollover, so each key keeps one exact number (three for a drawdown); a snapshot carries
    them and the rollover starts them again."""
    core = ControlCore(load_policy_text(DAILY))
    for n, pnl in enumerate((10.1, -20.2, 5.05)):
        core.apply(intent(f"i{n}", n, 10))
        core.apply(fill(f"i{n}", "f", n + 0.5, 10, fee=3.3))
        close = {"type": "close", "intent_id": f"i{n}", "realized_pnl": pnl}
        core.apply({**close, "timestamp": at(n + 0.75)})
    assert core.state.strategies["S"].windows == {"day_fees": 9.9, "day_fall": 20.2}
    assert core.state.windows == {"day_worst": -20.2}
    daily = core.snapshot()["windows"]["daily"]
    assert daily["day_fees"] == [["S", 9_900_000]]
    assert daily["day_fall"] == [["S", -5_050_000, 10_100_000, 20_200_000]]
    restored = ControlCore.restore(core.snapshot())
    assert restored.snapshot() == core.snapshot()
    for c in (core, restored):
        c.apply(intent("j", 4, 10))
        c.apply(fill("j", "f", 5, 10, fee=0.1))  # 10.0: the budget is spent
        decision = c.apply(intent("k", 6, 10), decide=True).decision
        assert decision is not None and decision.decision_code == "rejected_fees"
        c.apply({"type": "tick", "timestamp": "2026-01-05T22:00:00+00:00"})  # the rollover
        assert c.state.windows == {} and c.state.strategies["S"].windows == {}
        assert c.windows.today == {"day_fees": {}, "day_worst": {}, "day_fall": {}}

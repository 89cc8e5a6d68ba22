"""Marks and unrealized P&L (issue 23 item 4): a fill's price gives a position its quantity, a
`mark` revalues the priced positions of its symbol only (per position, symbol, strategy and
portfolio, exactly), each bucket's drawdown from its peak follows, and every shell agrees: the
journal replays (and a what-if replays with another policy), a snapshot restores exactly,
`policy run` and `policy test` take marks from events files, the gauge shows the P&L. Through
Temporal: tests/test_temporal_book.py; LEAN's numbers: docs/cookbook/security_drawdown_test.yaml.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest

from policy_engine import PortfolioController
from policy_engine.cli import cli
from policy_engine.control.core import ControlCore
from policy_engine.control.events import EventError
from policy_engine.control.lines import checkpoint_body
from policy_engine.control.marks import revalue_symbol
from policy_engine.control.metrics import ControlMetrics
from policy_engine.control.replay import replay

COOKBOOK = Path(__file__).resolve().parent.parent / "docs" / "cookbook"
POLICY = COOKBOOK / "security_drawdown.yaml"
T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def intent(iid: str, seconds: float, **kw: Any) -> dict[str, Any]:
    return {
        "intent_id": iid,
        "strategy": kw.pop("strategy", "FRAMEWORK"),
        "symbol": kw.pop("symbol", "AAPL"),
        "side": kw.pop("side", "long"),
        "requested_risk_abs": kw.pop("risk", 100),
        "requested_notional_abs": kw.pop("notional", 1_000),
        "timestamp": at(seconds),
        **kw,
    }


def fill(iid: str, fid: str, risk: float, seconds: float, price: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"intent_id": iid, "fill_id": fid, "filled_risk_abs": risk}
    out["timestamp"] = at(seconds)
    if price is not None:
        out["price"] = price
    return out


def opened(journal: list[dict[str, Any]] | None = None, **kw: Any) -> PortfolioController:
    ctl = PortfolioController(POLICY, equity=100_000, journal=journal, clock=None, **kw)
    assert ctl.request_allocation(intent("long", 1)).approved
    ctl.on_fill_update(fill("long", "f1", 100, 2, 100))  # 10 at 100
    assert ctl.request_allocation(intent("short", 3, side="short", notional=2_000)).approved
    ctl.on_fill_update(fill("short", "g1", 50, 4, 200))  # half: 1,000 notional, 5 at 200
    return ctl


def pnl(ctl: PortfolioController) -> tuple[float, float, dict[str, float]]:
    state = ctl.get_portfolio_state()
    trades = {t["intent_id"]: t["unrealized_pnl"] for t in state["trades"]}
    return state["totals"]["unrealized_pnl"], state["symbols"]["AAPL"]["unrealized_pnl"], trades


def test_a_mark_revalues_long_and_short_positions_exactly() -> None:
    ctl = opened()
    assert pnl(ctl) == (0, 0, {"long": 0, "short": 0})  # no mark yet: at their entries
    rec = ctl.mark("AAPL", 101.25, at(5))
    assert rec["kind"] == "mark" and rec["positions"] == 2
    # long 10 x 101.25 - 1,000 = +12.5; short 1,000 - 5 x 101.25 = +493.75
    assert pnl(ctl) == (506.25, 506.25, {"long": 12.5, "short": 493.75})
    # a fill of the short's rest at a new price: its quantity grows by 1,000 / 100 = 10
    ctl.on_fill_update(fill("short", "g2", 50, 6, 100))
    assert pnl(ctl)[2]["short"] == 2_000 - 15 * 101.25


def test_a_mark_touches_only_its_symbol_and_a_close_takes_the_pnl_out() -> None:
    ctl = opened()
    assert ctl.request_allocation(intent("msft", 5, symbol="MSFT")).approved
    ctl.on_fill_update(fill("msft", "m1", 100, 6, 50))
    assert ctl.mark("TSLA", 10, at(7))["positions"] == 0  # nothing priced in TSLA
    assert ctl.mark("MSFT", 45, at(8))["positions"] == 1  # AAPL's two are not looked at
    state = ctl.get_portfolio_state()
    assert state["symbols"]["MSFT"]["unrealized_pnl"] == -100
    assert state["symbols"]["AAPL"]["unrealized_pnl"] == 0  # not marked: at their entries
    ctl.close_position("msft", at(9), risk_abs=25)  # a quarter off: a quarter of the P&L
    assert ctl.get_portfolio_state()["symbols"]["MSFT"]["unrealized_pnl"] == -75
    ctl.close_position("msft", at(10))
    assert ctl.get_portfolio_state()["totals"]["unrealized_pnl"] == 0


def test_a_fill_without_a_price_has_no_quantity_and_stays_unvalued() -> None:
    ctl = PortfolioController(POLICY, equity=100_000, clock=None)
    ctl.request_allocation(intent("a", 1))
    ctl.on_fill_update(fill("a", "f1", 100, 2, None))
    assert ctl.mark("AAPL", 50, at(3))["positions"] == 0
    assert ctl.get_portfolio_state()["totals"]["active_notional"] == 1_000


def test_the_drawdown_is_from_the_peak_and_starts_again_when_flat() -> None:
    ctl = opened()
    ctl.close_position("short", at(5))
    ctl.mark("AAPL", 120, at(6))  # +200: the peak
    ctl.mark("AAPL", 109, at(7))  # +90: 110 below the peak, 11% of the 1,000 filled
    core = ctl.core
    assert core.state.symbols["AAPL"].unrealized_drawdown == pytest.approx(0.11)
    refused = ctl.request_allocation(intent("more", 8))
    assert refused.decision_code == "rejected_security_drawdown"
    ctl.close_position("long", at(9))
    assert "AAPL" not in core.state.symbols  # flat: the peak is gone with the bucket
    assert ctl.request_allocation(intent("fresh", 10)).approved


def test_a_bad_mark_is_refused_and_journals_nothing() -> None:
    journal: list[dict[str, Any]] = []
    ctl = opened(journal)
    before = len(journal)
    for symbol, price in (("AAPL", 0), ("AAPL", float("nan")), ("", 1), ("AAPL", True)):
        with pytest.raises(EventError):
            ctl.mark(symbol, price, at(5))
    with pytest.raises(EventError):
        ctl.apply({"type": "mark", "symbol": "AAPL", "price": 1})  # no event time
    bad = ctl.on_fill_update(fill("long", "f2", 1, 5, -3))
    assert bad["status"] == "invalid"
    assert len(journal) == before


def test_replay_what_if_and_snapshot_agree_with_the_live_core() -> None:
    journal: list[dict[str, Any]] = []
    ctl = opened(journal)
    ctl.mark("AAPL", 85, at(5))  # long -150 (15% down), short +575
    ctl.mark("AAPL", 90, at(6))
    decided = ctl.request_allocation(intent("more", 7)).decision_code
    assert {"type": "mark", "symbol": "AAPL", "price": 90.0, "timestamp": at(6).isoformat()} in [
        {k: v for k, v in e.items() if k != "chain"} for e in journal
    ]
    fills = [e for e in journal if e["type"] == "fill"]
    assert fills[0]["price"] == 100  # a fill's price is journaled with it
    replayed = [r for r in replay(journal) if r["kind"] == "decision"]
    assert replayed[-1]["decision_code"] == decided
    # the same marks under a policy without the drawdown rule: approved
    lenient = (COOKBOOK / "gross_exposure.yaml").as_posix()
    what_if = [r for r in replay(journal, lenient) if r["kind"] == "decision"]
    assert what_if[-1]["decision_code"] == "approved_full"
    snap = ctl.core.snapshot()
    core = ControlCore.restore(snap)
    assert core.snapshot() == snap
    assert (
        revalue_symbol(core.book, "AAPL", 100) == 2 and core.state.unrealized_pnl == 500
    )  # the short


def test_policy_run_takes_marks_and_the_gauge_shows_the_pnl(tmp_path: Path) -> None:
    events = [
        {"type": "equity", "equity": 100_000, "timestamp": at(0).isoformat()},
        {"type": "intent", **intent("a", 1), "timestamp": at(1).isoformat()},
        {**fill("a", "f1", 100, 2, 100), "type": "fill", "timestamp": at(2).isoformat()},
        {"type": "mark", "symbol": "AAPL", "price": 80, "timestamp": at(3).isoformat()},
        {"type": "intent", **intent("b", 4), "timestamp": at(4).isoformat()},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    result = CliRunner().invoke(cli, ["run", str(POLICY), str(path)])
    assert result.exit_code == 0, result.output
    assert "rejected_security_drawdown" in result.output
    page = tmp_path / "day.html"  # the report counts the marks and shows the P&L they made
    drawn = CliRunner().invoke(cli, ["report", str(POLICY), str(path), "-o", str(page)])
    assert drawn.exit_code == 0, drawn.output
    html = page.read_text()
    assert "security-drawdown" in html
    assert "<b>1</b>marks" in html and "<b>-200</b>lowest unrealized P&amp;L" in html
    registry = CollectorRegistry()
    ctl = opened(metrics=ControlMetrics(registry))
    ctl.mark("AAPL", 110, at(5))  # long 10 x 110 - 1,000 = +100, short 1,000 - 5 x 110 = +450
    text = generate_latest(registry).decode()
    assert 'policy_engine_unrealized_pnl{bucket="AAPL",scope="symbol"} 550.0' in text


LATCHED = """\
api_version: policy-engine/v1
name: marked-latch
version: 1
modes:
  normal: {}
  defensive: {risk_multiplier: 0.5, when: "portfolio.unrealized_pnl <= -50"}
latches:
  deep:
    when: portfolio.unrealized_pnl <= -100
    until: reset
rules:
  - id: exits-allowed
    allow: intent.risk_reducing
  - id: deep-loss
    require: not latch.deep
"""


def test_a_mark_sets_a_latch_and_moves_the_mode(tmp_path: Path) -> None:
    policy = tmp_path / "latched.yaml"
    policy.write_text(LATCHED)
    envelopes: list[str] = []
    ctl = PortfolioController(policy, equity=100_000, clock=None)
    ctl.subscribe(lambda env: envelopes.append(env.portfolio_mode))
    ctl.request_allocation(intent("a", 1, risk=10))
    ctl.on_fill_update(fill("a", "f1", 10, 2, 100))  # 10 at 100
    ctl.mark("AAPL", 94, at(3))  # -60: the defensive tier
    assert envelopes[-1] == "defensive"
    assert ctl.request_allocation(intent("b", 4, risk=10)).mode == "defensive"
    ctl.mark("AAPL", 89.5, at(5))  # -105: the latch is set, and stays set
    ctl.mark("AAPL", 100, at(6))
    refused = ctl.request_allocation(intent("c", 7, risk=10))
    assert refused.decision_code == "rejected_deep_loss"
    assert envelopes[-1] == "normal"  # the tier follows the P&L back; the latch does not


def test_a_checkpoint_captured_before_a_mark_holds_the_positions_as_they_were() -> None:
    """A checkpoint's rows are read by its own thread after the core went on: a mark made
    meanwhile changes its positions' unrealized P&L in place, so the book must keep each
    captured position's row before the mark changes it."""
    ctl = opened()
    core = ctl.core
    revalue_symbol(core.book, "AAPL", 110)
    snapshot = core.snapshot()
    captured = core.checkpoint()
    revalue_symbol(core.book, "AAPL", 80)  # both positions move, after the capture
    line = json.loads(checkpoint_body({"type": "checkpoint", "snapshot": captured}))
    assert line["snapshot"]["trades"] == snapshot["trades"]
    assert line["snapshot"] != core.snapshot()

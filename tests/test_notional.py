"""Notional exposure per bucket (issue 23 item 6): reserved and filled notional kept like risk,
exactly, through every lifecycle step; a clip scales an order's notional; a cap that counts
pending orders (NautilusTrader issue 4419: docs/cookbook/gross_exposure*.yaml) decides the
same in process, in replay and after a snapshot round trip. Through Temporal:
tests/test_temporal_book.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from policy_engine import PortfolioController
from policy_engine.control.core import ControlCore
from policy_engine.control.metrics import ControlMetrics
from policy_engine.control.replay import replay
from policy_engine.control.state import COUNTERS, RISK_COUNTERS

COOKBOOK = Path(__file__).resolve().parent.parent / "docs" / "cookbook"
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def intent(iid: str, notional: float | None, seconds: float, **kw: Any) -> dict[str, Any]:
    return {
        "intent_id": iid,
        "strategy": kw.pop("strategy", "TREND"),
        "symbol": kw.pop("symbol", "BTC-USDT-PERP"),
        "side": kw.pop("side", "long"),
        "requested_risk_abs": kw.pop("risk", 500),
        "requested_notional_abs": notional,
        "timestamp": at(seconds),
        **kw,
    }


def controller(journal: list[dict[str, Any]] | None = None) -> PortfolioController:
    return PortfolioController(
        COOKBOOK / "gross_exposure.yaml", equity=100_000, journal=journal, clock=None
    )


def notional(ctl: PortfolioController, bucket: str = "") -> dict[str, float]:
    state = ctl.get_portfolio_state()
    totals = state["totals"] if not bucket else state["symbols"][bucket]
    keys = ("active_notional", "reserved_notional", "gross_notional", "net_notional")
    return {k: totals.get(k, 0.0) for k in keys}


def test_reserve_fill_cancel_close_move_notional_like_risk_and_return_to_zero() -> None:
    ctl = controller()
    assert ctl.request_allocation(intent("a", 120_000.5, 1)).approved
    assert notional(ctl) == {
        "active_notional": 0.0,
        "reserved_notional": 120_000.5,
        "gross_notional": 120_000.5,
        "net_notional": 120_000.5,
    }
    # a fill of 200 of the 500 risk moves 2/5 of the notional from reserved to filled
    ctl.on_fill_update(
        {"intent_id": "a", "fill_id": "f1", "filled_risk_abs": 200, "timestamp": at(2)}
    )
    assert notional(ctl)["active_notional"] == 48_000.2
    assert notional(ctl)["reserved_notional"] == 72_000.3
    assert ctl.request_allocation(intent("b", 30_000, 3, side="short", symbol="ETH")).approved
    assert notional(ctl)["gross_notional"] == 150_000.5
    assert notional(ctl)["net_notional"] == 90_000.5  # long 120,000.5 - short 30,000
    assert notional(ctl, "ETH")["gross_notional"] == 30_000
    ctl.cancel_reservation("a", at(4))  # the unfilled 72,000.3 is released
    assert notional(ctl)["gross_notional"] == 78_000.2
    ctl.close_position("a", at(5), risk_abs=50)  # a quarter of the 200 filled
    assert notional(ctl)["active_notional"] == 36_000.15
    ctl.close_position("a", at(6))
    ctl.cancel_reservation("b", at(7))
    core_state = ctl.get_portfolio_state()
    assert "gross_notional" not in core_state["totals"]  # every notional counter is zero again


def test_a_clip_scales_the_orders_notional_and_a_missing_notional_fails_closed() -> None:
    ctl = controller()
    assert ctl.request_allocation(intent("a", 280_000, 1)).approved
    clipped = ctl.request_allocation(intent("b", 50_000, 2, template_id="resize"))
    assert clipped.decision_code == "approved_clipped" and clipped.approved_risk_abs == 200
    assert notional(ctl)["reserved_notional"] == 300_000  # 280,000 + 40% of 50,000
    refused = ctl.request_allocation(intent("c", None, 3))
    assert refused.decision_code == "rejected_eval_error" and refused.rule_id == "gross-exposure"
    assert notional(ctl)["reserved_notional"] == 300_000  # nothing reserved for it


def test_pending_orders_count_and_replay_and_snapshot_decide_the_same() -> None:
    journal: list[dict[str, Any]] = []
    ctl = controller(journal)
    codes = [
        ctl.request_allocation(intent("t1", 120_000, 1)).decision_code,
        ctl.on_fill_update(
            {"intent_id": "t1", "fill_id": "f1", "filled_risk_abs": 500, "timestamp": at(2)}
        )["status"],
        ctl.request_allocation(intent("c1", 100_000, 3, side="short", symbol="ETH")).decision_code,
        ctl.request_allocation(intent("t2", 80_001, 4)).decision_code,
        ctl.request_allocation(intent("t3", 80_000, 5)).decision_code,
    ]
    assert codes == [
        "approved_full",
        "committed",
        "approved_full",
        "rejected_gross_exposure",
        "approved_full",
    ]
    replayed = [r["decision_code"] for r in replay(journal) if r["kind"] == "decision"]
    assert replayed == [c for c in codes if c != "committed"]
    core = ControlCore.restore(ctl.core.snapshot())
    assert core.snapshot() == ctl.core.snapshot()
    assert core.state.gross_notional == 300_000
    after = core.apply(
        {"type": "intent", **intent("t4", 0.01, 6), "timestamp": at(6).isoformat()},
        decide=True,
    )
    assert after.decision is not None and after.decision.decision_code == "rejected_gross_exposure"


def test_the_snapshot_keeps_each_trades_notional_and_refuses_a_forged_bucket() -> None:
    ctl = controller()
    ctl.request_allocation(intent("a", 1_000, 1))
    snap = ctl.core.snapshot()
    assert snap["trades"][0][17:21] == [1_000_000_000, 0, None, 0]  # (then group, currency)
    assert len(snap["portfolio"]) == len(COUNTERS) + 3
    forged = dict(snap, portfolio=[*snap["portfolio"]])
    forged["portfolio"][RISK_COUNTERS + 1] += 1  # reserved notional one micro-unit off
    try:
        ControlCore.restore(forged)
    except ValueError as exc:
        assert "portfolio does not match its trades" in str(exc)
    else:
        raise AssertionError("a forged notional restored")


def test_gross_notional_is_a_gauge() -> None:
    registry = CollectorRegistry()
    ctl = PortfolioController(
        COOKBOOK / "gross_exposure.yaml",
        equity=100_000,
        clock=None,
        metrics=ControlMetrics(registry),
    )
    ctl.request_allocation(intent("a", 12_345, 1))
    text = generate_latest(registry).decode()
    assert 'policy_engine_gross_notional{bucket="portfolio",scope="portfolio"} 12345.0' in text


def test_a_late_fill_after_a_cancel_is_absorbed_with_its_notional() -> None:
    """An orphan is real exposure: it counts its risk and its notional (at the ended trade's
    notional per unit of risk), so a notional cap cannot be passed by a fill after a cancel."""
    ctl = controller()
    ctl.request_allocation(intent("a", 100_000, 1))  # 500 risk, 100,000 notional
    ctl.cancel_reservation("a", at(2))
    late = ctl.on_fill_update(
        {"intent_id": "a", "fill_id": "f1", "filled_risk_abs": 250, "price": 50, "timestamp": at(3)}
    )
    assert late["status"] == "late"
    assert notional(ctl)["active_notional"] == 50_000
    ctl.mark("BTC-USDT-PERP", 55, at(4))  # 1,000 bought at 50
    assert ctl.get_portfolio_state()["totals"]["unrealized_pnl"] == 5_000
    snap = ctl.core.snapshot()
    assert ControlCore.restore(snap).snapshot() == snap
    ctl.close_position("a", at(5))
    assert "gross_notional" not in ctl.get_portfolio_state()["totals"]

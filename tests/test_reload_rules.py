"""Reloads are safe: versions only go up, truncated files never load, cohorts move exactly.

A reload is refused (the old policy stays in force) when the file does not load, when it
does not match its declared `integrity` (a file cut at a rule boundary is still valid
YAML), when its content changed but its `version` did not go up, and when an override in
force names a mode the new policy does not declare. When a reload moves a symbol to
another cohort, the live exposure moves with it in the same step, and replay agrees.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from policy_engine import PortfolioController
from policy_engine.control.events import canonical
from policy_engine.control.replay import replay
from policy_engine.control.watcher import PolicyWatcher

ROOT = Path(__file__).resolve().parent.parent
PORTFOLIO = (ROOT / "policies" / "portfolio.yaml").read_text()
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def intent(iid: str, symbol: str, risk: float, t: float = 0) -> dict[str, Any]:
    return {
        "intent_id": iid,
        "strategy": "BREAKOUT",
        "symbol": symbol,
        "side": "long",
        "requested_risk_abs": risk,
        "timestamp": at(t),
    }


def bump(text: str, version: int) -> str:
    return text.replace("version: 1", f"version: {version}", 1)


def test_same_content_is_a_no_op_and_a_version_that_does_not_go_up_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PORTFOLIO)
    journal: list[dict[str, Any]] = []
    ctl = PortfolioController(path, equity=100_000, journal=journal, clock=None)
    lines = len(journal)
    same = ctl.reload(path)
    assert same["ok"] and same["unchanged"] and len(journal) == lines
    path.write_text(PORTFOLIO.replace("max_positions: 5", "max_positions: 50"))
    refused = ctl.reload(path)
    assert not refused["ok"] and "does not go up from v1" in refused["error"]
    assert ctl.policy.version == 1 and len(journal) == lines
    path.write_text(bump(PORTFOLIO.replace("max_positions: 5", "max_positions: 50"), 2))
    assert ctl.reload(path)["ok"] and ctl.policy.version == 2
    path.write_text(PORTFOLIO)  # a rollback must come as a new, higher version
    assert "does not go up" in ctl.reload(path)["error"]


def test_the_watcher_refuses_a_file_cut_at_a_rule_boundary(tmp_path: Path) -> None:
    """The reported incident: a half-written file loaded with its caps gone, and 50,000 of
    risk was approved against a 1,500 symbol cap. A declared rule count refuses it."""
    count = len(yaml.safe_load(PORTFOLIO)["rules"])
    sealed = PORTFOLIO.replace("\nversion: 1\n", f"\nversion: 1\nintegrity:\n  rules: {count}\n")
    path = tmp_path / "p.yaml"
    path.write_text(sealed)
    ctl = PortfolioController(path, equity=1_000_000, clock=None)
    watcher = PolicyWatcher(ctl, path)
    cut = bump(sealed[: sealed.index("  - id: symbol-cap")], 2)  # the seal at the top stays
    path.write_text(cut)
    rec = watcher.poll()
    assert rec is not None and not rec["ok"] and "PT113" in rec["error"]
    huge = ctl.request_allocation(intent("i1", "BTC-USD", 50_000))
    assert huge.decision_code != "approved_full"
    assert huge.approved_risk_abs <= 1_500


def test_an_override_the_new_policy_does_not_declare_refuses_the_reload(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PORTFOLIO)
    ctl = PortfolioController(path, equity=100_000, clock=None)
    ctl.set_portfolio_mode("risk_off", "judge", at(0))
    limits = (ROOT / "policies" / "strategy_limits.yaml").read_text()
    path.write_text(bump(limits, 9))
    rec = ctl.reload(path)
    assert not rec["ok"] and "override `risk_off` is in force" in rec["error"]
    assert ctl.get_portfolio_state()["mode"] == "risk_off"
    ctl.set_portfolio_mode(None, "cleared", at(1))
    assert ctl.reload(path)["ok"]


def test_a_cohort_change_moves_live_exposure_in_the_same_step(tmp_path: Path) -> None:
    """SOL-USD moves from cohort L1 to ALTS: its live exposure must count in ALTS at once,
    or ALTS would hold more than its cap (the reported incident: 5,000 against 4,000)."""
    v1 = tmp_path / "v1.yaml"
    v1.write_text(PORTFOLIO)
    journal: list[dict[str, Any]] = []
    ctl = PortfolioController(v1, equity=1_000_000, journal=journal, clock=None)
    sol = ctl.request_allocation(intent("sol", "SOL-USD", 1_000))
    ctl.on_fill_update(
        {"intent_id": "sol", "fill_id": "f", "filled_risk_abs": 400, "timestamp": at(1)}
    )
    assert sol.approved
    before = ctl.get_portfolio_state()["cohorts"]
    assert before["L1"]["heat"] == 1_000.0
    assert before.get("ALTS", {"heat": 0.0})["heat"] == 0.0
    moved_text = bump(PORTFOLIO, 2).replace(
        "L1: [BTC-USD, ETH-USD, SOL-USD]", "L1: [BTC-USD, ETH-USD]"
    )
    moved_text = moved_text.replace("ALTS: [", "ALTS: [SOL-USD, ")
    assert moved_text != bump(PORTFOLIO, 2), (
        "the bundled policy's cohorts changed; update this test"
    )
    v2 = tmp_path / "v2.yaml"
    v2.write_text(moved_text)
    rec = ctl.reload(v2)
    assert rec["ok"] and rec["moved"] == [{"intent_id": "sol", "from": "L1", "to": "ALTS"}]
    after = ctl.get_portfolio_state()["cohorts"]
    assert after["L1"]["heat"] == 0.0 and after["L1"]["active_trades"] == 0
    assert after["ALTS"]["heat"] == 1_000.0 and after["ALTS"]["active_risk"] == 400.0
    assert after["ALTS"]["open_positions"] == 1
    assert ctl.close_position("sol", at(2))["cohort"] == "ALTS"
    assert ctl.get_portfolio_state()["cohorts"]["ALTS"]["heat"] == 0.0
    records: list[dict[str, Any]] = list(replay(journal, lifecycle=True))
    assert any(r.get("moved") for r in records if r["kind"] == "reload")
    assert canonical(records[-1])  # the replay ran through the move and the close

"""The bundled day-trading policy on its bundled stream (examples/day_trading.jsonl): every
construct of issue 11 at work in one trading day and the start of the next, decided by
`policy run`, replayed byte for byte from its journal, and explained by `policy explain`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from policy_engine.cli import cli

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "day_trading.yaml"
STREAM = ROOT / "examples" / "day_trading.jsonl"

DECISIONS = {
    "s1": ("approved_full", 500),
    "s2": ("approved_full", 500),
    "s3": ("approved_full", 500),
    "s4": ("rejected_trade_rate", 0),  # a 4th SCALPER trade in the rolling hour
    "m1": ("approved_full", 2000),  # reward 4500 for risk 2000; the staged cap only warns
    "m2": ("rejected_reward_risk", 0),  # reward 900 for risk 800
    "s5": ("rejected_cooldown", 0),  # two losing closes in a row (one after a partial close)
    "m3": ("approved_full", 600),
    "m4": ("approved_clipped", 2000),  # BINANCE: 2000 of 4000 in use
    "k1": ("rejected_trade_rate", 0),
    "x1": ("approved_full", 300),  # an exit
    "m5": ("approved_full", 1000),
    "m6": ("rejected_daily_loss", 0),  # equity 97,800: the latch set
    "m7": ("rejected_daily_loss", 0),  # equity back to 99,500: still set
    "m8": ("approved_full", 300),  # after the journaled reset
    "w1": ("rejected_outside_trading_window", 0),  # 16:58 in New York
    "n1": ("approved_full", 500),  # the next trading day
    "n2": ("approved_clipped", 2500),  # clipped by the venue cap, then the net cohort cap
}


def test_policy_run_decides_the_bundled_day(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    result = CliRunner().invoke(
        cli, ["run", str(POLICY), str(STREAM), "--json", "--journal", str(journal)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["intent_id"]: (r["decision_code"], r["approved_risk_abs"]) for r in records} == (
        DECISIONS
    )
    replayed = CliRunner().invoke(cli, ["replay", str(journal)])
    assert replayed.exit_code == 0, replayed.output


def test_policy_run_shows_the_latch_the_reset_and_the_rollover() -> None:
    result = CliRunner().invoke(cli, ["run", str(POLICY), str(STREAM)])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("==")]
    assert notes == [
        "== mode normal -> cautious (drawdown: portfolio.drawdown >= 2%; drawdown 2.2%)",
        "== latch daily_loss set (portfolio.day_pnl <= -params.max_daily_loss * "
        "portfolio.day_start_equity)",
        "== mode cautious -> normal (drawdown: default; drawdown 0.5%)",
        "== latch daily_loss reset (risk desk: loss booked in error)",
        "== trading day 2026-01-06 starts (day_start_equity 99500; realized P&L of "
        "2026-01-05: -370)",
    ]


def test_policy_explain_shows_windows_latches_scopes_and_time(tmp_path: Path) -> None:
    intent = tmp_path / "intent.json"
    intent.write_text(
        json.dumps(
            {
                "intent_id": "x",
                "strategy": "SCALPER",
                "symbol": "ETH-USD",
                "side": "long",
                "requested_risk_abs": 800,
                "venue": "COINBASE",
                "timestamp": "2026-01-06T15:00:00Z",
            }
        )
    )
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "equity": 100_000,
                "latches": {"daily_loss": False},
                "strategies": {"SCALPER": {"windows": {"trades_1h": 2}, "loss_streak": 1}},
                "scopes": {"venue": {"COINBASE": {"active_risk": 2000}}},
                "cohorts": {"L1": {"long_risk": 1000, "short_risk": 400}},
            }
        )
    )
    result = CliRunner().invoke(
        cli, ["explain", str(POLICY), "--intent", str(intent), "--state", str(state), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["decision"]["decision_code"] == "approved_clipped"
    values = {row["rule_id"]: row["values"] for row in out["rules"]}
    assert values["daily-loss-halt"]["latch.daily_loss"] is False
    assert values["trading-window"]["intent.time"] == "2026-01-06T15:00:00+00:00"
    assert values["trading-window"]["weekday(intent.time)"] == 1
    assert values["hourly-trades"]["strategy.trades_1h"] == 2
    assert values["cooldown-after-losses"]["strategy.loss_streak"] == 1
    assert values["venue-cap"]["venue.heat"] == 2000
    assert values["cohort-net-long"]["cohort.net_risk"] == 600

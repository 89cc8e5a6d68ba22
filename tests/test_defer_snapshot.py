"""A deferral against a snapshot (issue 22 leftover): `policy test` cases and `policy
explain` answer `deferred` with `retry_after` as the control plane does, through the same
rule (engine/waits.py): a window's oldest event leaving (stated in `window_exits`, since a
snapshot holds no events), a daily window's rollover, a lock's end (`lock:<name>`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from policy_engine import load_policy_text
from policy_engine.cli import cli
from policy_engine.control.core import ControlCore
from policy_engine.engine.contracts import PortfolioSnapshot
from policy_engine.engine.runtime import epoch_us

from support.events import intent

POLICY = """\
api_version: policy-engine/v1
name: defer
version: 1
trading_day: {timezone: UTC, rollover: "22:00"}
strategies:
  S: {max_trades: 100}
windows:
  sent_1m: {count: requests, per: strategy, over: 60s}
  today: {count: requests, per: portfolio, over: trading_day}
  sent_1h: {count: requests, per: symbol, over: 1h}
locks:
  cooldown: {window: sent_1h, at_least: 4, for: 10m}
rules:
  - id: rate
    require: strategy.sent_1m < 2
    on_reject: defer
  - id: daily
    require: portfolio.today < 3
    on_reject: defer
  - id: cooling
    require: not lock.cooldown
"""
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def decide(state: Mapping[str, Any], seconds: float) -> tuple[str, object]:
    policy = load_policy_text(POLICY)
    snapshot = PortfolioSnapshot.model_validate({"equity": 100_000, **state})
    asked = policy.intent_model.model_validate(intent("x", at(seconds)))
    decision = policy.evaluate(asked, snapshot).decision()
    return decision.decision_code, decision.context.get("retry_after")


def test_a_snapshot_decision_defers_exactly_as_the_core_does() -> None:
    core = ControlCore(load_policy_text(POLICY))
    core.apply({"type": "equity", "equity": 100_000, "timestamp": None})
    core.apply({"type": "intent", **intent("a", at(0))})
    core.apply({"type": "intent", **intent("b", at(20))})
    live = core.apply({"type": "intent", **intent("c", at(30))}, decide=True).decision
    assert live is not None
    assert (live.decision_code, live.context["retry_after"]) == ("deferred", 30)
    # the same state as a snapshot states it: 2 in the minute, the oldest leaving at 60 s
    state = {"strategies": {"S": {"windows": {"sent_1m": 2}, "window_exits": {"sent_1m": at(60)}}}}
    assert decide(state, 30) == ("deferred", 30)
    # a snapshot that does not say when its window frees up: the rule's own rejection
    assert decide({"strategies": {"S": {"windows": {"sent_1m": 2}}}}, 30) == ("rejected_rate", None)


def test_a_daily_window_defers_to_the_rollover_and_a_lock_reports_its_end() -> None:
    assert decide({"windows": {"today": 3}}, 0) == ("deferred", 13 * 3600)  # 22:00 UTC
    end = epoch_us(T0 + timedelta(minutes=10))
    locked = {"symbols": {"BTC-USD": {"windows": {"sent_1h": 4, "lock:cooldown": end}}}}
    assert decide(locked, 60) == ("rejected_cooling", 540)


def test_explain_shows_the_deferral_and_its_retry_after(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICY)
    (tmp_path / "i.json").write_text(json.dumps(intent("x", at(30))))
    state = {"equity": 1, "windows": {"today": 1}}
    state["strategies"] = {"S": {"windows": {"sent_1m": 2}, "window_exits": {"sent_1m": at(45)}}}
    (tmp_path / "s.json").write_text(json.dumps(state))
    args = ["explain", str(tmp_path / "p.yaml"), "--intent", str(tmp_path / "i.json")]
    args += ["--state", str(tmp_path / "s.json")]
    text = CliRunner().invoke(cli, args)
    assert text.exit_code == 0, text.output
    assert "decision deferred (100 -> 0) by `rate` (retry after 15 s)" in text.output
    out = json.loads(CliRunner().invoke(cli, [*args, "--json"]).output)
    assert out["decision"]["decision_code"] == "deferred"
    assert out["decision"]["context"]["retry_after"] == 15

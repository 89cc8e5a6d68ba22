"""Exit reasons on closes (issue 22, item 5): `close_position(..., reason="stoploss")`,
journaled and replayed exactly, in the events and journal schemas, and a filter for the
windows that count closes. On the workflow: tests/test_temporal_language.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from policy_engine import PortfolioController, load_policy_text
from policy_engine.control.events import EventError
from policy_engine.control.replay import replay

from support.events import intent
from support.loading import problems

ROOT = Path(__file__).resolve().parent.parent
POLICY = """\
api_version: policy-engine/v1
name: t
version: 1
strategies:
  S: {max_trades: 10}
windows:
  stops: {count: closes, per: strategy, over: 1h, reason: stoploss}
  bad_exits: {count: losing_closes, per: portfolio, over: 1h, reason: [stoploss, liquidation]}
rules:
  - id: guard
    require: strategy.stops < 2 and portfolio.bad_exits < 3
"""


def at(minute: int) -> str:
    return f"2026-01-05T09:{minute:02}:00+00:00"


def test_only_closes_of_the_reasons_named_count_and_replay_keeps_them() -> None:
    journal: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    ctl = PortfolioController(
        load_policy_text(POLICY), equity=100_000, journal=journal, records=records, clock=None
    )
    for n, iid in enumerate("abcde"):
        ctl.request_allocation(intent(iid, at(n)))
    ctl.close_position("a", at(10), realized_pnl=-5, reason="stoploss")
    ctl.close_position("b", at(11), realized_pnl=-5, reason="roi")
    ctl.close_position("c", at(12), realized_pnl=-5, reason="liquidation")
    ctl.close_position("d", at(13), realized_pnl=-5)  # no reason: counted by neither
    assert ctl.request_allocation(intent("f", at(14))).decision_code == "approved_full"
    record = ctl.close_position("e", at(15), realized_pnl=3, reason="stoploss")
    assert record["reason"] == "stoploss"
    assert ctl.request_allocation(intent("g", at(16))).decision_code == "rejected_guard"
    closes = [e for e in journal if e["type"] == "close"]
    assert [e.get("reason") for e in closes] == ["stoploss", "roi", "liquidation", None, "stoploss"]
    decisions = [r for r in records if r["kind"] == "decision" and r["seq"]]
    assert [r["decision_code"] for r in replay(journal)] == [r["decision_code"] for r in decisions]


def test_a_bad_exit_reason_is_refused_before_anything_is_journaled() -> None:
    journal: list[dict[str, Any]] = []
    ctl = PortfolioController(load_policy_text(POLICY), equity=1, journal=journal, clock=None)
    ctl.request_allocation(intent("a", at(0)))
    before = len(journal)
    for bad in ("stop loss", "", 7, "x" * 65):
        with pytest.raises(EventError, match="exit reason"):
            ctl.close_position("a", at(1), reason=bad)  # type: ignore[arg-type]
    with pytest.raises(EventError, match="exit reason"):
        ctl.apply({"type": "close", "intent_id": "a", "reason": "two words"})
    assert len(journal) == before


@pytest.mark.parametrize("name", ["events", "journal"])
def test_the_schemas_know_the_exit_reason(name: str) -> None:
    schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    close = {"type": "close", "intent_id": "a", "timestamp": at(1), "realized_pnl": -1}
    good = [e.message for e in validator.iter_errors({**close, "reason": "stoploss"})]
    assert good == []
    assert list(validator.iter_errors({**close, "reason": "stop loss"}))


def test_only_a_window_of_closes_takes_a_reason() -> None:
    assert problems(
        """\
        windows:
          w: {count: approvals, per: portfolio, over: 1h, reason: stoploss}
        rules: [{id: r, require: portfolio.w < 3}]
        """
    ) == ["t.yaml:5:51: PT111 `windows.w.reason`: only closes have an exit reason, not approvals"]


def test_policy_run_shows_the_exit_reason_and_when_to_retry(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from policy_engine.cli import cli

    base = {"strategy": "ALGO", "symbol": "AUD-USD", "side": "long", "requested_risk_abs": 100}
    events = [
        {"type": "intent", "intent_id": f"m{i}", **base, "timestamp": at(0)} for i in range(6)
    ]
    events.append({"type": "close", "intent_id": "m0", "reason": "stop_loss", "timestamp": at(0)})
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    policy = ROOT / "docs" / "cookbook" / "throttle_defer.yaml"
    out = CliRunner().invoke(cli, ["run", str(policy), str(path), "--equity", "100000"])
    assert "m5 ALGO AUD-USD 100 -> 0 REJECTED deferred (retry after 1 s)" in out.stdout
    assert "realized P&L" not in out.stdout and "(stop_loss)" in out.stdout

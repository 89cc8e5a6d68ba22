"""`when_missing` (issue 22, item 6): a rule may let an intent pass when a value it reads is
missing; by default, and for every other evaluation error, it fails closed. Decisions in
the cookbook: docs/cookbook/notional_without_price_test.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from policy_engine import PortfolioController, load_policy_text
from policy_engine.cli import cli
from policy_engine.control.replay import replay

from support.events import intent as make_intent
from support.loading import problems

TS = "2026-01-05T09:00:00+00:00"
POLICY = """\
api_version: policy-engine/v1
name: t
version: 1
strategies:
  S: {max_trades: 10}
inputs:
  price: {type: number, default: null}
rules:
  - id: notional
    require: intent.price * 1000 <= 50_000
    when_missing: %s
  - id: ratio
    require: 100 / intent.requested_risk_abs > 0
    when_missing: approve
"""


def intent(iid: str, **extra: Any) -> dict[str, Any]:
    return make_intent(iid, TS, **extra)


def codes(mode: str, *intents: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    journal: list[dict[str, Any]] = []
    ctl = PortfolioController(
        load_policy_text(POLICY % mode), equity=100_000, journal=journal, clock=None
    )
    return [ctl.request_allocation(i).decision_code for i in intents], journal


def test_approve_lets_a_missing_value_pass_and_reject_fails_closed() -> None:
    stream = (intent("a"), intent("b", price=60.0), intent("c", price=40.0))
    approved, journal = codes("approve", *stream)
    assert approved == ["approved_full", "rejected_notional", "approved_full"]
    rejected, _ = codes("reject", *stream)
    assert rejected == ["rejected_eval_error", "rejected_notional", "approved_full"]
    # replay makes the same decisions; a what-if with `reject` fails the priceless one closed
    assert [r["decision_code"] for r in replay(journal)] == approved
    strict = load_policy_text(POLICY % "reject")
    assert [r["decision_code"] for r in replay(journal, strict)] == rejected


def test_approve_never_covers_an_error_that_is_not_a_missing_value() -> None:
    """A division by zero is the policy's fault, not a missing value: it still rejects."""
    got, _ = codes("approve", intent("z", price=1.0, requested_risk_abs=0))
    assert got == ["rejected_eval_error"]


def test_an_allow_rule_cannot_take_when_missing() -> None:
    assert problems(
        """\
        rules:
          - {id: a, allow: intent.reduce_only, when_missing: approve}
        """
    ) == [
        "t.yaml:5:40: PT111 `when_missing` cannot apply to an `allow` rule (`a`): an allow "
        "never blocks"
    ]


def test_explain_and_coverage_say_missing(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY % "approve")
    path = tmp_path / "intent.json"
    path.write_text(json.dumps(intent("a") | {"strategy": "S"}))
    state = tmp_path / "state.json"
    state.write_text('{"equity": 100000}')
    out = CliRunner().invoke(
        cli, ["explain", str(policy), "--intent", str(path), "--state", str(state), "--json"]
    )
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)["rules"]
    assert [r["verdict"] for r in rows] == ["missing", "pass"]
    tests = tmp_path / "p_test.yaml"
    tests.write_text(
        "defaults:\n  state: {equity: 100000}\n"
        f"  intent: {json.dumps(intent('t'))}\n"
        "cases:\n  - id: no-price\n    expect: {decision_code: approved_full}\n"
    )
    ran = CliRunner().invoke(cli, ["test", "--coverage", str(tests)])
    assert ran.exit_code == 0, ran.output
    assert "missing 1" in ran.stdout

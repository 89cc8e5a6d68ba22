"""Declared inputs (issue 11): the intent model follows the policy, inputs are typed strictly
and journaled exactly, `policy schema --intent` prints the contract, and what cannot be an
input is refused when the policy loads. Decisions: tests/cases/inputs_test.yaml and
tests/limits/reward_risk.*."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine import (
    PortfolioController,
    PortfolioIntent,
    PortfolioSnapshot,
    load_policy_text,
)
from policy_engine.cli import cli
from policy_engine.control.events import canonical
from policy_engine.control.replay import replay
from policy_engine.engine.policy import load_policy

from support.events import intent as make_intent
from support.loading import problems

LIMITS = Path(__file__).resolve().parent / "limits"
TS = "2026-01-05T09:00:00+00:00"


def intent(iid: str, **extra: Any) -> dict[str, Any]:
    return make_intent(iid, TS, **extra)


def test_what_cannot_be_an_input_is_refused_at_load() -> None:
    assert problems(
        """\
        inputs:
          a: {type: number, default: "5"}
          b: {type: number, default: 1, required: true}
          c: {type: string}
          when: {type: time, default: "2026-01-05"}
          d: {type: decimal, default: 1}
        rules: [{id: r, require: has(intent.e)}]
        """
    ) == [
        "t.yaml:5:30: PT308 `inputs.a.default`: must be a finite number of at most 1e15, not '5'",
        "t.yaml:6:3: PT111 input `b` gives both `default` and `required: true`: choose one",
        "t.yaml:7:3: PT111 input `c` needs a `default` (null when it may be absent) or "
        "`required: true`",
        "t.yaml:8:31: PT308 `inputs.when.default`: must be a timestamp with a UTC offset, not "
        "'2026-01-05'",
        "t.yaml:9:13: PT111 `inputs.d.type` must be one of `number`, `string`, `bool`, `time`, "
        'not `"decimal"`',
        "t.yaml:10:30: PT301 unknown name `intent.e` (did you mean `intent.time`?)",
    ]
    assert problems(
        """\
        inputs:
          symbol: {type: string, default: null}
          model_config: {type: bool, default: false}
        rules: [{id: r, require: "true"}]
        """
    ) == [
        "t.yaml:5:3: PT309 `intent.symbol` is built in and cannot be declared as an input",
        "t.yaml:6:3: PT309 `intent.model_config` is built in and cannot be declared as an input",
    ]


def test_null_says_how_to_test_for_absence() -> None:
    assert problems("rules: [{id: r, require: intent.regime_state != null}]") == [
        "t.yaml:4:49: PT301 unknown name `null` (the language has no null; test an optional "
        "field with `has(intent.<name>)`)"
    ]


def test_inputs_are_journaled_exactly_and_replay_identically() -> None:
    policy = load_policy(LIMITS / "reward_risk.yaml")
    journal: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    ctl = PortfolioController(policy, equity=100_000, journal=journal, records=records, clock=None)
    ctl.request_allocation(intent("a", expected_reward_abs=250.5))
    ctl.request_allocation(intent("b", expected_reward_abs=150))
    ctl.request_allocation(intent("c", expected_reward_abs=True))  # refused: not a number
    ctl.request_allocation(intent("d"))  # the default (null): not journaled
    intents = [e for e in journal if e["type"] == "intent"]
    assert [e.get("expected_reward_abs", "-") for e in intents] == [250.5, 150.0, "-"]
    decisions = [canonical(r) for r in records if r["kind"] == "decision" and r["seq"]]
    assert [canonical(r) for r in replay(journal)] == decisions
    assert [json.loads(d)["decision_code"] for d in decisions] == [
        "approved_full",
        "rejected_min_reward_risk",
        "approved_full",
    ]


def test_a_base_intent_takes_the_policys_defaults() -> None:
    """An intent built as a plain PortfolioIntent is validated into the policy's model."""
    policy = load_policy(LIMITS / "reward_risk.yaml")
    plain = PortfolioIntent.model_validate(intent("x"))
    ctl = PortfolioController(policy, equity=100_000, clock=None)
    assert ctl.request_allocation(plain).decision_code == "approved_full"
    # evaluated directly, without the model, a rule reading an input fails closed
    bare = PortfolioIntent.model_validate(intent("y"))
    snap = PortfolioSnapshot(equity=100_000)
    verdict = policy.evaluate(bare, snap)
    assert verdict.decision_code == "rejected_eval_error"
    assert "the intent has no `expected_reward_abs`" in verdict.reasons[0]
    typed = policy.intent_model.model_validate(intent("z", expected_reward_abs=1))
    assert policy.evaluate(typed, snap).decision_code == "rejected_min_reward_risk"


def test_schema_intent_prints_the_policys_contract() -> None:
    result = CliRunner().invoke(cli, ["schema", "--intent", str(LIMITS / "reward_risk.yaml")])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["expected_reward_abs"] == {
        "anyOf": [{"maximum": 1e15, "minimum": -1e15, "type": "number"}, {"type": "null"}],
        "default": None,
        "title": "Expected Reward Abs",
    }
    assert "expected_reward_abs" not in schema["required"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2026-01-05", "timezone"),
        (1_767_600_000, "must be an ISO 8601 timestamp"),
        ("2026-01-05T09:00:00Z", None),
    ],
)
def test_a_time_input_is_a_timestamp_with_an_offset(value: Any, fragment: str | None) -> None:
    policy = load_policy_text(
        "api_version: policy-engine/v1\nname: t\nversion: 1\n"
        "inputs: {signal_time: {type: time, required: true}}\n"
        "rules: [{id: r, require: weekday(intent.signal_time) < 5}]\n"
    )
    ctl = PortfolioController(policy, equity=1, clock=None)
    decision = ctl.request_allocation(intent("t", signal_time=value))
    if fragment is None:
        assert decision.decision_code == "approved_full"
        assert decision.approved
    else:
        assert decision.decision_code == "rejected_invalid_intent"
        assert fragment in decision.reasons[0]
